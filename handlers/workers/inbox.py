"""The inbox worker: turns stored events into applied task states.

An event only says "look at task X". For each task with pending events the
worker asks Amazon once and applies the answer; events for a task whose start
call has not returned yet wait in the inbox until the task id is known.
"""

from __future__ import annotations

import asyncio
import logging

from core import Wakeup, backoff
from handlers.flow import Flow
from handlers.lifecycle import Synced, sync_task
from store import CLAIM_LEASE

__all__ = ["InboxWorker"]

logger = logging.getLogger(__name__)


class InboxWorker:
    """Processes pending inbox events until cancelled; ``wake()`` says new ones are waiting.

    The events of a task whose answer fails (Amazon unavailable, an answer of the wrong shape, a bug)
    back off on their own schedule, doubling up to ``max_backoff``; the other tasks go on. The events taken are
    this copy's for ``claim_lease`` seconds: another copy of the bot sharing the database takes them after that.
    """

    def __init__(
        self,
        deps: Flow,
        *,
        wakeup: Wakeup,
        concurrency: int = 8,
        idle_wait: float = 60.0,
        base_backoff: float = 1.0,
        max_backoff: float = 60.0,
        claim_lease: float = CLAIM_LEASE,
    ) -> None:
        self._deps = deps
        self._slots = asyncio.Semaphore(concurrency)
        self._idle_wait = idle_wait
        self._base_backoff = min(base_backoff, max_backoff)
        self._max_backoff = max_backoff
        self._wakeup = wakeup
        self._claim_lease = claim_lease  # events taken are this copy's for so long, then another copy's to take

    async def run(self) -> None:
        while True:
            handled, _ = await self.process_pending()
            if handled:
                continue
            next_due = await self._deps.store.inbox.next_due()
            now = self._deps.clock()
            if next_due is None:  # nothing waits: a new event wakes this one
                await self._wakeup.wait(self._idle_wait)
                continue
            due, claimed = next_due
            wait = min(self._idle_wait, max(0.0, due - now))
            if due > now and not claimed:
                await asyncio.sleep(wait)  # failing events wait their backoff: a wake-up must not cut it short
            else:  # due, or held by another copy until then: a new event wakes this one
                await self._wakeup.wait(wait)

    async def process_pending(self) -> tuple[int, int]:
        """Apply the tasks of due events once each; return (tasks handled, tasks that failed and back off)."""
        events = await self._deps.store.inbox.pending(limit=256, lease=self._claim_lease)
        attempts: dict[str, int] = {}
        for event in events:
            attempts[event.task_id] = max(attempts.get(event.task_id, 0), event.attempts)
        results = await asyncio.gather(*(self._process(task_id, tries) for task_id, tries in attempts.items()))
        handled = sum(1 for ok in results if ok)
        return handled, len(results) - handled

    async def _process(self, task_id: str, attempts: int) -> bool:
        async with self._deps.foreground.turn(self._slots):  # gives way holding neither the slot nor the lock
            deps = self._deps
            try:
                request = await deps.store.requests.for_task(task_id)
                if request is None or await sync_task(deps, request.id) is Synced.ANSWERED:
                    await deps.store.inbox.mark_processed(task_id, request_id=request.id if request else None)
                    return True
            except Exception:
                logger.exception("inbox: the events of task %s failed; they back off, the others go on", task_id)
            delay = backoff(attempts, base=self._base_backoff, cap=self._max_backoff)
            logger.info("inbox: task %s not settled; its events wait %.1f s", task_id, delay)
            await deps.store.inbox.retry(task_id, at=deps.clock() + delay)
            return False
