"""The records the store hands out: frozen values, never live rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core import RequestKind, TaskError

__all__ = [
    "NOTICE",
    "OPENS_THREAD",
    "AuditEntry",
    "InboxEvent",
    "Moved",
    "Notice",
    "OutboxEntry",
    "Request",
    "RequestStatus",
    "TaskError",
]


class RequestStatus(StrEnum):
    """Where a request stands, whatever its kind.

    What each status means for the shared steps is said once, by the properties below (the store's
    queries bind the sets made from them): a new status says here which of them it belongs to.
    """

    NEW = "NEW"  # stored; its thread is not posted yet
    AWAITING_APPROVAL = "AWAITING_APPROVAL"  # thread posted; a second allowed person must approve before the start
    STARTING = "STARTING"  # thread posted (and approved, where a kind needs it); Amazon has not confirmed the task
    ON_HOLD = "ON_HOLD"  # Amazon holds the task for its holding period: it can still be cancelled
    IN_PROGRESS = "IN_PROGRESS"  # Amazon is working on the task
    COMPLETED = "COMPLETED"  # Amazon finished the task (a retrieval's data is ready; an erasure's data deleted)
    FAILED = "FAILED"  # Amazon ran the task and it failed
    CANCELLED = "CANCELLED"  # cancelled during its hold: Amazon will not run it
    REJECTED = "REJECTED"  # refused before it started: by Amazon, or by staff (closed_by says who)
    ABANDONED = "ABANDONED"  # never started: the bot could not post in the channel, or start in time

    @property
    def unfinished(self) -> bool:
        """Not final yet: the bot, Amazon or staff still have something to do before it ends."""
        return self in _UNFINISHED

    @property
    def moving(self) -> bool:
        """The bot or Amazon moves it on by itself: the reconciler looks at it, and it counts as backlog.

        A request waiting for a person's approval is unfinished but not moving: nothing polls it.
        """
        return self.unfinished and self is not RequestStatus.AWAITING_APPROVAL

    @property
    def never_started(self) -> bool:
        """Final without a task at Amazon: no case to answer, no deadline, no reminders."""
        return self in (RequestStatus.REJECTED, RequestStatus.ABANDONED)

    @property
    def started(self) -> bool:
        """A case with a thread that staff decide on, or a task at Amazon: its deadline can be extended."""
        return self not in (RequestStatus.NEW, RequestStatus.STARTING) and not self.never_started

    @property
    def closable(self) -> bool:
        """Amazon's task has ended (or was cancelled), so there is an answer to send and the case can close."""
        return self in (RequestStatus.COMPLETED, RequestStatus.FAILED, RequestStatus.CANCELLED)


_UNFINISHED = frozenset(
    {
        RequestStatus.NEW,
        RequestStatus.AWAITING_APPROVAL,
        RequestStatus.STARTING,
        RequestStatus.ON_HOLD,
        RequestStatus.IN_PROGRESS,
    }
)


@dataclass(frozen=True, slots=True)
class Request:
    """A shopper's data request as stored: the email only masked, never in the clear.

    ``kind`` is a ``RequestKind`` value (the decisions per kind are the handlers'); ``params`` are the
    kind's own inputs (none for a retrieval), as staff typed them.
    """

    id: int
    client_token: str
    email_masked: str | None
    requester: str
    channel: str
    thread_ts: str | None
    task_id: str | None
    status: RequestStatus
    errors: tuple[TaskError, ...]
    created_at: float
    updated_at: float
    due_at: float = 0.0
    deadline: str = ""  # how the due date was set: "30 days", "GDPR: one month", "CCPA: 45 days", …
    reminders_sent: frozenset[str] = frozenset()
    closed_at: float | None = None
    closed_by: str | None = None
    purged_at: float | None = None
    check_failures: int = 0  # Amazon could not be asked about it this many times in a row (its backoff)
    waiting_since: float | None = None  # the thread was told "waiting for Buy with Prime" at this time
    start_sent_at: float | None = None  # a start call may have reached Amazon from then on (clientToken window)
    kind: str = RequestKind.RETRIEVAL
    params: Mapping[str, str] = field(default_factory=dict)
    approved_by: str | None = None  # the second person who approved it (a kind that needs approval)
    approved_at: float | None = None
    hold_ends_at: float | None = None  # the end of Amazon's holding period, for a task started on hold
    cancelled_by: str | None = None  # who cancelled it during its hold (kept if Amazon runs the task after all)
    cancelled_at: float | None = None
    ref: str = ""  # random: its buttons carry it beside the id, which a restored database hands out again
    cancel_sent_at: float | None = None  # a cancel call may have reached Amazon from then on, its answer unknown
    # The compliance record (core.ReceivedVia, VerificationMethod, Outcome, DenialReason hold the values).
    received_on: str = ""  # YYYY-MM-DD (UTC): the day the shopper asked; deadlines count from it
    received_via: str | None = None  # None: not recorded
    outside_ref: str | None = None  # staff's ticket reference, plain text
    verified_by: str | None = None  # who recorded the shopper's identity as verified
    verified_how: str | None = None
    verified_at: float | None = None
    outcome: str | None = None  # the nature of the response, once closed
    denial_reason: str | None = None
    extension_told_at: float | None = None  # the shopper was told the deadline is extended

    @property
    def is_open_case(self) -> bool:
        """Staff still owe the shopper an answer: not closed, and not a request that never started."""
        return self.closed_at is None and not self.status.never_started


@dataclass(frozen=True, slots=True)
class Moved:
    """What a guarded move did: whether it moved the request, and the request as it stands once it is over.

    A move that lost a race says where the request went instead, read in the same unit: no second look.
    """

    moved: bool
    request: Request | None  # None: no such request


@dataclass(frozen=True, slots=True)
class Notice:
    """What a change has to tell Slack, queued in the change's transaction and put into words when sent.

    The store keeps what to say, never the Slack message: ``name`` says which one (``handlers/notices.py``
    knows them) and ``args`` what it needs beyond the request as it is then (a reply's name, a Slack
    error code). No text, Block Kit or shopper data is rendered inside a transaction or waits in a queue.
    """

    name: str
    args: Mapping[str, str] = field(default_factory=dict)
    purpose: str = ""  # OPENS_THREAD, NOTICE, or "" for any other post


OPENS_THREAD = "thread"  # the post that opens a request's thread: its ts becomes the thread's
NOTICE = "notice"  # a direct message to the requester that a thread post was abandoned


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A queued notice, as the outbox worker sees it.

    ``method`` and ``payload`` are a ``Notice``'s name and args. ``request`` is the request as it
    stands when the entry is taken, to put the notice into words.
    """

    id: int
    request_id: int
    method: str
    payload: dict[str, Any]
    attempts: int
    purpose: str = ""
    last_error: str | None = None  # why the previous attempt failed, if it did
    request: Request | None = None


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """A relayed Buy with Prime event, stored before it was acknowledged."""

    event_id: str
    event_type: str
    task_id: str
    received_at: float
    attempts: int = 0  # failed tries so far: its backoff


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the append-only audit log: who did what to which request, and when."""

    id: int
    at: float
    request_id: int | None
    actor: str
    action: str
    detail: str
    actor_name: str = ""  # the actor's Slack name when the action was taken ("" for the bot, Amazon, the CLI)
    prev_hash: str = ""  # the hash of the entry before it (the chain: store/_chain.py)
    hash: str = ""  # the hash of this entry's content and ``prev_hash``
