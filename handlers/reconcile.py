"""The reconciler: polls unfinished requests so every one ends in its thread, events or not.

It covers a lost event, a bot that was down when Amazon sent one, and a
deployment with no public relay at all (Socket Mode). It also resumes what a
restart interrupted: a request whose thread or start call never happened.
Polls are spaced so a large backlog never bursts the API, and a throttled
answer ends the pass early.
"""

from __future__ import annotations

import asyncio
import logging
import math

from handlers.deps import Deps
from handlers.lifecycle import advance, sync_task
from store.records import RequestStatus

__all__ = ["Reconciler"]

logger = logging.getLogger(__name__)


class Reconciler:
    """Every ``interval`` seconds, advances the unfinished requests that are due, oldest first."""

    def __init__(self, deps: Deps, *, interval: float, spacing: float = 0.2, batch: int = 500) -> None:
        self._deps = deps
        self._interval = interval
        self._spacing = spacing
        self._batch = batch

    async def run(self) -> None:
        await self.reconcile(resume=True)
        while True:
            await asyncio.sleep(self._interval)
            await self.reconcile()

    async def reconcile(self, *, resume: bool = False) -> int:
        """One pass; ``resume`` takes every unfinished request, due or not (at start). Returns requests seen."""
        deps = self._deps
        due = math.inf if resume else deps.clock()
        requests = await deps.store.unfinished_requests(due_by=due, limit=self._batch)
        seen = 0
        for request in requests:
            if deps.locks.busy(request.id):
                continue  # a command or an event is moving it right now
            seen += 1
            if request.status is RequestStatus.IN_PROGRESS:
                answered = await sync_task(deps, request.id)
                await deps.store.schedule_check(request.id, at=deps.clock() + self._interval)
                if not answered:
                    logger.info("reconciler: Buy with Prime unavailable; pass ended after %d requests", seen)
                    deps.metrics.reconciler_passes.labels("amazon_unavailable").inc()
                    return seen
            else:
                await advance(deps, request.id)
            await asyncio.sleep(self._spacing)
        deps.metrics.reconciler_passes.labels("complete").inc()
        return seen
