"""Retention: shopper emails erased from old cases, and relayed events forgotten after a week, daily.

A timer on the injected clock; what it erased is kept in the database, so a restart repeats nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

from store import Store

__all__ = ["INBOX_KEEP", "Retention"]

logger = logging.getLogger(__name__)

INBOX_KEEP = 7 * 86_400.0  # relayed events are remembered (to spot re-deliveries) for a week


class Retention:
    """Erases shopper emails from cases closed or finished more than ``retention_days`` ago, daily."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Callable[[], float],
        retention_days: int,
        free_text: Collection[str],
        every: float = 86_400.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._retention = retention_days * 86_400.0
        self._free_text = free_text  # the kinds' params staff typed freely: erased with the email
        self._every = every

    async def run(self) -> None:
        while True:
            await self.purge()
            await asyncio.sleep(self._every)

    async def purge(self) -> list[int]:
        now = self._clock()
        await self._store.inbox.prune(older_than=now - INBOX_KEEP)
        purged = await self._store.cases.purge_expired(older_than=now - self._retention, free_text=self._free_text)
        if purged:
            logger.info("retention: erased the email of %d requests", len(purged))
        return purged
