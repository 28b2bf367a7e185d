"""One sqlite3 connection and the one thread that uses it.

sqlite3 blocks, so the event loop hands it work: a whole unit (a plain
synchronous function of the connection) crosses to the connection's thread in
one hop and its result comes back in one, however many statements it runs.
The thread takes units one at a time, in the order they were sent, so they
never interleave. A unit that has started runs to its end even if the
coroutine that sent it is cancelled; one cancelled before it started never runs.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["Connection", "Noting"]

T = TypeVar("T")


class Noting(sqlite3.Connection):
    """A sqlite3 connection that keeps what the transaction running on it changed (store/_signal.py)."""

    noted: set[str]


def _connect(path: Path) -> Noting:
    connection = sqlite3.connect(path, isolation_level=None, factory=Noting)  # autocommit: the store says BEGIN
    connection.noted = set()
    connection.row_factory = sqlite3.Row  # the store reads columns by name, never by position
    return connection


def _rows(sql: str, params: Sequence[Any], db: sqlite3.Connection) -> list[sqlite3.Row]:
    cursor = db.execute(sql, params)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


class Connection:
    """A sqlite3 connection that lives on a thread of its own; ``call`` runs a unit there."""

    def __init__(self, raw: Noting, thread: ThreadPoolExecutor) -> None:
        self.raw = raw  # touched on ``thread`` alone
        self._thread = thread
        self._closed = False

    @classmethod
    async def open(cls, path: Path) -> Connection:
        """Connect to ``path`` on a new thread (sqlite3's errors come back as they are)."""
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        try:
            raw = await asyncio.get_running_loop().run_in_executor(thread, _connect, path)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(raw, thread)

    async def call(self, work: Callable[[Noting], T]) -> T:
        """``work(connection)`` on the connection's thread, in one hop there and one back."""
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._apply, work)

    def _apply(self, work: Callable[[Noting], T]) -> T:
        return work(self.raw)  # ``raw`` read on the thread, at the time the unit runs

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """One statement's rows (executed, fetched and closed in one unit)."""
        return await self.call(partial(_rows, sql, params))

    async def close(self) -> None:
        """Close the connection after the units already sent, then end its thread."""
        if self._closed:
            return
        try:
            await self.call(sqlite3.Connection.close)
        finally:
            self._closed = True
            self._thread.shutdown(wait=False)
