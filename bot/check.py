"""``data-request-bot check``: is the configuration right, and can the bot reach Slack and Amazon?

Each finding is one line with ✓, ! (a warning) or ✗ and, for ✗, a fix that
adds what the finding did not say. Nothing here
touches a shopper's data: the Buy with Prime probe asks for a task id that
cannot exist and expects "not found".
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from typing import TextIO
from urllib.parse import urlsplit

import aiohttp
import httpx
from slack_sdk.errors import SlackApiError

from bot.settings import SLACK_API_URL, Settings, load_settings
from core import ConfigError, PrimeError, PrimeRejected, PrimeUnavailable, RetryPolicy
from handlers.slack_errors import slack_error_code
from prime import RETRIEVAL, UNEXPECTED
from store import inspect_key, key_file_for, open_verified, others_can_read, where_shown

__all__ = ["run_check"]

PROBE_TASK_ID = "data-request-bot-check-0000"
_TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"})


class _Report:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failures = 0

    def ok(self, text: str) -> None:
        print(f"✓ {text}", file=self.out)

    def warn(self, text: str) -> None:
        print(f"! {text}", file=self.out)

    def fail(self, text: str, fix: str) -> None:
        self.failures += 1
        print(f"✗ {text}\n    fix: {fix}", file=self.out)


async def run_check(env: Mapping[str, str], *, sandbox: bool, out: TextIO) -> int:
    """Check everything once and print the findings; exit status 1 if anything is wrong."""
    report = _Report(out)
    try:
        settings = load_settings(env, sandbox=sandbox)
    except ConfigError as error:
        for what, fix in error.problems:
            report.fail(what, fix)
        return 1
    report.ok("configuration: every setting is present and well-formed")
    if settings.database_url is not None:
        await _check_postgres(settings.database_url, settings.encryption_key, report)
    else:
        _check_database(settings, report)
    _check_relay(settings, report)
    await _check_slack(settings, report)
    if settings.sandbox:
        report.ok("Buy with Prime: skipped (--sandbox: serve --sandbox simulates it on its own server)")
    else:
        await _check_prime(settings, report)
    if settings.everyone_allowed:
        report.warn(
            "every workspace member may request and download shopper data "
            + (
                "(ALLOWED_USERS=*)"
                if not settings.sandbox
                else "(--sandbox without ALLOWED_USERS or ALLOWED_USERGROUP)"
            )
        )
    if not settings.verification_required:
        report.warn(
            "IDENTITY_VERIFICATION=off: Download and an erasure's Approve do not wait for the shopper's identity "
            "to be recorded as verified"
        )
    print("all good" if not report.failures else f"{report.failures} problem(s) found", file=out)
    return 1 if report.failures else 0


def _check_database(settings: Settings, report: _Report) -> None:
    path = settings.database_path
    folder = path.resolve().parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not (existing.is_dir() and os.access(existing, os.W_OK)):
        report.fail(f"database: cannot write in {existing}", "point DATABASE_PATH at a folder the bot's user may write")
        return
    if not path.exists():
        report.ok(f"database: {path} will be created at the first start, readable by its owner alone")
    elif others_can_read(path):
        report.warn(f"database: {path} can be read by other users of this machine: chmod 600 {path}")
    else:
        report.ok(f"database: {path} can be written and is readable by its owner alone")
    try:
        problem = inspect_key(path, configured=settings.encryption_key)
    except sqlite3.Error as error:
        report.fail(
            f"database: {path} cannot be read ({error})", "restore it from a backup, or point DATABASE_PATH at it"
        )
        return
    if problem is not None:
        report.fail(*problem)
    elif settings.encryption_key is not None:
        report.ok("encryption key: ENCRYPTION_KEY opens the stored data")
    elif key_file_for(path).exists():
        report.warn(
            f"encryption key: from {key_file_for(path)}; copy its contents into ENCRYPTION_KEY and keep a copy apart"
        )
    else:
        report.warn(
            f"encryption key: ENCRYPTION_KEY is unset, so the first start creates {key_file_for(path)}; "
            "copy its contents into ENCRYPTION_KEY"
        )


async def _check_postgres(url: str, key: bytes | None, report: _Report) -> None:
    """The PostgreSQL database answers, its schema is brought up to date, and ENCRYPTION_KEY opens its data."""
    try:
        store = await open_verified(url, configured=key, create_key=False)
    except ConfigError as error:
        for what, fix in error.problems:
            report.fail(what, fix or "see docs/operating.md, Several copies on PostgreSQL")
        return
    await store.close()
    report.ok(f"database: PostgreSQL {where_shown(url)} answers and its schema is up to date")
    report.ok("encryption key: ENCRYPTION_KEY opens the stored data (every copy of the bot must have the same)")


def _check_relay(settings: Settings, report: _Report) -> None:
    if settings.relay_api_key is not None:
        report.ok(f"relay: RELAY_API_KEY is set ({len(settings.relay_api_key)} characters)")
    elif settings.sandbox:
        report.ok("relay: RELAY_API_KEY is unset; serve --sandbox makes one for the run")
    else:
        report.warn(
            "relay: RELAY_API_KEY is unset, so /buy-with-prime/events answers 404; "
            "threads still end by polling Amazon every RECONCILE_INTERVAL seconds"
        )


async def _check_slack(settings: Settings, report: _Report) -> None:
    from bot.clients import build_slack_client

    slack = build_slack_client(settings)
    url = settings.slack_api_url
    host = urlsplit(url).hostname or url
    custom = url != SLACK_API_URL
    try:
        identity = await slack.auth_test()
    except SlackApiError as error:
        code = slack_error_code(error)
        if error.response.status_code == 404:
            report.fail(
                f"Slack: {url} answered 404, so it is not Slack's Web API (the token was never tried)",
                "set SLACK_API_URL to https://slack.com/api/ (GovSlack: https://slack-gov.com/api/), or unset it",
            )
        elif code in _TOKEN_ERRORS:
            report.fail(
                f"Slack: auth.test refused the token ({code})",
                "copy the Bot User OAuth Token (xoxb-…, OAuth & Permissions page) into SLACK_BOT_TOKEN; "
                "reinstall the app if it was revoked",
            )
        else:
            report.fail(f"Slack: auth.test failed ({code})", f"see https://api.slack.com/methods/auth.test for {code}")
        return
    except aiohttp.ClientConnectorDNSError:
        report.fail(
            f"Slack: this machine cannot look up {host} (DNS)",
            "this is the network, not the token: check the machine's DNS, or set HTTPS_PROXY (and NO_PROXY) "
            "if it reaches the internet through a proxy"
            + (f"; and check the host name in SLACK_API_URL ({url})" if custom else ""),
        )
        return
    except (OSError, TimeoutError) as error:
        report.fail(
            f"Slack: cannot connect to {host} ({type(error).__name__})",
            "a firewall or proxy is in the way: allow outgoing HTTPS to it, or set HTTPS_PROXY (and NO_PROXY "
            "for hosts reached directly)" + (f"; and check SLACK_API_URL ({url})" if custom else ""),
        )
        return
    report.ok(f"Slack: connected as @{identity.get('user')} in {identity.get('team')}")
    if settings.allowed_usergroup:
        try:
            members = await slack.usergroups_users_list(usergroup=settings.allowed_usergroup)
        except SlackApiError as error:
            report.fail(
                f"Slack: cannot read ALLOWED_USERGROUP {settings.allowed_usergroup} ({slack_error_code(error)})",
                "add the usergroups:read scope and reinstall the app, and check the group id",
            )
        else:
            report.ok(f"Slack: user group {settings.allowed_usergroup} has {len(members.get('users') or [])} members")
    if settings.socket_mode:
        report.ok("Slack: Socket Mode (SLACK_APP_TOKEN is set); the connection opens at serve")


async def _check_prime(settings: Settings, report: _Report) -> None:
    from bot.clients import build_prime_client

    async with httpx.AsyncClient(timeout=15.0) as http:
        # ``check`` prints its own report and configures no log handler: no redactor to tell the token to.
        prime = build_prime_client(
            settings, http=http, retry=RetryPolicy(attempts=2, base=0.5), on_secret=lambda _token: None
        )
        try:
            await prime.check_access()
        except PrimeError as error:
            report.fail(
                f"Buy with Prime: no access token ({error})", "check BWP_CLIENT_ID, BWP_CLIENT_SECRET and BWP_TOKEN_URL"
            )
            return
        report.ok("Buy with Prime: the credentials give an access token")
        try:
            await prime.task(RETRIEVAL, PROBE_TASK_ID)
        except PrimeRejected as error:
            if error.kind in ("ResourceNotFoundError", "ValidationError"):
                report.ok("Buy with Prime: the privacy API answers (a probe for a task that cannot exist: not found)")
            else:
                report.fail(
                    f"Buy with Prime: the privacy API refused the probe ({error.kind})",
                    "check BWP_TARGET_ID and that the credentials have the 'Manage Shopper Privacy Requests' scope",
                )
        except PrimeUnavailable as error:
            if error.kind == UNEXPECTED:
                fix = "something other than Buy with Prime answered: check BWP_API_URL and any proxy or gateway"
            elif error.needs_operator:
                fix = "check BWP_TARGET_ID and that the credentials have the 'Manage Shopper Privacy Requests' scope"
            else:
                fix = "check BWP_API_URL, or try again later"
            report.fail(f"Buy with Prime: the privacy API is unavailable ({error})", fix)
        else:
            report.ok("Buy with Prime: the privacy API answers")
