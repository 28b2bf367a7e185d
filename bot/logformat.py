"""How a log line looks (text for people, one JSON object per line for collectors) and which lines are noise.

The redaction filter (bot/redaction.py) runs before either format, so both carry
the same redacted message. Ids that tie a line to a case (request, task) are
fields of the record: set for a stretch of work with ``prime.case_context`` (every
line logged inside it, a library's too, carries them) or for one call with
``extra=prime.log_ids(...)``; the JSON format gives them fields of their own.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped, warning_token_skipped

from core import CONTEXT_FIELDS, current_ids

__all__ = ["RAISED_FROM", "TEXT_FORMAT", "JsonFormatter", "LevelPolicy"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# (logger name prefix, message prefix, new level, new message or None to keep it).
# httpx logs every request at INFO and slack_sdk every retry: one line per outside call is DEBUG detail.
# Bolt logs a bad Slack signature at INFO with the whole body: a refusal is a warning, and the body is
# the sender's business (a form post that may carry a shopper's email).
_RELEVELLED: tuple[tuple[str, str, int, str | None], ...] = (
    ("httpx", "HTTP Request:", logging.DEBUG, None),
    ("slack_sdk", "A retry handler found", logging.DEBUG, None),
    (
        "slack_bolt.RequestVerification",
        "Invalid request signature",
        logging.WARNING,
        "Slack request refused: invalid or missing signature (HTTP 401); if every request from Slack is refused, "
        "SLACK_SIGNING_SECRET is not the Signing Secret of the app's Basic Information page",
    ),
)
# The logger whose INFO records must exist whatever LOG_LEVEL says, because a rule above raises one of
# them to WARNING: Bolt's. Bolt copies the level of the logger it is given ("slack_bolt") onto each logger
# it makes (RequestVerification among them), so ``configure_logging`` sets that one level, once.
RAISED_FROM = "slack_bolt"
# Bolt reads SLACK_BOT_TOKEN itself and warns that our client's token wins: true, and not news.
_BOLT_NOT_NEWS = frozenset({warning_client_prioritized_and_token_skipped(), warning_token_skipped()})


class LevelPolicy(logging.Filter):
    """A handler filter: adds the case's ids, drops what is not news, moves the records in ``_RELEVELLED``
    to their level, then applies LOG_LEVEL itself.

    A handler sees records propagated from any logger without the root's level being checked again,
    so the threshold is applied here, after a record's level may have changed.
    """

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current_ids().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        if record.name.startswith("slack_bolt") and str(record.msg) in _BOLT_NOT_NEWS:
            return False
        for prefix, starts, level, message in _RELEVELLED:
            if record.name.startswith(prefix) and str(record.msg).startswith(starts):
                record.levelno, record.levelname = level, logging.getLevelName(level)
                if message is not None:
                    record.msg, record.args = message, None
                break
        return record.levelno >= self.level


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, ids, exception text."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)
