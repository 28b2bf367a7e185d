"""The one SQLite connection: WAL, migrations, and units of work that never interleave.

aiosqlite gives one connection on one thread. Every write is one unit of work
sent to that thread in a single round trip (``run``: BEGIN … COMMIT around
plain sqlite3 code; ``write_once``: one statement), so a change is whole or
absent, whatever happens to the coroutine that asked for it, and a busy event
loop is crossed once per change rather than once per statement. A two-lane
lock orders the units: what someone waits on goes first (store/priority.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from store.priority import PriorityLock
from store.schema import migrate

__all__ = ["Database"]

T = TypeVar("T")


def _each_in_a_savepoint(
    units: list[Callable[[sqlite3.Connection], Any]], connection: sqlite3.Connection
) -> list[tuple[bool, Any]]:
    """Run each unit in its own savepoint: one unit's error undoes that unit alone."""
    outcomes: list[tuple[bool, Any]] = []
    for unit in units:
        connection.execute("SAVEPOINT unit")
        try:
            outcomes.append((True, unit(connection)))
        except Exception as error:
            connection.execute("ROLLBACK TO unit")
            outcomes.append((False, error))
        connection.execute("RELEASE unit")
    return outcomes


def _transaction(connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = work(connection)
    except BaseException:
        connection.rollback()
        raise
    connection.commit()
    return result


class Database:
    """An open, migrated database; every read and write of the store goes through it."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.connection = connection
        self._lock = PriorityLock()
        self._waiting: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating if needed) the database at ``path`` and migrate it to the newest schema."""
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path, isolation_level=None)
        try:
            await connection.execute("PRAGMA journal_mode = WAL")
            await connection.execute("PRAGMA synchronous = NORMAL")
            await connection.execute("PRAGMA foreign_keys = ON")
            await connection.execute("PRAGMA busy_timeout = 5000")
            await connection.execute("PRAGMA secure_delete = ON")  # purged emails are overwritten, not unlinked
            await migrate(connection)
        except BaseException:
            await connection.close()
            raise
        return cls(connection)

    async def close(self) -> None:
        await self.connection.close()

    async def ping(self) -> bool:
        """The database answers a trivial query."""
        try:
            return bool(await self.fetch("SELECT 1"))
        except (sqlite3.Error, ValueError):
            return False

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Rows of one query, in one round trip to aiosqlite's thread (execute, fetch and close together)."""
        async with self._lock.hold():
            return list(await self.connection.execute_fetchall(sql, params))

    async def run(self, work: Callable[[sqlite3.Connection], T], *, urgent: bool = False) -> T:
        """Run ``work`` as one transaction on aiosqlite's thread, in a single round trip.

        For the paths someone waits on: a transaction of N statements through the async API
        costs N + 2 hops between threads, each a turn of a busy event loop. ``work`` is plain
        synchronous sqlite3 code; it commits whole or rolls back whole, even if the awaiting
        task is cancelled meanwhile. (aiosqlite's ``_execute`` is the one door to its thread,
        the same one its own methods use.)
        """
        async with self._lock.hold(urgent=urgent):
            execute = self.connection._execute  # the one door to aiosqlite's thread
            result: T = await execute(_transaction, self.connection._conn, work)  # type: ignore[no-untyped-call]
            return result

    async def run_grouped(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Like ``run(urgent=True)``, but units that arrive together commit together (group commit).

        For bursts of acknowledgements (32 commands at once): each unit still succeeds or fails
        alone (a savepoint each), but the burst crosses to aiosqlite's thread and commits once,
        instead of queueing 32 round trips one behind the other.
        """
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, done))
        if self._committer is None or self._committer.done():
            # A task of its own: a caller cancelled while waiting must not strand the others' units.
            self._committer = asyncio.create_task(self._commit_waiting(), name="group commit")
        return await asyncio.shield(done)

    async def _commit_waiting(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                outcomes = await self.run(partial(_each_in_a_savepoint, [work for work, _ in group]), urgent=True)
            except BaseException as error:  # the group's transaction itself failed: every unit did
                outcomes = [(False, error)] * len(group)
            for (ok, value), (_, done) in zip(outcomes, group, strict=True):
                if done.done():
                    continue
                if ok:
                    done.set_result(value)
                else:
                    done.set_exception(value)

    async def write_once(self, sql: str, params: Sequence[Any] = (), *, urgent: bool = False) -> int:
        """One statement in its own implicit transaction (one round trip); return how many rows it changed."""
        async with self._lock.hold(urgent=urgent):
            cursor = await self.connection.execute(sql, params)
            return int(cursor.rowcount)

    async def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file, so erased data leaves the WAL too."""
        async with self._lock.hold():
            await self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
