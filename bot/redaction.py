"""Log redaction: no shopper email, pre-signed link, token or secret in any log line.

The filter sits on the root logger's handlers, not on the root logger itself:
a logger's own filters never see records that propagate up from other loggers
(slack_sdk, aiohttp, httpx), whereas a handler's filters see every record it
writes. Redaction works on the fully formatted text, tracebacks included.
"""

from __future__ import annotations

import logging
import re
import sys
import threading

from bot.logformat import RAISED_FROM, TEXT_FORMAT, JsonFormatter, LevelPolicy
from bot.socket_link import OneLinePerAttempt
from core import CONTEXT_FIELDS, EMAIL_IN_LOGS

__all__ = ["Redactor", "configure_logging"]

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Slack tokens of every kind (bot, user, app-level, refresh, config).
    (re.compile(r"\bx(?:ox[abpres]|app)-[A-Za-z0-9-]+"), "[slack-token]"),
    # Authorization headers and bearer tokens, wherever they are printed.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    # The query string of any URL: pre-signed S3 links carry their signature there.
    (re.compile(r"(https?://[^\s?\"'<>|]+)\?[^\s\"'<>|]*"), r"\1?[redacted]"),
    # Slack response_url and incoming-webhook paths are bearer capabilities, on every host Slack sends them
    # from: hooks.slack.com, GovSlack's hooks.slack-gov.com, and any regional hooks.*.slack.com.
    (
        re.compile(r"(?i)(hooks\.(?:[a-z0-9-]+\.)*slack(?:-gov)?\.com(?:\\?/|%2F|%5C%2F))[^\s\"'<>|&]+"),
        r"\1[redacted]",
    ),
    # Anything left that still looks like a signed AWS request.
    (re.compile(r"(?i)X-Amz-[A-Za-z-]+(?:=|%3D)[^\s&\"'<>|]+"), "X-Amz-[redacted]"),
    # A percent-encoded query (a link inside an encoded form body).
    (
        re.compile(r"(?i)(https?(?::|%3A)(?:/|%2F){2}[^\s\"'<>|&?%]+(?:%2F[^\s\"'<>|&?%]*)*)%3F[^\s\"'<>|&]*"),
        r"\1%3F[redacted]",
    ),
    # Email addresses, plain, percent-encoded (form bodies) or JSON-escaped.
    (EMAIL_IN_LOGS, "[email]"),
    # Secrets passed as key=value or "key": "value" by libraries at DEBUG.
    (
        re.compile(
            r"(?i)((?:client_secret|access_token|refresh_token|password|api[_-]?key|token)"
            r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
        ),
        r"\1[redacted]",
    ),
)


class Redactor:
    """Replaces known secrets and sensitive shapes in text; secrets can be added at run time."""

    def __init__(self) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def add_secret(self, value: str | None) -> None:
        """Treat ``value`` (an access token, a key) as a secret from now on."""
        if value and len(value) >= 6:
            with self._lock:
                self._secrets = self._secrets | {value}

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[secret]")
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


class _RedactingFilter(logging.Filter):
    """Formats the record's message and exception once, redacted, so no handler sees the raw text."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = self._redactor(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self._redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redactor(record.stack_info)
        for name in CONTEXT_FIELDS:  # ids, but one that came from outside is text like any other
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, self._redactor(value))
        return True


def configure_logging(
    level: str, *, secrets: list[str], fmt: str = "text", redactor: Redactor | None = None
) -> Redactor:
    """Send logs to stderr, as text or JSON lines (``fmt``), through the redaction filter; register the secrets.

    The process's one logging set-up, done once by the command line: the bot's parts (Bolt, Socket Mode,
    ``Runtime.start``) add no filter and change no level; the rules for their lines are here.

    Returns the redactor the handler uses (``redactor``, or a new one): whoever learns a secret later (the
    Buy with Prime client's access token, the sandbox's relay key) adds it there. There is no process-wide
    instance to reach for.
    """
    redactor = redactor or Redactor()
    for secret in secrets:
        redactor.add_secret(secret)
    threshold = logging.getLevelName(level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(LevelPolicy(threshold))  # first: a dropped line is never formatted
    handler.addFilter(OneLinePerAttempt(threshold))  # before redaction formats the traceback it drops
    handler.addFilter(_RedactingFilter(redactor))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Bolt's INFO lines that LevelPolicy raises to WARNING must be made at any LOG_LEVEL (the handler still
    # drops the rest below it): Bolt copies this logger's level onto each logger it makes.
    logging.getLogger(RAISED_FROM).setLevel(min(logging.INFO, threshold))
    logging.captureWarnings(True)
    return redactor
