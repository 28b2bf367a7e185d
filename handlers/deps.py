"""What the handlers need from the outside world, passed in rather than reached for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers.access import Authorizer
from handlers.outbox import SendResult
from prime import AckPressure, Background, TaskState, backoff, case_context
from store import Request, Store

__all__ = ["Counters", "Deps", "Permalinks", "RequestLocks", "TaskSource"]


class TaskSource(Protocol):
    """The part of Buy with Prime the handlers use (the real client, or anything shaped like it)."""

    async def start_retrieval(self, *, email: str, client_token: str) -> str: ...

    async def retrieval_task(self, task_id: str) -> TaskState: ...


class Counters(Protocol):
    """What the handlers count for /metrics (the bot's ``Metrics``, or anything shaped like it)."""

    def reminder_sent(self) -> None: ...

    def reconciler_pass(self, result: str) -> None: ...


class _NotCounted:
    """Counters for a ``Deps`` built without metrics: the counts go nowhere."""

    def reminder_sent(self) -> None:
        pass

    def reconciler_pass(self, result: str) -> None:
        pass


class RequestLocks:
    """One lock per request id, so a command, an event and the reconciler never advance it at once."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}

    def busy(self, request_id: int) -> bool:
        lock = self._locks.get(request_id)
        return lock is not None and lock.locked()

    @asynccontextmanager
    async def hold(self, request_id: int) -> AsyncIterator[None]:
        lock = self._locks.setdefault(request_id, asyncio.Lock())
        try:
            async with lock:
                with case_context(request_id=request_id):  # the log lines of this work name the request
                    yield
        finally:
            if not lock.locked() and self._locks.get(request_id) is lock:
                del self._locks[request_id]


async def _nothing_to_send(_: int) -> SendResult | None:
    return None


@dataclass(frozen=True, slots=True)
class Deps:
    """The handlers' edges: store, Buy with Prime, Slack, authorization, background work, wake-ups."""

    store: Store
    prime: TaskSource
    slack: AsyncWebClient
    authorizer: Authorizer
    background: Background
    permalinks: Permalinks
    reconcile_interval: float
    retry_soon: float = 60.0
    # Send a request's next due outbox entry now (its thread's first message): the outbox's send_for.
    open_thread: Callable[[int], Awaitable[SendResult | None]] = _nothing_to_send
    retry_cap: float = 900.0  # the longest a failing request waits before Amazon is asked again
    deadline_days: int = 30
    wake_outbox: Callable[[], None] = lambda: None
    wake_inbox: Callable[[], None] = lambda: None
    home_changed: Callable[[], None] = lambda: None
    clock: Callable[[], float] = time.time
    locks: RequestLocks = field(default_factory=RequestLocks)
    # How many new requests open their thread and start at Amazon at once: a burst of commands
    # must not queue so much background work that the next acknowledgement waits behind it.
    start_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    pressure: AckPressure = field(default_factory=AckPressure)
    metrics: Counters = field(default_factory=_NotCounted)

    def retry_delay(self, failures: int) -> float:
        """How long a request that failed ``failures`` times in a row waits before the next try."""
        return backoff(failures, base=self.retry_soon, cap=max(self.retry_soon, self.retry_cap))

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
