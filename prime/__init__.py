"""The leaf every room stands on: Buy with Prime's privacy API and the words the bot shares; imports none of ours.

Most of it is Amazon's: the client (``PrimeClient``), its documents and answer readers, the task's state
(``TaskState``, ``TaskError``), each kind of task's operations (``RequestKind``, ``Operations``) and
Amazon's email rule (``AMAZON_EMAIL``, ``mask_email``, ``scrub``). The
rest is here because every package needs it and it needs nothing: the error tree, the retry policy, the
set of background tasks, the outage board, and the ids that tie a log line to a case.

Arrows run ``bot -> handlers -> store -> prime`` (the import-linter contracts in ``pyproject.toml``): a
module here that imported ``bot``, ``handlers`` or ``store`` would fail CI. Modules are private; this is
the one way in.
"""

from __future__ import annotations

from prime._answers import UNEXPECTED, TaskState
from prime._background import Background, Wakeup, supervise
from prime._client import AmazonCalls, PrimeClient
from prime._emails import AMAZON_EMAIL, EMAIL_IN_LOGS, EMAIL_IN_TEXT, mask_email, scrub
from prime._errors import (
    BackupFailed,
    ConfigError,
    DataRequestError,
    EmailUnreadable,
    PrimeError,
    PrimeRejected,
    PrimeUnavailable,
    RelayRejected,
    StoreUnavailable,
    slack_error_code,
)
from prime._kinds import (
    CANCEL_DELETION,
    CLIENT_TOKEN_WINDOW,
    DEFAULT_HOLD_DAYS,
    DELETION,
    DELETION_QUERY,
    LINK_LIFETIME,
    MAX_HOLD_DAYS,
    RETRIEVAL,
    START_DELETION,
    START_RETRIEVAL,
    TASK_QUERY,
    Operations,
    RequestKind,
)
from prime._logids import CONTEXT_FIELDS, case_context, current_ids, log_ids
from prime._outages import Episode, Outages
from prime._retry import RetryPolicy, backoff
from prime._types import TaskError

__all__ = [
    "AMAZON_EMAIL",
    "CANCEL_DELETION",
    "CLIENT_TOKEN_WINDOW",
    "CONTEXT_FIELDS",
    "DEFAULT_HOLD_DAYS",
    "DELETION",
    "DELETION_QUERY",
    "EMAIL_IN_LOGS",
    "EMAIL_IN_TEXT",
    "LINK_LIFETIME",
    "MAX_HOLD_DAYS",
    "RETRIEVAL",
    "START_DELETION",
    "START_RETRIEVAL",
    "TASK_QUERY",
    "UNEXPECTED",
    "AmazonCalls",
    "Background",
    "BackupFailed",
    "ConfigError",
    "DataRequestError",
    "EmailUnreadable",
    "Episode",
    "Operations",
    "Outages",
    "PrimeClient",
    "PrimeError",
    "PrimeRejected",
    "PrimeUnavailable",
    "RelayRejected",
    "RequestKind",
    "RetryPolicy",
    "StoreUnavailable",
    "TaskError",
    "TaskState",
    "Wakeup",
    "backoff",
    "case_context",
    "current_ids",
    "log_ids",
    "mask_email",
    "scrub",
    "slack_error_code",
    "supervise",
]
