"""The shared vocabulary every package stands on; it imports nothing of ours and knows neither Slack nor Amazon.

The error tree (``DataRequestError`` and below), the background tasks the bot keeps (``Background``,
``supervise``, ``Wakeup``) and the requests they give way to (``Foreground``), the outage board (``Outages``),
the ids that tie a log line to a case, the one backoff rule, the kinds' names (``RequestKind``), the compliance
record's words (``Outcome``, ``DenialReason``, ``ReceivedVia``, ``VerificationMethod``), a failed task's reasons
(``TaskError``), and the shapes of an email address (how one is found in text and logs, and masked wherever it
is shown).

Arrows run ``bot -> handlers -> {store, prime} -> core`` (the import-linter contracts in ``pyproject.toml``).
Modules are private; this is the one way in.
"""

from __future__ import annotations

from core._background import Background, Wakeup, supervise
from core._emails import AMAZON_EMAIL, EMAIL_IN_LOGS, EMAIL_IN_TEXT, mask_email, scrub
from core._errors import (
    BackupFailed,
    ConfigError,
    DataRequestError,
    EmailUnreadable,
    PrimeError,
    PrimeRejected,
    PrimeUnavailable,
    RelayRejected,
    StoreUnavailable,
)
from core._foreground import PATIENCE, Foreground
from core._kinds import RequestKind
from core._logids import CONTEXT_FIELDS, case_context, current_ids, log_ids
from core._outages import Episode, Outages
from core._record import DenialReason, Outcome, ReceivedVia, VerificationMethod
from core._retry import RetryPolicy, backoff
from core._types import TaskError

__all__ = [
    "AMAZON_EMAIL",
    "CONTEXT_FIELDS",
    "EMAIL_IN_LOGS",
    "EMAIL_IN_TEXT",
    "PATIENCE",
    "Background",
    "BackupFailed",
    "ConfigError",
    "DataRequestError",
    "DenialReason",
    "EmailUnreadable",
    "Episode",
    "Foreground",
    "Outages",
    "Outcome",
    "PrimeError",
    "PrimeRejected",
    "PrimeUnavailable",
    "ReceivedVia",
    "RelayRejected",
    "RequestKind",
    "RetryPolicy",
    "StoreUnavailable",
    "TaskError",
    "VerificationMethod",
    "Wakeup",
    "backoff",
    "case_context",
    "current_ids",
    "log_ids",
    "mask_email",
    "scrub",
    "supervise",
]
