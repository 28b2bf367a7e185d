"""The Buy with Prime privacy API's client, and nothing else: its documents, operations and answer readers.

The client (``PrimeClient``), each kind of task's operations (``Operations``, ``RETRIEVAL``, ``DELETION``),
the task's state as Amazon reports it (``TaskState``), and Amazon's numbers that texts quote
(the clientToken's window, a link's lifetime, the holding period's bounds). The errors it raises, the
retry rule and the outage board it reports to are the shared vocabulary in ``core``.

Arrows run ``bot -> handlers -> {store, prime} -> core``: prime never imports the store, and neither knows
Slack, Bolt or aiohttp. Modules are private; this is the one way in.
"""

from __future__ import annotations

from prime._answers import UNEXPECTED, TaskState
from prime._client import AmazonCalls, PrimeClient
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
)

__all__ = [
    "CANCEL_DELETION",
    "CLIENT_TOKEN_WINDOW",
    "DEFAULT_HOLD_DAYS",
    "DELETION",
    "DELETION_QUERY",
    "LINK_LIFETIME",
    "MAX_HOLD_DAYS",
    "RETRIEVAL",
    "START_DELETION",
    "START_RETRIEVAL",
    "TASK_QUERY",
    "UNEXPECTED",
    "AmazonCalls",
    "Operations",
    "PrimeClient",
    "TaskState",
]
