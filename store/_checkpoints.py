"""WAL checkpoints off the command path: a second connection folds the log into the database file.

SQLite checkpoints automatically on the connection that commits, once the WAL
passes 1,000 pages (about 4 MB): the command that happened to cross the line
paid for it, and with the store's one connection every command waits behind
it (benchmarks/README.md has the figures). So while ``Checkpoints.run`` runs (the
bot's ``serve``), the command connection never checkpoints and this loop does,
on a connection and a thread of its own:

- every ``INTERVAL`` (0.25 s) a ``PASSIVE`` checkpoint, which never waits for
  and never blocks the writer or a reader. When nothing is new it reads the
  WAL's header and returns, so an idle bot pays nothing; at the bot's real
  rates a quarter second of writes is a few pages, far under SQLite's 1,000.
  The next write after a checkpoint that caught up starts the WAL over from
  its beginning, and ``journal_size_limit`` (``WAL_LIMIT``, SQLite's 4 MB)
  then trims the file a burst grew;
- a WAL that never restarts because writes never paused for a whole
  checkpoint (a sustained burst) is
  bounded by ``CAP``: past 16 MB, a ``TRUNCATE`` checkpoint, which makes the
  writer wait while it copies what the passive one left (tens of ms, once per
  16 MB of writes) and empties the file. It waits at most ``CAP_WAIT`` for
  the writer and readers to let it in, because while it waits new writes
  wait too (SQLite's FULL, RESTART and TRUNCATE modes): a long read beside
  the bot (a ``backup``, an ``audit`` export) must not hold commands up for
  the 5 s busy timeout. Kept waiting, it is no failure: writes are still
  coming, the next tick tries again, and the WAL starts over once they pause.

Without this loop (``audit``, ``purge``, ``rotate-key``, the tests' stores)
SQLite's automatic checkpoint stays on: nothing there waits on a command, and
a long purge keeps its WAL at SQLite's usual size. A checkpoint that fails is
logged once per episode and tried again at the next tick; it never marks the
database's writes as failing (``/readyz`` is about writes, which still work).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path

from store._database import WAL_LIMIT, Database
from store._thread import Connection

__all__ = ["CAP", "INTERVAL", "Checkpoints"]

logger = logging.getLogger(__name__)

INTERVAL = 0.25  # seconds between passive checkpoints
CAP = 4 * WAL_LIMIT  # a WAL file past this is emptied by a TRUNCATE checkpoint
CAP_WAIT_MS = 20  # how long that checkpoint waits for the writer and readers (new writes wait meanwhile)


class Checkpoints:
    """The loop that checkpoints the WAL beside the command connection (one of the bot's supervised loops)."""

    def __init__(self, database: Database, *, interval: float = INTERVAL, cap: int = CAP) -> None:
        self._database = database
        self._interval = interval
        self._cap = cap
        self.running = asyncio.Event()  # set while the command connection's own checkpoints are off
        self.failing = False
        self.passes = 0  # ticks done since start
        self.failures = 0  # checkpoints that failed since start
        self.truncations = 0  # bursts that passed the cap
        self.deferred = 0  # truncating checkpoints kept waiting by writes still coming (tried again next tick)

    @property
    def wal(self) -> Path | None:
        """SQLite's write-ahead log file; None on PostgreSQL, whose WAL is the server's own."""
        path = self._database.path
        return None if path is None else path.with_name(path.name + "-wal")

    async def run(self) -> None:
        """Checkpoint every ``interval`` on a second connection until cancelled; meanwhile commits never do."""
        connection = await self.connect()
        try:
            try:
                await self._database.autocheckpoint(off=True)
                self.running.set()
                while True:
                    await asyncio.sleep(self._interval)
                    await self.once(connection)
            finally:
                self.running.clear()
                with contextlib.suppress(sqlite3.Error, ValueError):  # a store closed first has nothing to restore
                    await self._database.autocheckpoint(off=False)  # whoever uses the store next checkpoints
        finally:
            await connection.close()

    async def connect(self) -> Connection:
        """The checkpoints' own connection: it waits ``CAP_WAIT_MS`` at most (a PASSIVE one never waits)."""
        if self._database.path is None:
            raise ValueError("PostgreSQL has no WAL file of the bot's to checkpoint")
        connection = await Connection.open(self._database.path)
        await connection.execute(f"PRAGMA busy_timeout = {CAP_WAIT_MS}")
        return connection

    async def once(self, connection: Connection) -> None:
        """One passive checkpoint, and a truncating one if the WAL file is past the cap; failures are logged."""
        self.passes += 1
        try:
            await _checkpoint(connection, "PASSIVE")
            if self.wal_bytes() > self._cap:
                self.truncations += 1
                if await _checkpoint(connection, "TRUNCATE"):
                    self.deferred += 1  # writes are still coming: the next tick tries again
        except sqlite3.Error as error:
            self.failures += 1
            if not self.failing:
                self.failing = True
                logger.warning("database: WAL checkpoint failed (%s); the WAL grows until one works", error)
            return
        if self.failing:
            self.failing = False
            logger.info("database: WAL checkpoints work again")

    def wal_bytes(self) -> int:
        """The WAL file's size now (0 when there is none): for /metrics, and for the cap."""
        try:
            return self.wal.stat().st_size if self.wal is not None else 0
        except FileNotFoundError:
            return 0


async def _checkpoint(connection: Connection, mode: str) -> bool:
    """Run one checkpoint in ``mode``; whether SQLite reported it busy (it could not finish)."""
    rows = await connection.execute(f"PRAGMA wal_checkpoint({mode})")
    return bool(rows[0][0])
