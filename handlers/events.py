"""The inbox worker: turns stored events into applied task states.

An event only says "look at task X". For each task with pending events the
worker asks Amazon once and applies the answer; events for a task whose start
call has not returned yet wait in the inbox until the task id is known.
"""

from __future__ import annotations

import asyncio
import logging

from bot.background import Wakeup
from handlers.deps import Deps
from handlers.lifecycle import sync_task

__all__ = ["InboxWorker"]

logger = logging.getLogger(__name__)


class InboxWorker:
    """Processes pending inbox events until cancelled; ``wake()`` says new ones are waiting."""

    def __init__(
        self,
        deps: Deps,
        *,
        wakeup: Wakeup,
        concurrency: int = 8,
        idle_wait: float = 60.0,
        max_backoff: float = 60.0,
    ) -> None:
        self._deps = deps
        self._slots = asyncio.Semaphore(concurrency)
        self._idle_wait = idle_wait
        self._max_backoff = max_backoff
        self._backoff = 0.0
        self._wakeup = wakeup

    async def run(self) -> None:
        while True:
            processed, unavailable = await self.process_pending()
            if processed and not unavailable:
                self._backoff = 0.0
                continue
            if unavailable:
                self._backoff = min(self._max_backoff, max(1.0, self._backoff * 2))
                logger.info("inbox: Buy with Prime unavailable; next try in %.0f s", self._backoff)
                await asyncio.sleep(self._backoff)  # Amazon asked us to slow down: a wake-up must not cut it short
                continue
            await self._wakeup.wait(self._idle_wait)

    async def process_pending(self) -> tuple[int, int]:
        """Apply the tasks of pending events once each; return (tasks handled, tasks Amazon could not answer)."""
        events = await self._deps.store.pending_events(limit=256)
        task_ids = list(dict.fromkeys(event.task_id for event in events))
        results = await asyncio.gather(*(self._process(task_id) for task_id in task_ids))
        handled = sum(1 for ok in results if ok)
        return handled, len(results) - handled

    async def _process(self, task_id: str) -> bool:
        async with self._slots:
            request = await self._deps.store.request_for_task(task_id)
            if request is not None and not await sync_task(self._deps, request.id):
                return False
            await self._deps.store.mark_events_processed(task_id, request_id=request.id if request else None)
            return True
