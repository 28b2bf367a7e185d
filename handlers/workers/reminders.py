"""Reminders: each due reminder posted once into its case's thread, before the due date and on it.

A timer on the injected clock; its progress is kept in the database, so it survives restarts and never repeats.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from handlers import notices
from handlers.deadlines import EXTENSION_REMINDER, extension_reminder_at, next_reminder_at, reminders_due
from handlers.flow import Counters
from store import Store

__all__ = ["Reminders"]


class Reminders:
    """Posts each due reminder once into its thread: 7 and 2 days before the due date, and on it; a GDPR case's
    reminder to tell the shopper of an extension within its first month."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Callable[[], float],
        counters: Counters,
        every: float = 60.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._counters = counters
        self._every = every

    async def run(self) -> None:
        while True:
            await self.send_due()
            await asyncio.sleep(self._every)

    async def send_due(self, *, page: int = 100) -> int:
        """Queue every reminder due now; after downtime only the most urgent is posted. Returns how many.

        Reads the cases whose next reminder time has come, a page at a time, until a page is short: each is
        reminded or, when nothing is due yet (after an extension, or the upgrade that added the times), given
        its next time, so every case read leaves the page and a pass always ends.
        """
        sent = 0
        now = self._clock()
        while True:
            due = await self._store.cases.reminders_due(limit=page)
            moved = 0
            for request in due:
                extension_at = extension_reminder_at(
                    deadline=request.deadline,
                    received_on=request.received_on,
                    told=request.extension_told_at is not None,
                )
                kinds = reminders_due(request.due_at, request.reminders_sent, now=now, extension_at=extension_at)
                sent_now = request.reminders_sent | set(kinds)
                next_at = next_reminder_at(request.due_at, sent_now, extension_at=extension_at)
                said = notices.reminder(kinds[-1], extension=EXTENSION_REMINDER in kinds) if kinds else []
                if not kinds:
                    moved += await self._store.cases.remind_later(request, at=next_at)
                elif await self._store.cases.record_reminder(request, kinds, notices=said, next_at=next_at):
                    moved += 1
                    sent += 1
                    self._counters.reminder_sent()
            if len(due) < page or not moved:  # a short page is the last; a page nothing moved would come again
                break
        return sent
