"""Foreground first on the event loop: background work lets the requests someone waits on go first.

The bot answers Slack and Amazon on the same asyncio loop that runs the work those answers set off
(thread posts, task starts at Amazon, relayed events applied, Home refreshes, the reconciler's polls).
The loop has no priorities: once a burst of commands has set off its work, each acknowledgement shares
the loop's CPU with all of it. The store keeps background *units* behind foreground ones
(``store.behind``); this keeps background *items* from starting while a request is being answered.

``serving()`` is held around each request someone waits on (the server's Slack and relay routes,
Socket Mode's envelopes). Each background item calls ``give_way()`` before it starts; while a request
is in flight the items pass one at a time, each as soon as nothing is in flight, or after ``patience``
seconds at most. So under requests that never stop, background work still starts one item per
``patience``; once they stop, everything waiting goes. An item that then waits for one of a few slots
(a task start, a task's events applied) takes it through ``turn()``: a slot that comes free while a
request is being answered is given back while the item gives way, so what queued for the slots in a
lull does not all start beside the next requests.

An item gives way before it takes anything that others wait on (a store transaction, a request's lock,
a start slot, a worker's slot): waiting here holds nothing but its place in the line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

__all__ = ["PATIENCE", "Foreground"]

# Seconds a background item waits at most for the requests in flight: longer than a busy bot takes to
# answer one (so a request in flight is nearly always over first), short enough that background work
# under requests that never stop still starts twenty items a second.
PATIENCE = 0.05


class Foreground:
    """The requests in flight that someone waits on, counted; background items give way to them."""

    def __init__(self, *, patience: float = PATIENCE) -> None:
        self._patience = patience
        self._in_flight = 0
        self._clear = asyncio.Event()  # set while no request is in flight
        self._clear.set()
        self._line = asyncio.Lock()  # while requests are in flight, waiting items pass one at a time
        self._waiting = 0

    @property
    def in_flight(self) -> int:
        """Requests being answered now."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Background items giving way now."""
        return self._waiting

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Count one request in flight for as long as the block runs."""
        self._in_flight += 1
        self._clear.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._clear.set()

    async def give_way(self) -> None:
        """Return at once when no request is in flight; otherwise in line, when none is or after ``patience``."""
        if not self._in_flight:
            return
        self._waiting += 1
        try:
            async with self._line:
                if self._in_flight:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._patience):
                            await self._clear.wait()
        finally:
            self._waiting -= 1

    @contextlib.asynccontextmanager
    async def turn(self, slots: asyncio.Semaphore) -> AsyncIterator[None]:
        """Hold one of ``slots`` for a background item; one that comes while a request is in flight is given
        back while the item gives way, then taken again and kept (so the item always goes on)."""
        await slots.acquire()
        if self._in_flight:
            slots.release()
            await self.give_way()
            await slots.acquire()
        try:
            yield
        finally:
            slots.release()
