"""``data-request-bot check``: is the configuration right, and can the bot reach Slack and Amazon?

Each finding is one line with ✓ or ✗ and, for ✗, what to do. Nothing here
touches a shopper's data: the Buy with Prime probe asks for a task id that
cannot exist and expects "not found".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

import httpx
from slack_sdk.errors import SlackApiError

from bot.errors import ConfigError, PrimeError, PrimeRejected, PrimeUnavailable, slack_error_code
from bot.prime_answers import UNEXPECTED
from bot.retry import RetryPolicy
from bot.settings import Settings, load_settings

__all__ = ["run_check"]

PROBE_TASK_ID = "data-request-bot-check-0000"


class _Report:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failures = 0

    def ok(self, text: str) -> None:
        print(f"✓ {text}", file=self.out)

    def fail(self, text: str, fix: str) -> None:
        self.failures += 1
        print(f"✗ {text}\n    fix: {fix}", file=self.out)


async def run_check(env: Mapping[str, str], *, sandbox: bool, out: TextIO) -> int:
    """Check everything once and print the findings; exit status 1 if anything is wrong."""
    report = _Report(out)
    try:
        settings = load_settings(env, sandbox=sandbox)
    except ConfigError as error:
        for line in str(error).splitlines():
            name, _, how = line.partition(" ")
            report.fail(f"{name} {how}", f"set {name} as described, then run check again")
        return 1
    report.ok("configuration: every setting is present and well-formed")
    _check_database(settings, report)
    await _check_slack(settings, report)
    if settings.sandbox:
        report.ok("Buy with Prime: the built-in sandbox is used (--sandbox); no credentials needed")
    else:
        await _check_prime(settings, report)
    if settings.everyone_allowed:
        print("! neither ALLOWED_USERS nor ALLOWED_USERGROUP is set: every workspace member may use the bot", file=out)
    print("all good" if not report.failures else f"{report.failures} problem(s) found", file=out)
    return 1 if report.failures else 0


def _check_database(settings: Settings, report: _Report) -> None:
    folder = settings.database_path.resolve().parent
    if folder.is_dir() and os.access(folder, os.W_OK):
        report.ok(f"database: {settings.database_path} can be written")
    else:
        report.fail(f"database: cannot write in {folder}", "point DATABASE_PATH at a writable folder")


async def _check_slack(settings: Settings, report: _Report) -> None:
    from bot.runtime import build_slack_client

    slack = build_slack_client(settings)
    try:
        identity = await slack.auth_test()
    except SlackApiError as error:
        code = slack_error_code(error)
        report.fail(f"Slack: auth.test failed ({code})", "copy the Bot User OAuth Token (xoxb-…) into SLACK_BOT_TOKEN")
        return
    except (OSError, TimeoutError) as error:
        report.fail(f"Slack: cannot reach {settings.slack_api_url} ({type(error).__name__})", "check SLACK_API_URL")
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
    from bot.runtime import build_prime_client

    async with httpx.AsyncClient(timeout=15.0) as http:
        prime = build_prime_client(settings, http=http, retry=RetryPolicy(attempts=2, base=0.5))
        try:
            await prime.check_access()
        except PrimeError as error:
            report.fail(
                f"Buy with Prime: no access token ({error})", "check BWP_CLIENT_ID, BWP_CLIENT_SECRET and BWP_TOKEN_URL"
            )
            return
        report.ok("Buy with Prime: the credentials give an access token")
        try:
            await prime.retrieval_task(PROBE_TASK_ID)
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
