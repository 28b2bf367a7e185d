"""Log redaction: what an operator reads in the logs holds no shopper email, link, token or secret."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from erasures import CANCEL_ACTION, REJECT_ACTION, approve, ask, latest, with_button
from fakes import FakePrime, FakeSlack, text_of
from harness import RELAY_KEY, SIGNING_SECRET, envelope, running_bot
from slack_bolt.logger.messages import warning_token_skipped

from bot.redaction import Redactor, configure_logging
from bot.socket_link import SDK_LOGGER
from core import case_context, log_ids

EMAIL = "jane.shopper@example.com"
LINK = (
    "https://buy-with-prime-requested-data.s3.amazonaws.com/privacyRequest/t-1/result/data_retrieval.zip"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20250101&X-Amz-Expires=60"
    "&X-Amz-SignedHeaders=host&X-Amz-Signature=0123456789abcdef0123456789abcdef"
)


class LogCapture:
    """Runs configure_logging with stderr swapped for a StringIO, so what the root handler writes can be read."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.redactor: Redactor | None = None  # the one the handler uses, for the bot to add its secrets to

    def configure(self, level: str, *, secrets: list[str], redactor: Redactor | None = None, fmt: str = "text") -> None:
        # pytest puts its own sys.stderr back before each test phase, so swap it only around the call.
        real, sys.stderr = sys.stderr, self.stream
        try:
            self.redactor = configure_logging(level, secrets=secrets, fmt=fmt, redactor=redactor)
        finally:
            sys.stderr = real

    def records(self) -> list[dict[str, Any]]:
        """The JSON lines written so far; each line must be one JSON object."""
        return [json.loads(line) for line in self.written.splitlines()]

    @property
    def written(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    """A way to configure logging into a StringIO; the previous logging setup is restored afterwards."""
    root = logging.getLogger()
    levelled = [logging.getLogger("slack_bolt")]  # configure_logging sets these
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_levels = [logger.level for logger in levelled]
    try:
        yield LogCapture()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        for logger, level in zip(levelled, saved_levels, strict=True):
            logger.setLevel(level)
        logging.captureWarnings(False)


# ----------------------------------------------------------------- the Redactor on its own


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        (f"request for {EMAIL} stored", EMAIL),
        ("text=jane.shopper%40example.com&command=%2Fdata-request", "jane.shopper%40example.com"),
        ('{"text": "jane.shopper\\u0040example.com"}', "jane.shopper\\u0040example.com"),
        ("MIXED.Case+tag@Example.CO.UK wrote", "MIXED.Case+tag@Example.CO.UK"),
        (f"link: {LINK}", "X-Amz-Signature"),
        (f"<{LINK}|Download>", "X-Amz-Credential"),
        ("token=xoxb-1234-5678-AbCdEfGh", "xoxb-1234-5678-AbCdEfGh"),
        ("app token xapp-1-A0123-456-abcdef", "xapp-1-A0123-456-abcdef"),
        ("Authorization: Bearer tok-0123456789abcdef", "tok-0123456789abcdef"),
        ("Authorization: Basic ZXZlbnRicmlkZ2U6c2VjcmV0", "ZXZlbnRicmlkZ2U6c2VjcmV0"),
        ("grant_type=client_credentials&client_secret=hunter2hunter2", "hunter2hunter2"),
        ('{"client_secret": "hunter2hunter2"}', "hunter2hunter2"),
        ("response_url=https://hooks.slack.com/commands/T0/1234/AbCdEf", "1234/AbCdEf"),
        ("response_url=https%3A%2F%2Fhooks.slack.com%2Factions%2FT0%2F1234%2FAbCdEf&x=1", "AbCdEf"),
        # GovSlack sends its response_url from hooks.slack-gov.com, in every encoding Slack uses.
        ("response_url=https://hooks.slack-gov.com/commands/T0/1234/AbCdEf", "1234/AbCdEf"),
        ("response_url=https%3A%2F%2Fhooks.slack-gov.com%2Factions%2FT0%2F1234%2FAbCdEf&x=1", "AbCdEf"),
        ('{"response_url":"https:\\/\\/hooks.slack-gov.com\\/actions\\/T0\\/1234\\/AbCdEf"}', "AbCdEf"),
    ],
)
def test_redactor_removes_sensitive_shapes(text: str, gone: str) -> None:
    """Emails in every encoding, pre-signed query strings, tokens, credentials and response_urls disappear."""
    redacted = Redactor()(text)
    assert gone not in redacted
    assert redacted != text


def test_redactor_keeps_the_text_around_what_it_removes() -> None:
    """The line stays readable: only the sensitive part is replaced."""
    redact = Redactor()
    assert redact(f"request for {EMAIL} stored") == "request for [email] stored"
    assert redact(f"link: {LINK}").startswith("link: https://buy-with-prime-requested-data.s3.amazonaws.com/")


