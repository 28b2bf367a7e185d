"""Which copy of the bot does the work only one copy may do: the reconciler, reminders, retention.

On SQLite there is one copy (the database's file lock sees to it), so it leads from the start. On PostgreSQL
the copies share the database, and the leader is whichever holds a session-level advisory lock on a connection
of its own. The lock is the server's, so it ends with that connection: a leader killed or cut off loses it as
soon as the server sees the connection gone (TCP keepalives, set short below, bound that for a machine that
vanished), and another copy, asking every ``ASK_EVERY`` seconds, takes over. A leader that cannot reach the
server stops its singleton work at once: it can no longer know it still leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded only where a PostgreSQL URL is used (store/_postgres_url.py)
    import psycopg

__all__ = ["ASK_EVERY", "LEADER_LOCK", "SERVING_LOCK", "Leadership", "no_copy_serving"]

logger = logging.getLogger(__name__)

LEADER_LOCK = 0x64726202  # "drb" and 2
# Held shared by every serving copy on its leadership connection, so ``rotate-key`` (which takes it alone) can
# tell that no copy is running: a copy still sealing under the old key would strand what it sealed.
SERVING_LOCK = 0x64726203
ASK_EVERY = 2.0  # seconds between a follower's tries, and between a leader's checks that it still holds the lock
# The server gives up on a leader's connection after 3 s of silence and 3 unanswered probes a second apart.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 3, "keepalives_interval": 1, "keepalives_count": 3}

Work = Callable[[], Coroutine[Any, Any, None]]


class Leadership:
    """Runs the singleton work while this copy leads (``url`` None: SQLite's one copy, always the leader)."""

    def __init__(self, url: str | None, *, ask_every: float = ASK_EVERY) -> None:
        self._url = url
        self._ask_every = ask_every
        self.leading = url is None  # for /metrics

    async def run(self, work: Work) -> None:
        """Run ``work`` whenever this copy leads, until cancelled; stop it when the lead is lost."""
        if self._url is None:
            await work()
            return
        import psycopg  # several copies share a PostgreSQL database: its driver is in use

        while True:
            try:
                await self._lead_once(self._url, work)
            except (psycopg.Error, OSError) as error:
                logger.warning("leader: lost the database connection (%s); asking again", type(error).__name__)
            await asyncio.sleep(self._ask_every)

    async def _lead_once(self, url: str, work: Work) -> None:
        import psycopg

        connection = await psycopg.AsyncConnection.connect(psycopg.conninfo.make_conninfo(url, **_KEEPALIVES))
        await connection.set_autocommit(True)
        try:
            await connection.execute("SET tcp_keepalives_idle = 3; SET tcp_keepalives_interval = 1")
            await connection.execute("SELECT pg_advisory_lock_shared(%s)", (SERVING_LOCK,))
            while not await self._take(connection):  # noqa: ASYNC110 - the lock is the server's: only asking tells
                await asyncio.sleep(self._ask_every)
            self.leading = True
            logger.info("leader: this copy runs the reconciler, reminders and retention")
            running = asyncio.create_task(work(), name="leader's work")
            try:
                while not running.done():
                    await asyncio.wait({running}, timeout=self._ask_every)
                    if not running.done():
                        await connection.execute("SELECT 1")  # raises once the server is gone, and the lock with it
                await running  # the work ended by itself (a bug: supervised work does not): let it be seen
            finally:
                self.leading = False
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await running
        finally:
            with contextlib.suppress(psycopg.Error, OSError):
                await connection.close()

    @staticmethod
    async def _take(connection: psycopg.AsyncConnection[tuple[bool]]) -> bool:
        row = await (await connection.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))).fetchone()
        return bool(row and row[0])


async def no_copy_serving(url: str) -> psycopg.AsyncConnection[tuple[bool]] | None:
    """A connection holding the serving lock alone (close it to let copies start again), or None while any copy
    of the bot serves from the database at ``url``."""
    import psycopg

    connection = await psycopg.AsyncConnection.connect(url)
    await connection.set_autocommit(True)
    row = await (await connection.execute("SELECT pg_try_advisory_lock(%s)", (SERVING_LOCK,))).fetchone()
    if row and row[0]:
        return connection
    await connection.close()
    return None
