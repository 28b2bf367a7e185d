"""The store's one round trip relies on aiosqlite's private ``_execute`` and ``_conn``; this says when that breaks.

``Database.run`` sends a whole transaction to aiosqlite's thread in one hop through ``_execute`` (the door
aiosqlite's own methods use) on ``_conn`` (the sqlite3 connection they use). pyproject.toml pins aiosqlite
to the versions that have both; a new version that renames them, or runs them elsewhere, fails here first.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from store._database import Database


async def test_run_uses_aiosqlite_private_door_on_its_own_thread_and_connection(tmp_path: Path) -> None:
    """``Database.run``'s work runs on the thread where aiosqlite runs its own public calls, on the same
    sqlite3 connection, and not on the event loop's thread."""
    database = await Database.open(tmp_path / "door.db")
    try:
        connection = database.connection
        assert callable(getattr(connection, "_execute", None)), "aiosqlite.Connection._execute is gone"
        assert isinstance(getattr(connection, "_conn", None), sqlite3.Connection), "aiosqlite's _conn is gone"
        # Where aiosqlite runs its own public calls: a SQL function reports the thread that evaluates it.
        await connection.create_function("thread_id", 0, threading.get_ident)
        public = await connection.execute_fetchall("SELECT thread_id()")
        aiosqlite_thread = next(iter(public))[0]

        def work(db: sqlite3.Connection) -> tuple[int, int]:
            db.execute("CREATE TABLE IF NOT EXISTS probe (x)")
            return threading.get_ident(), id(db)

        ran_on, used = await database.run(work)
        assert aiosqlite_thread != threading.get_ident(), "aiosqlite ran a query on the event loop's thread"
        assert ran_on == aiosqlite_thread, "Database.run's work did not run on aiosqlite's thread"
        assert used == id(connection._conn), "Database.run's work did not get aiosqlite's own sqlite3 connection"
        assert await connection.execute_fetchall("SELECT name FROM sqlite_master WHERE name = 'probe'")
    finally:
        await database.close()
