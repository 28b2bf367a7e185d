"""A request moved by one copy of the bot at a time, whichever copies share the database.

Within a process, ``handlers.flow.RequestLocks`` keeps a command, an event and the reconciler from moving one
request at once (a decision that asks Amazon between reading and writing the request). With several copies on
PostgreSQL that lock must hold across them: ``AcrossCopies.hold`` takes a session advisory lock keyed by the
request's id, on one connection of this copy's kept for the purpose. The server holds it for that session, so a
copy that dies frees every request it held. On SQLite there is one copy: nothing to take.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded only where a PostgreSQL URL is used (store/_postgres_url.py)
    import psycopg

__all__ = ["AcrossCopies"]

_REQUESTS = 0x647262  # the advisory locks' first key: "drb" (the second is the request's id)
POLL = 0.01  # seconds between tries while another copy moves the request


class AcrossCopies:
    """Per-request locks shared by every copy of the bot on the database at ``url`` (None: SQLite's one copy)."""

    def __init__(self, url: str | None, *, poll: float = POLL) -> None:
        self._url = url
        self._poll = poll
        self._connection: psycopg.AsyncConnection[tuple[bool]] | None = None
        self._connecting = asyncio.Lock()
        self._releasing: asyncio.Future[Any] | None = None  # an unlock after a cancelled take

    async def _session(self) -> psycopg.AsyncConnection[tuple[bool]]:
        import psycopg  # several copies share a PostgreSQL database: its driver is in use

        async with self._connecting:
            if self._connection is None or self._connection.closed or self._connection.broken:
                assert self._url is not None
                self._connection = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
            return self._connection

    @contextlib.asynccontextmanager
    async def hold(self, request_id: int) -> AsyncIterator[None]:
        """Hold ``request_id`` against every other copy for the block (this copy's own holders take turns before
        they get here, so the session's locks, which nest, are never taken twice at once)."""
        if self._url is None:
            yield
            return
        session = await self._session()
        while True:
            take = asyncio.ensure_future(self._take(session, request_id))
            try:
                taken = await asyncio.shield(take)
            except asyncio.CancelledError:  # the answer may still come: a lock it gives must not stay taken
                take.add_done_callback(lambda done: self._release_if_taken(done, session, request_id))
                raise
            if taken:
                break
            await asyncio.sleep(self._poll)
        import psycopg

        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error, OSError):  # a lost session has freed it already
                await asyncio.shield(session.execute("SELECT pg_advisory_unlock(%s, %s)", (_REQUESTS, request_id)))

    def _release_if_taken(
        self, take: asyncio.Future[bool], session: psycopg.AsyncConnection[tuple[bool]], request_id: int
    ) -> None:
        if not take.cancelled() and take.exception() is None and take.result():
            self._releasing = asyncio.ensure_future(
                session.execute("SELECT pg_advisory_unlock(%s, %s)", (_REQUESTS, request_id))
            )

    @staticmethod
    async def _take(session: psycopg.AsyncConnection[tuple[bool]], request_id: int) -> bool:
        cursor = await session.execute("SELECT pg_try_advisory_lock(%s, %s)", (_REQUESTS, request_id))
        row = await cursor.fetchone()
        return bool(row and row[0])

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