def test_added_secrets_are_removed_wherever_they_appear() -> None:
    """A secret registered at run time (an access token, a key) is replaced even with no recognisable shape."""
    redact = Redactor()
    redact.add_secret("plain-looking-secret-value")
    assert "plain-looking-secret-value" not in redact("sent plain-looking-secret-value in a body")
    assert "plain-looking-secret-value" not in redact('{"x":"plain-looking-secret-value"}')


@pytest.mark.parametrize(
    "text",
    [
        "serving on port 3000 (HTTP mode)",
        "task 3f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f moved from IN_PROGRESS to COMPLETED",
        "request 12 by <@U0ALICE> in C0COMPLY for j***@example.com",
        "POST https://slack.com/api/chat.postMessage 200",
        "Buy with Prime unavailable (ThrottlingError); retrying in 0.50 s",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    """Lines without secrets, including masked emails and plain URLs, pass through unchanged."""
    assert Redactor()(text) == text


def test_response_url_with_json_escaped_slashes_is_removed() -> None:
    """Slack escapes '/' in its JSON payloads; such a response_url is still a bearer capability."""
    payload = '{"response_url":"https:\\/\\/hooks.slack.com\\/actions\\/T0\\/1234\\/AbCdEf"}'
    assert "AbCdEf" not in Redactor()(payload)


def test_percent_encoded_presigned_link_is_removed() -> None:
    """A link that travels percent-encoded (a form body, a redirect parameter) still loses its signature."""
    encoded = "url=https%3A%2F%2Fbucket.s3.amazonaws.com%2Fdata.zip%3FX-Amz-Signature%3D0123456789abcdef"
    assert "0123456789abcdef" not in Redactor()(encoded)


# ----------------------------------------------------------------- configure_logging


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_third_party_debug_lines_are_redacted(logs: LogCapture, fmt: str) -> None:
    """A library's DEBUG record, its %-args and an exception text are all redacted before being written."""
    logs.configure("DEBUG", secrets=["configured-secret-value"], redactor=Redactor(), fmt=fmt)
    sdk = logging.getLogger("slack_sdk.web.async_client")
    sdk.debug("Sending a request - body: %s, link: %s", {"text": EMAIL}, LINK)
    sdk.debug("headers: %r", {"x-api-key": "configured-secret-value"})
    try:
        raise ValueError(f"no shopper {EMAIL} at {LINK}")
    except ValueError:
        logging.getLogger("httpx").exception("call failed for %s", EMAIL)
    written = logs.written
    assert "Sending a request" in written and "ValueError: no shopper [email]" in written
    assert "Traceback" in written
    assert EMAIL not in written
    assert "X-Amz-Signature" not in written
    assert "configured-secret-value" not in written


def test_stack_info_and_warnings_are_redacted(logs: LogCapture) -> None:
    """Stack dumps and Python warnings go through the same filter."""
    logs.configure("DEBUG", secrets=[], redactor=Redactor())
    logging.getLogger("aiohttp.client").warning("retrying %s", EMAIL, stack_info=True)
    warnings.warn(f"deprecated call for {EMAIL}", UserWarning, stacklevel=1)
    written = logs.written
    assert "Stack (most recent call last)" in written and "deprecated call for [email]" in written
    assert EMAIL not in written


def test_a_bad_format_string_does_not_lose_the_line(logs: LogCapture) -> None:
    """A library's broken %-format still produces a (redacted) line instead of an error."""
    logs.configure("INFO", secrets=[], redactor=Redactor())
    logging.getLogger("somelib").info("only one %s here", EMAIL, "extra")
    written = logs.written
    assert "only one" in written and EMAIL not in written


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_the_whole_flow_at_debug_logs_no_email_link_secret_or_token(
    tmp_path: Path, logs: LogCapture, fmt: str
) -> None:
    """Command, completion and Download at DEBUG, as text or JSON: the log shows the work but none of what it
    must not."""
    key = os.urandom(32)
    secrets = [
        FakeSlack().token,
        SIGNING_SECRET,
        FakePrime().client_secret,
        RELAY_KEY,
        base64.urlsafe_b64encode(key).decode(),
    ]
    logs.configure("DEBUG", secrets=secrets, fmt=fmt)
    async with running_bot(tmp_path, encryption_key=key, redactor=logs.redactor) as bot:
        assert sorted(bot.settings.secrets()) == sorted(secrets)
        task_id, parent = await bot.request(EMAIL)
        bot.prime.complete(task_id)
        assert (await bot.relay(envelope("PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED", task_id))).status_code == 200
        reply = await bot.download_reply(parent)
        await bot.click(reply, user="U0BOB")
        await bot.slack.wait_for(lambda: [m for m in bot.slack.ephemerals_to("U0BOB") if "X-Amz" in text_of(m)])
        access_tokens = list(bot.prime._tokens)
        links = [link for _, link in bot.prime.links]
    written = logs.written
    assert "chat.postMessage" in written, "DEBUG lines from slack_sdk were expected"
    assert access_tokens and links
    assert "?[redacted]" in written, "the link shown to the clicker was expected in slack_sdk's DEBUG line, redacted"
    assert "jane.shopper" not in written
    assert "X-Amz-Signature" not in written
    for value in [*secrets, *access_tokens, *links]:
        assert value not in written
    if fmt == "json":  # and every line a collector reads is one whole JSON object
        assert all(record["message"] is not None for record in logs.records())


# ----------------------------------------------------------------- LOG_FORMAT=json and what is logged at all


def test_json_lines_carry_time_level_logger_message_and_the_case_ids(logs: LogCapture) -> None:
    """LOG_FORMAT=json: one object per line with the fixed keys, the case's ids as fields, tracebacks inside."""
    logs.configure("INFO", secrets=[], redactor=Redactor(), fmt="json")
    with case_context(request_id=7):
        logging.getLogger("handlers.lifecycle").info("request 7: task t-1 started", extra=log_ids(task_id="t-1"))
    try:
        raise RuntimeError(f"boom for {EMAIL}")
    except RuntimeError:
        logging.getLogger("bot.background").exception("worker failed")
    started, failed = logs.records()
    assert set(started) == {"time", "level", "logger", "message", "request_id", "task_id"}
    assert (started["level"], started["logger"], started["request_id"], started["task_id"]) == (
        "INFO",
        "handlers.lifecycle",
        7,
        "t-1",
    )
    assert started["time"].endswith("+00:00")
    assert "request_id" not in failed, "the ids belong to the work inside case_context alone"
    assert failed["level"] == "ERROR" and "RuntimeError: boom for [email]" in failed["exception"]


async def test_with_log_format_json_every_line_about_a_request_carries_its_request_id(
    tmp_path: Path, logs: LogCapture
) -> None:
    """An access request from command to Download, and an erasure asked, approved, cancelled and one rejected,
    at DEBUG as JSON: every line that names "request N" carries request_id N, so a collector finds a case's
    whole story by its id."""
    logs.configure("DEBUG", secrets=[], fmt="json")
    async with running_bot(tmp_path, redactor=logs.redactor) as bot:
        task_id, parent = await bot.request(EMAIL)
        bot.prime.complete(task_id)
        assert (await bot.relay(envelope("PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED", task_id))).status_code == 200
        await bot.click(await bot.download_reply(parent), user="U0BOB")
        await bot.slack.wait_for(lambda: [m for m in bot.slack.ephemerals_to("U0BOB") if "X-Amz" in text_of(m)])

        erasure = await ask(bot, "delete erase.me@example.com")
        await approve(bot, erasure, "erase.me@example.com")
        cancel = await bot.slack.wait_for(lambda: with_button(bot, erasure["ts"], CANCEL_ACTION))
        await bot.press(cancel, CANCEL_ACTION, user="U0ALICE")
        await bot.slack.wait_for(lambda: "Cancelled by <@U0ALICE>" in text_of(latest(bot, erasure["ts"])))

        withdrawn = await ask(bot, "delete keep.me@example.com")
        reject = with_button(bot, withdrawn["ts"], REJECT_ACTION)
        assert reject is not None
        await bot.press(reject, REJECT_ACTION, user="U0ALICE")
        opened = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
        view = opened[0].args["view"]
        view = json.loads(view) if isinstance(view, str) else view
        assert (await bot.submit(view, {"reason": {"reason": "asked twice"}}, user="U0ALICE")).status_code == 200
        await bot.slack.wait_for(lambda: "Rejected by <@U0ALICE>" in text_of(latest(bot, withdrawn["ts"])))
    named = [(int(m.group(1)), r) for r in logs.records() if (m := re.search(r"\brequest (\d+)\b", r["message"]))]
    assert len({number for number, _ in named}) == 3, [r["message"] for _, r in named]
    without = [r["message"] for number, r in named if r.get("request_id") != number]
    assert not without, without


async def test_a_reconciler_failure_line_carries_its_request_id(
    tmp_path: Path, logs: LogCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request whose reconciliation raises is logged after its lock is let go: the line still carries its id."""
    logs.configure("INFO", secrets=[], fmt="json")
    async with running_bot(tmp_path, redactor=logs.redactor) as bot:
        await bot.request(EMAIL)

        async def unreadable(request_id: int) -> None:
            raise RuntimeError(f"request {request_id} could not be read")

        with monkeypatch.context() as patched:
            patched.setattr(bot.runtime.store.requests, "get", unreadable)
            await bot.runtime.workers.reconciler.reconcile(resume=True)
    failed = [r for r in logs.records() if r["message"].startswith("reconciler: request 1 failed")]
    assert [r.get("request_id") for r in failed] == [1], failed


def test_outside_call_and_retry_lines_are_debug_detail(logs: LogCapture) -> None:
    """At INFO, httpx's line per request and slack_sdk's retry notices are not written; at DEBUG they are."""
    logs.configure("INFO", secrets=[], redactor=Redactor())
    logging.getLogger("httpx").info('HTTP Request: POST https://api.example/graphql "HTTP/1.1 200 OK"')
    logging.getLogger("slack_sdk.web.async_client").info("A retry handler found: RateLimitErrorRetryHandler")
    logging.getLogger("bot.runtime").info("serving on port 3000 (HTTP mode)")
    assert logs.written.splitlines()[-1].endswith("serving on port 3000 (HTTP mode)")
    assert len(logs.written.splitlines()) == 1
    logs.configure("DEBUG", secrets=[], redactor=Redactor())
    logging.getLogger("httpx").info('HTTP Request: POST https://api.example/graphql "HTTP/1.1 200 OK"')
    assert " DEBUG httpx: HTTP Request: POST" in logs.written


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
async def test_a_bad_slack_signature_is_one_warning_without_the_body(
    tmp_path: Path, logs: LogCapture, level: str
) -> None:
    """An unsigned command is refused with 401 and one WARNING line, naming SLACK_SIGNING_SECRET, that carries
    none of what was sent."""
    logs.configure(level, secrets=[], fmt="json")
    async with running_bot(tmp_path) as bot:
        before = len(logs.records())
        response = await bot.slash(EMAIL, sign=False)
        assert response.status_code == 401
        lines = logs.records()[before:]
    refused = [r for r in lines if "signature" in r["message"]]
    assert [r["level"] for r in refused] == ["WARNING"], logs.written
    assert "SLACK_SIGNING_SECRET" in refused[0]["message"], "the line names the setting to check"
    assert "U0ALICE" not in json.dumps(lines) and "[email]" not in json.dumps(lines)


async def test_bolts_notice_that_the_bots_own_token_wins_is_not_written(
    tmp_path: Path, logs: LogCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bolt reads SLACK_BOT_TOKEN itself and warns, at every start, that the bot's client wins: true, and not news."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    logs.configure("INFO", secrets=[])
    async with running_bot(tmp_path):
        pass
    assert "serving on port" in logs.written
    assert warning_token_skipped() not in logs.written, logs.written


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_socket_mode_connect_failures_are_the_links_one_line_not_slack_sdks_traceback(
    logs: LogCapture, level: str
) -> None:
    """slack_sdk's Socket Mode client logs each failed connect with a traceback; the link says it in one line. At
    INFO the client's connect failures are not written and its other warnings lose their traceback; at DEBUG
    every line of it is written, none with a traceback."""
    logs.configure(level, secrets=[])
    client = logging.getLogger(SDK_LOGGER)
    try:
        raise ConnectionRefusedError("connect call failed")
    except ConnectionRefusedError:
        client.exception("Failed to connect (error: connect call failed); Retrying...")
        client.warning("The session seems to be already closed. Reconnecting...", exc_info=True)
    logging.getLogger("bot.socket_link").warning("Socket Mode: cannot connect to Slack (ConnectionRefusedError)")
    assert "Traceback" not in logs.written and "ConnectionRefusedError: connect" not in logs.written, logs.written
    assert ("Failed to connect" in logs.written) is (level == "DEBUG"), logs.written
    assert "already closed" in logs.written and "Socket Mode: cannot connect" in logs.written


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_a_working_bot_at_info_writes_no_line_per_outside_call_or_slack_retry(
    tmp_path: Path, logs: LogCapture, level: str
) -> None:
    """A request through Amazon and Slack, with Slack answering 429 and 503 first: at INFO no httpx line per call
    and no slack_sdk retry notice is written; at DEBUG both are (so the INFO run did make them)."""
    logs.configure(level, secrets=[])
    async with running_bot(tmp_path) as bot:
        task_id, parent = await bot.request(EMAIL)
        bot.slack.retry_after = "0"
        bot.slack.fail["chat.postMessage"] = [429, 503]
        bot.prime.complete(task_id)
        await bot.relay(envelope("PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED", task_id))
        await bot.download_reply(parent)
    per_call = [line for line in logs.written.splitlines() if "HTTP Request:" in line]
    retries = [line for line in logs.written.splitlines() if "A retry handler found" in line]
    if level == "INFO":
        assert not per_call and not retries, logs.written
    else:
        assert len(per_call) >= 3 and retries and all(" DEBUG " in line for line in per_call + retries)
