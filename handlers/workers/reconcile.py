"""The reconciler: polls unfinished requests so every one ends in its thread, events or not.

It covers a lost event, a bot that was down when Amazon sent one, and a
deployment with no public relay at all (Socket Mode). It also resumes what a
restart interrupted: a request whose thread or start call never happened.
Polls are spread over the interval and spaced so a large backlog never bursts the API. A request that fails
backs off on its own schedule and the pass goes on; when Amazon as a whole is
unavailable the pass ends early. Whatever fails, passes start ``interval`` apart.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from core import log_ids
from handlers.flow import Flow
from handlers.lifecycle import Synced, advance, sync_task
from store import Request, RequestStatus

__all__ = ["Reconciler"]

logger = logging.getLogger(__name__)


class Reconciler:
    """Every ``interval`` seconds, advances the unfinished requests that are due, oldest first.

    A pass spreads its polls over what is left of the interval instead of bursting, and never goes faster
    than one poll per ``spacing`` (Amazon allows 5 a second): 10,000 open tasks take their 33 minutes at
    that pace, 100 take the interval. How many a pass has ahead of it is what the last pass saw, less what
    this one has done, so nothing is counted: the requests are read a page of ``batch`` at a time, after the
    last one seen, and a pass costs its pages, not the count of every open request (a count grows with
    the open cases). Without a pass before it (the one at start,
    which catches up after downtime) a pass goes at Amazon's pace. ``spread`` is off in the tests' fast
    profile; ``sleep`` is how a test moves its clock instead of waiting.
    """

    def __init__(
        self,
        deps: Flow,
        *,
        interval: float,
        spacing: float = 0.2,
        batch: int = 50,
        spread: bool = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._deps = deps
        self._interval = interval
        self._spacing = spacing
        self._batch = batch
        self._spread = spread
        self._sleep = sleep
        self._last_seen = 0  # what the last pass saw: this one's estimate of what it has ahead of it

    async def run(self) -> None:
        resume = True
        while True:
            began = self._deps.clock()
            try:
                await self.reconcile(resume=resume)
                resume = False
            except Exception:  # the database failed the pass: the next one comes at the usual pace
                logger.exception("reconciler: the pass failed; next pass in %.0f s", self._interval)
            await self._sleep(max(0.0, self._interval - (self._deps.clock() - began)))

    async def reconcile(self, *, resume: bool = False) -> int:
        """One pass; ``resume`` takes every unfinished request, due or not (at start). Returns requests seen."""
        deps = self._deps
        began = deps.clock()
        due = math.inf if resume else began
        seen = 0
        after: tuple[float, int] | None = None
        while requests := await deps.store.requests.unfinished(due_by=due, limit=self._batch, after=after):
            after = (requests[-1].created_at, requests[-1].id)
            for request in requests:
                await deps.foreground.give_way()  # before the request's lock: waiting holds nothing
                if deps.locks.busy(request.id):
                    continue  # a command or an event is moving it right now
                seen += 1
                if await self._one(request) is Synced.AMAZON_DOWN:
                    logger.info("reconciler: Buy with Prime unavailable; pass ended after %d requests", seen)
                    deps.counters.reconciler_pass("amazon_unavailable")
                    return seen
                await self._sleep(self._gap(began=began, ahead=self._last_seen - seen + 1))
        self._last_seen = seen
        deps.counters.reconciler_pass("complete")
        return seen

    def _gap(self, *, began: float, ahead: int) -> float:
        """The wait before the next poll: what is left of the interval shared by what is likely left to poll."""
        if not self._spread or ahead < 1:
            return self._spacing
        left = self._interval - (self._deps.clock() - began)
        return max(self._spacing, left / ahead)

    async def _one(self, request: Request) -> Synced:
        """Move one request on; whatever goes wrong with it stays with it (it backs off alone)."""
        deps = self._deps
        try:
            if request.task_id and request.status not in (RequestStatus.NEW, RequestStatus.STARTING):
                return await sync_task(deps, request.id)  # a task at Amazon: say whether Amazon answered
            await advance(deps, request.id)
            return Synced.ANSWERED
        except Exception:
            delay = deps.retry_delay(request.check_failures)
            logger.exception(
                "reconciler: request %s failed; next try in %.0f s, the pass goes on",
                request.id,
                delay,
                extra=log_ids(request_id=request.id),  # outside the request's lock, whose lines carry it
            )
            await deps.store.requests.schedule_check(request.id, at=deps.clock() + delay, failed=True)
            return Synced.ITEM_FAILED
