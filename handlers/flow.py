"""What the handlers are given, split by who needs it: a ``Flow`` moves a request, a ``Desk`` answers a person.

Passed in rather than reached for: the runtime builds one of each, and a test builds its own around a
temp store and whatever fakes it needs. The lifecycle and the workers that move requests (the inbox
worker, the reconciler) take a ``Flow``; the listeners (the command, the buttons) take a ``Desk``, which
carries the ``Flow`` their requests move through. Timers that only keep cases (reminders, retention) and
the Home tab take the few things they use, not either of these.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core import Background, backoff, case_context
from handlers.kinds import KindFlow
from handlers.workers.access import Authorizer
from handlers.workers.outbox import SendResult
from prime import Operations, TaskState
from store import Request, Store

__all__ = ["Counters", "Desk", "Flow", "Permalinks", "RequestLocks", "StartGate", "TaskSource"]


class TaskSource(Protocol):
    """The part of Buy with Prime the handlers use (the real client, or anything shaped like it)."""

    async def start_task(
        self, operations: Operations, *, email: str, client_token: str, extra: Mapping[str, Any] | None = None
    ) -> str: ...

    async def task(self, operations: Operations, task_id: str) -> TaskState: ...

    async def cancel_task(self, operations: Operations, task_id: str) -> None: ...


class Counters(Protocol):
    """What the handlers count for /metrics (the bot's ``Metrics``, or anything shaped like it)."""

    def reminder_sent(self) -> None: ...

    def reconciler_pass(self, result: str) -> None: ...


class _NotCounted:
    """Counters for a ``Flow`` built without metrics (a test's): the counts go nowhere."""

    def reminder_sent(self) -> None:
        pass

    def reconciler_pass(self, result: str) -> None:
        pass


class RequestLocks:
    """One lock per request id, so a command, an event and the reconciler never advance it at once."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}

    def busy(self, request_id: int) -> bool:
        """Someone is moving this request right now."""
        lock = self._locks.get(request_id)
        return lock is not None and lock.locked()

    @asynccontextmanager
    async def hold(self, request_id: int) -> AsyncIterator[None]:
        """Move this request alone; the log lines of the work inside name it."""
        lock = self._locks.setdefault(request_id, asyncio.Lock())
        try:
            async with lock:
                with case_context(request_id=request_id):
                    yield
        finally:
            if not lock.locked() and self._locks.get(request_id) is lock:
                del self._locks[request_id]


async def _nothing_to_send(_: int) -> SendResult | None:
    return None


def _nobody_to_tell() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Flow:
    """What moves a request: the store, Buy with Prime, the clock, and who to wake when a move queues work.

    ``open_thread`` sends a request's next due outbox entry now (its thread's first message): the outbox's
    ``send_for``. ``wake_outbox``, ``wake_inbox`` and ``home_changed`` say that a move queued a Slack post,
    made a task's waiting events applicable, or changed what the Home tab shows. A test leaves them out.
    """

    store: Store
    prime: TaskSource
    reconcile_interval: float  # a started request is asked about again after this, events or not
    retry_soon: float  # a request whose thread, start or check failed waits this long, doubling...
    retry_cap: float  # ... up to this
    kinds: Mapping[str, KindFlow]  # every kind this bot runs (handlers/kinds/registry.py), by a request's ``kind``
    open_thread: Callable[[int], Awaitable[SendResult | None]] = _nothing_to_send
    wake_outbox: Callable[[], None] = _nobody_to_tell
    wake_inbox: Callable[[], None] = _nobody_to_tell
    home_changed: Callable[[], None] = _nobody_to_tell
    clock: Callable[[], float] = time.time
    counters: Counters = field(default_factory=_NotCounted)
    locks: RequestLocks = field(default_factory=RequestLocks)
    hold_day: float = 86_400.0  # how long one day of Amazon's holding period lasts (the sandbox shortens it)

    def retry_delay(self, failures: int) -> float:
        """How long a request that failed ``failures`` times in a row waits before the next try."""
        return backoff(failures, base=self.retry_soon, cap=max(self.retry_soon, self.retry_cap))


@dataclass(frozen=True, slots=True)
class StartGate:
    """How a burst of new requests starts: two at a time.

    A burst of commands must not queue so much background work (threads opened, starts at Amazon) that
    the next acknowledgement waits behind it. (A wait of up to 1 s for a lull in the acknowledgements,
    AckPressure, was measured beside the slots and removed: benchmarks/README.md, "ack_pressure".)
    """

    # Measured without the slots: ack p99 at c=32 1.43x bare Bolt's instead of 0.84x (+70%; benchmarks/README.md).
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))


@dataclass(frozen=True, slots=True)
class Desk:
    """What answers a person: the flow their request moves through, Slack, who may act, background work.

    ``deadline_days`` has no default here: RESPONSE_DEADLINE_DAYS's default (bot/settings.py) is the one.
    ``kind_defaults``: a kind's params the command may leave out, by kind, as the settings give them
    (an erasure's ``hold_days`` from DELETION_HOLD_DAYS).
    """

    flow: Flow
    slack: AsyncWebClient
    authorizer: Authorizer
    background: Background
    permalinks: Permalinks
    deadline_days: int
    starts: StartGate = field(default_factory=StartGate)
    kind_defaults: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    async def permalink(self, request: Request) -> str | None:
        """A link to the request's thread, or None when Slack cannot give one."""
        return await self.permalinks.get(request)


class Permalinks:
    """Links to request threads, asked of Slack once each: a thread's permalink never changes."""

    def __init__(self, slack: AsyncWebClient, *, size: int = 2048) -> None:
        self._slack = slack
        self._known: dict[tuple[str, str], str] = {}
        self._size = size

    async def get(self, request: Request) -> str | None:
        """The thread's permalink, or None when Slack cannot give one (best effort, never raises)."""
        if not request.thread_ts:
            return None
        key = (request.channel, request.thread_ts)
        if key in self._known:
            return self._known[key]
        try:
            response = await self._slack.chat_getPermalink(channel=request.channel, message_ts=request.thread_ts)
        except (SlackApiError, OSError, TimeoutError):
            return None
        link = response.get("permalink")
        if not link:
            return None
        if len(self._known) >= self._size:
            self._known.pop(next(iter(self._known)))
        self._known[key] = str(link)
        return str(link)
