"""Where a benchmark's bots keep their state: a SQLite file in the run's folder, or a fresh PostgreSQL database.

``run.py --database postgresql://USER@HOST:PORT/DB`` names a server and a user who may create databases. Each
bot of the run then gets a database of its own on that server, made for this run (``bench_<time>_<pid>_<bot>``,
from ``template0``, so it starts empty whatever ``template1`` holds) and dropped WITH (FORCE) when the run ends.
No other database on the server is read or touched. Without ``--database`` each bot gets a SQLite file in the
run's temporary folder, as an operator's default.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["Stores", "redacted"]


def redacted(url: str) -> str:
    """``url`` without its password, fit for the results' JSON and the console."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class Stores:
    """The bots' stores for one run: ``settings(bot)`` gives the environment that points a bot at its own."""

    workdir: Path
    server: str | None = None  # a PostgreSQL URL (its maintenance database); None: SQLite files
    run_id: str = field(default_factory=lambda: f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}_{os.getpid()}")
    made: dict[str, str] = field(default_factory=dict)  # bot -> database name, for the drop at the end
    empty_bytes: dict[str, int] = field(default_factory=dict)  # bot -> its database's size once its schema is in

    @property
    def kind(self) -> str:
        return "sqlite" if self.server is None else "postgresql"

    def settings(self, bot: str) -> dict[str, str]:
        """DATABASE_PATH (SQLite) or DATABASE_URL (a new empty PostgreSQL database) for the bot named ``bot``."""
        if self.server is None:
            return {"DATABASE_PATH": str(self.workdir / f"{bot}.db")}
        from psycopg import sql

        name = self.made.get(bot) or f"bench_{self.run_id}_{bot}".replace("-", "_")
        if bot not in self.made:
            with self._admin() as admin:
                admin.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name))
                )
            self.made[bot] = name
        return {"DATABASE_URL": self._url_of(name)}

    def server_version(self) -> str:
        if self.server is None:
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        with self._admin() as admin:
            row = admin.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0] if row else '?'}"

    def mark_empty(self, bot: str) -> None:
        """Note the size of ``bot``'s database now (schema made, nothing stored): bytes per request count growth."""
        self.empty_bytes[bot] = sum(self.sizes(bot).values())

    def sizes(self, bot: str) -> dict[str, int]:
        """Bytes the bot's state takes: its SQLite file and WAL, or its PostgreSQL database (pg_database_size)."""
        if self.server is None:
            db = self.workdir / f"{bot}.db"
            return {p.name: p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists()}
        with self._admin() as admin:
            row = admin.execute("SELECT pg_database_size(%s)", (self.made[bot],)).fetchone()
        return {self.made[bot]: int(row[0]) if row else 0}

    def grown_bytes(self, bot: str) -> int:
        """What the bot has stored since ``mark_empty`` (the whole file for SQLite, whose empty schema is small)."""
        return sum(self.sizes(bot).values()) - (self.empty_bytes.get(bot, 0) if self.server is not None else 0)

    def close(self) -> None:
        """Drop the databases this run made, closing whatever connections a stopped bot left behind."""
        if self.server is None or not self.made:
            return
        from psycopg import sql

        with self._admin() as admin:
            for name in self.made.values():
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self.made.clear()

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "server": None if self.server is None else redacted(self.server),
            "version": self.server_version(),
            "databases": dict(self.made),
        }

    def backends(self) -> list[int]:
        """The process ids of the server's backends connected to this run's databases (this query's excepted);
        only those running on this machine are PostgreSQL processes whose CPU can be read from /proc."""
        if self.server is None or not self.made:
            return []
        with self._admin() as admin:
            rows = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s) AND pid <> pg_backend_pid()",
                (list(self.made.values()),),
            ).fetchall()
        return [int(pid) for (pid,) in rows if _is_postgres(int(pid))]

    def _url_of(self, name: str) -> str:
        assert self.server is not None
        return urlunsplit(urlsplit(self.server)._replace(path=f"/{name}"))

    @contextlib.contextmanager
    def _admin(self) -> Any:
        import psycopg

        assert self.server is not None
        with psycopg.connect(self.server, autocommit=True) as admin:
            yield admin


def _is_postgres(pid: int) -> bool:
    """Whether ``pid`` here is a PostgreSQL process (a remote server's pid may name anything on this machine)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return False
