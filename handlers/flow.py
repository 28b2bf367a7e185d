"""What moves a request: the ``Flow`` (store, Buy with Prime, clock, kinds) and the per-request locks.

Passed in rather than reached for: the runtime builds one, and a test builds its own around a temp
store and whatever fakes it needs. The lifecycle and the workers that move requests (the inbox worker,
the reconciler) take a ``Flow``; the listeners take a ``Desk`` (``handlers/desk.py``), which carries it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

from core import Foreground, backoff, case_context
from handlers.kinds import KindFlow
from handlers.workers.outbox import SendResult
from prime import Operations, TaskState
from store import Store

__all__ = ["Counters", "Flow", "RequestLocks", "TaskSource"]


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
    """One lock per request id, so a command, an event and the reconciler never advance it at once.

    ``across`` holds it against the other copies of the bot sharing the database too (``store.across.hold``).
    """

    def __init__(self, across: Callable[[int], AbstractAsyncContextManager[None]] | None = None) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._across = across

    def busy(self, request_id: int) -> bool:
        """Someone is moving this request right now."""
        lock = self._locks.get(request_id)
        return lock is not None and lock.locked()

    @asynccontextmanager
    async def hold(self, request_id: int) -> AsyncIterator[None]:
        """Move this request alone; the log lines of the work inside name it."""
        lock = self._locks.setdefault(request_id, asyncio.Lock())
        try:
            async with lock, self._across(request_id) if self._across else nullcontext():
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
    """What moves a request: the store, Buy with Prime, the clock, and who to wake when a task starts.

    ``open_thread`` sends a request's next due outbox entry now (its thread's first message): the outbox's
    ``send_for``. ``wake_inbox`` says a task's waiting events became applicable. A test leaves them out.
    ``foreground``: the requests someone waits on; the work that moves requests in the background gives way
    to them before each request it takes up.
    The outbox and the Home tab need no telling: the store signals each commit that concerns them
    (``Store.after_commit``, wired where the workers are built).
    """

    store: Store
    prime: TaskSource
    reconcile_interval: float  # a started request is asked about again after this, events or not
    retry_soon: float  # a request whose thread, start or check failed waits this long, doubling...
    retry_cap: float  # ... up to this
    kinds: Mapping[str, KindFlow]  # every kind this bot runs (handlers/kinds/registry.py), by a request's ``kind``
    open_thread: Callable[[int], Awaitable[SendResult | None]] = _nothing_to_send
    wake_inbox: Callable[[], None] = _nobody_to_tell
    clock: Callable[[], float] = time.time
    counters: Counters = field(default_factory=_NotCounted)
    locks: RequestLocks = field(default_factory=RequestLocks)
    foreground: Foreground = field(default_factory=Foreground)
    hold_day: float = 86_400.0  # how long one day of Amazon's holding period lasts (the sandbox shortens it)

    def retry_delay(self, failures: int) -> float:
        """How long a request that failed ``failures`` times in a row waits before the next try."""
        return backoff(failures, base=self.retry_soon, cap=max(self.retry_soon, self.retry_cap))
