"""What an erasure is, apart from its words: its buttons' ids, its holding period, when *Try again* applies,
and which reasons can be kept. The flow, the buttons and the texts all read these; none of them says words.
"""

from __future__ import annotations

import math
from enum import Enum

from handlers.deadlines import DAY
from handlers.emails import names_an_email
from prime import DEFAULT_HOLD_DAYS, DELETION
from store import Request, RequestStatus

__all__ = [
    "APPROVE_ACTION",
    "CANCEL_ACTION",
    "DENIABLE",
    "OPEN_ORDERS",
    "REASON_LIMIT",
    "REJECT_ACTION",
    "REJECT_VIEW",
    "RETRY_ACTION",
    "RUN_AFTER_CANCEL",
    "ReasonProblem",
    "hold_days",
    "hold_past_due",
    "open_orders",
    "ran_after_cancel",
    "reason_problem",
    "retryable",
    "window_passed",
]

APPROVE_ACTION = "erasure_approve"
REJECT_ACTION = "erasure_reject"
CANCEL_ACTION = "erasure_cancel"
RETRY_ACTION = "erasure_retry"
REJECT_VIEW = "erasure_reject"  # the Reject modal's callback id
OPEN_ORDERS = "ORDERS_NOT_CLOSED"  # Amazon's error code: the shopper has open orders, nothing is deleted
REASON_LIMIT = 500  # characters of a reason: kept in the thread, the database and at Amazon
# Where **Deny** closes an erasure: before anything reached Amazon (a denial then sends nothing), or once
# Amazon's task has ended; never while Amazon holds or runs it (Cancel deletion is the way then).
DENIABLE = frozenset(
    {
        RequestStatus.NEW,
        RequestStatus.AWAITING_APPROVAL,
        RequestStatus.COMPLETED,
        RequestStatus.FAILED,
        RequestStatus.CANCELLED,
    }
)
# Where a task the bot had recorded as cancelled can stand once Amazon ran it after all.
RUN_AFTER_CANCEL = frozenset({RequestStatus.IN_PROGRESS, RequestStatus.COMPLETED, RequestStatus.FAILED})


def hold_days(request: Request) -> int:
    """The holding period this erasure asks Amazon for (its ``--hold``, else DELETION_HOLD_DAYS)."""
    return int(request.params.get("hold_days", DEFAULT_HOLD_DAYS))


_GRACE = 1 / 24  # of a day: the due date is a day, so an approval an hour inside a whole day counts that day


def hold_past_due(request: Request, *, at: float) -> int | None:
    """None when the holding period and Amazon's processing time, started ``at``, end by the due date; else the
    longest hold in days that would (negative: not even a deletion started at once ends in time)."""
    days_left = math.floor((request.due_at - at) / DAY + _GRACE)
    longest = days_left - DELETION.processing_days
    return None if hold_days(request) <= longest else longest


def open_orders(request: Request) -> bool:
    """Amazon failed the task because the shopper has open orders: it can be tried again once they close."""
    return request.status is RequestStatus.FAILED and any(e.code == OPEN_ORDERS for e in request.errors)


def window_passed(request: Request) -> bool:
    """The start was sent but never confirmed within the clientToken's window: a new task is needed."""
    return (
        request.status is RequestStatus.ABANDONED
        and request.start_sent_at is not None
        and request.thread_ts is not None
    )


def retryable(request: Request) -> bool:
    """*Try again* starts a new task: after open orders, or after the clientToken's window passed; not once closed."""
    return request.closed_at is None and (open_orders(request) or window_passed(request))


def ran_after_cancel(request: Request) -> bool:
    """Recorded as cancelled, yet Amazon ran the task: what the thread said is to be corrected."""
    return request.cancelled_by is not None and request.status in RUN_AFTER_CANCEL


class ReasonProblem(Enum):
    """Why a reason cannot be kept (it is stored, shown in the channel and sent to Amazon)."""

    MISSING = "missing"
    UNFIT = "unfit"  # too long, or it names an email


def reason_problem(reason: str) -> ReasonProblem | None:
    """What is wrong with ``reason``; None: it can be kept."""
    if not reason.strip():
        return ReasonProblem.MISSING
    if len(reason) > REASON_LIMIT or names_an_email(reason):
        return ReasonProblem.UNFIT
    return None
