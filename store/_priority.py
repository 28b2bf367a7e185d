"""A mutex with two lanes: work someone is waiting on goes before background work.

The store's one connection serializes everything. Without lanes, a burst of
background transactions (threads to post, tasks to start) queues ahead of the
insert that a slash command or a relayed event must finish before it is
acknowledged; with them, the acknowledgement waits for one transaction at most.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["PriorityLock"]


class PriorityLock:
    """Mutual exclusion; urgent waiters first, then ordinary ones, first come first served within each lane."""

    def __init__(self) -> None:
        self._locked = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._ordinary: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._locked:
            self._locked = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane = self._urgent if urgent else self._ordinary
        lane.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the lock was handed over just as we were cancelled: pass it on
            elif waiter in lane:
                lane.remove(waiter)
            raise

    def _release(self) -> None:
        """Hand the lock to the next live waiter (it stays locked), or unlock when nobody waits."""
        for lane in (self._urgent, self._ordinary):
            while lane:
                waiter = lane.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._locked = False
