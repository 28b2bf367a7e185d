"""PostgreSQL under the store's units: the same plain synchronous units run on it as on SQLite.

The store's units are functions of a connection that speak sqlite3's DB-API (``execute``, rows read by name,
``BEGIN IMMEDIATE`` … ``COMMIT``). ``Units`` gives them a psycopg 3 connection dressed that way: placeholders
and the two BEGINs translated once per statement text, rows readable by name and position, Python's bools
written as the integers the schema keeps, PostgreSQL's errors raised as sqlite3's kinds (a refused write is an
OperationalError on both), and what each change signals (store/_signal.py) noted as SQLite's temporary
triggers note it. So one store, one set of units and one test suite serve both backends. The pool's
connections do not LISTEN (an idle one would let other copies' notifications pile up on the server): one
connection of the copy's own does (``Pool.listen``).

psycopg 3 rather than asyncpg: its synchronous connections let those units run unchanged, each on a thread of
the ``Pool`` (the event loop hands a unit over in one hop, as with SQLite's thread), with a connection pool
of its own kept by the same project (psycopg_pool).

Writers take turns as SQLite's do: ``BEGIN IMMEDIATE`` takes a transaction-scoped advisory lock, so every unit
that reads and then writes sees what every other copy of the bot committed before it, and decides alone.
Reads take no lock and run side by side on the pool's other connections.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import pq
from psycopg.adapt import Buffer, Dumper, Loader
from psycopg.rows import RowMaker

from store._schema_pg import NOTIFY_CHANNEL
from store._signal import CASES, LISTED_COLUMNS, OUTBOX

__all__ = ["WRITE_LOCK", "Pool", "Row", "Units"]

T = TypeVar("T")

WRITE_LOCK = 0x64726201  # the advisory lock every writing unit holds until its commit ("drb" and 1)
POOL_SIZE = 4  # connections (and threads) per copy of the bot: writers take turns anyway; readers share these
CONNECT_TIMEOUT = 10.0  # seconds a unit waits for a connection before the database counts as unavailable

_BEGINS = {
    "BEGIN IMMEDIATE": f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})",
    "BEGIN DEFERRED": "BEGIN ISOLATION LEVEL REPEATABLE READ",  # one snapshot for every read of the unit
}
_CHANGES = ("INSERT", "UPDATE", "DELETE")


_SIGNALLED_INSERT = re.compile(r"\s*(INSERT\s+INTO|DELETE\s+FROM)\s+(outbox|requests)\b", re.IGNORECASE)
_SIGNALLED_UPDATE = re.compile(r"\s*UPDATE\s+requests\s+SET\s+(.*?)(\sWHERE\s|$)", re.IGNORECASE | re.DOTALL)
_ASSIGNED = re.compile(r"(\w+)\s*=")


def _signalled(sql: str) -> frozenset[str]:
    """What a statement that changes rows signals (store/_signal.py), as SQLite's temporary triggers say it:
    a row put in the outbox; a request made, removed, or updated in a column the lists show."""
    if match := _SIGNALLED_INSERT.match(sql):
        verb, table = match.group(1).split()[0].upper(), match.group(2).lower()
        if table == "requests":
            return frozenset({CASES})
        return frozenset({OUTBOX}) if verb == "INSERT" else frozenset()
    if (match := _SIGNALLED_UPDATE.match(sql)) and set(_ASSIGNED.findall(match.group(1))) & LISTED_COLUMNS:
        return frozenset({CASES})
    return frozenset()


@lru_cache(maxsize=2048)
def _translated(sql: str) -> tuple[str, bool, frozenset[str]]:
    """``sql`` with sqlite3's ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled), outside quotes;
    whether it changes rows (its count adds to ``total_changes``), and what it signals when it does."""
    stripped = sql.strip()
    if stripped in _BEGINS:
        return _BEGINS[stripped], False, frozenset()
    out: list[str] = []
    quote = ""
    for char in sql:
        if quote:
            out.append("%%" if char == "%" else char)
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out), stripped[:6].upper() in _CHANGES, _signalled(stripped)


class Row:
    """One row, read by column name (as the store always does) or by position, like ``sqlite3.Row``."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: Sequence[Any]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._names[key.lower()] if isinstance(key, str) else key]

    def keys(self) -> list[str]:
        return list(self._names)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._names, self._values, strict=True))!r})"


def _rows(cursor: psycopg.Cursor[Any]) -> RowMaker[Row]:
    names = {column.name.lower(): index for index, column in enumerate(cursor.description or ())}
    return partial(Row, names)


class _IntFromBool(Dumper):
    """The schema keeps flags as integers (SQLite has no booleans): True and False are written as 1 and 0."""

    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class _NumberFromNumeric(Loader):
    """A SUM or AVG over integers is ``numeric`` on PostgreSQL: read back as SQLite gives it, int or float."""

    def load(self, data: Buffer) -> int | float:
        text = bytes(data)
        return float(text) if b"." in text or b"N" in text else int(text)


def _error(error: psycopg.Error) -> sqlite3.Error:
    """psycopg's error as the sqlite3 kind the store handles: a refused write (the server down, the disk full,
    a lost connection) is an OperationalError, a broken rule an IntegrityError."""
    if isinstance(error, psycopg.errors.IntegrityError):
        return sqlite3.IntegrityError(error.diag.message_primary or str(error))
    if isinstance(error, psycopg.OperationalError):
        return sqlite3.OperationalError(str(error))
    return sqlite3.DatabaseError(str(error))


class Cursor:
    """The result of one statement, read as sqlite3's cursor is (a statement with no rows reads as none)."""

    def __init__(self, cursor: psycopg.Cursor[Row]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Row | None:
        return self._cursor.fetchone() if self._cursor.description is not None else None

    def fetchall(self) -> list[Row]:
        return self._cursor.fetchall() if self._cursor.description is not None else []

    def fetchmany(self, size: int) -> list[Row]:
        return self._cursor.fetchmany(size) if self._cursor.description is not None else []

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())

    def close(self) -> None:
        self._cursor.close()


class Units:
    """A psycopg connection as the store's units use a sqlite3 one."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self.noted: set[str] = set()  # what the transaction running now changed (store/_signal.py)
        self.total_changes = 0

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != pq.TransactionStatus.IDLE

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        text, changes, signals = _translated(sql)
        cursor = self.raw.cursor(row_factory=_rows)
        try:
            if params or "%" in text:
                cursor.execute(text, tuple(params))
            else:
                cursor.execute(text)  # nothing to bind: several statements may go in one round trip
        except psycopg.Error as error:
            raise _error(error) from error
        if changes and cursor.rowcount > 0:
            self.total_changes += cursor.rowcount
            self.noted |= signals
        return Cursor(cursor)

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> Cursor:
        text, _, signals = _translated(sql)
        cursor = self.raw.cursor(row_factory=_rows)
        rows = [tuple(params) for params in seq]
        try:
            if len(rows) == 1:
                cursor.execute(text, rows[0])  # psycopg's executemany costs a pipeline's set-up: not for one row
            else:
                cursor.executemany(text, rows)
        except psycopg.Error as error:
            raise _error(error) from error
        self.total_changes += len(rows)
        if rows:
            self.noted |= signals
        return Cursor(cursor)

    def commit(self) -> None:
        if self.in_transaction:
            self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.execute("ROLLBACK")


def _configure(raw: psycopg.Connection[Any]) -> None:
    raw.adapters.register_dumper(bool, _IntFromBool)
    raw.adapters.register_loader("numeric", _NumberFromNumeric)


def _first_connection(url: str, prepare: Callable[[Units], None] | None) -> None:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT)) as raw:
            _configure(raw)
            if prepare is not None:
                prepare(Units(raw))
    except psycopg.Error as error:
        raise _error(error) from error


def _open_pool(pool: psycopg_pool.ConnectionPool[Any]) -> None:
    try:
        pool.open(wait=True, timeout=CONNECT_TIMEOUT)
    except psycopg_pool.PoolTimeout as error:
        raise sqlite3.OperationalError(f"no connection to PostgreSQL within {CONNECT_TIMEOUT:g} s") from error


class Pool:
    """PostgreSQL for the store: the ``Connection`` of store/_thread.py, with a pool of connections, each unit
    on one of them, on a thread of the pool's own."""

    def __init__(self, pool: psycopg_pool.ConnectionPool[Any], threads: ThreadPoolExecutor) -> None:
        self.raw = pool
        self._pool = pool
        self._threads = threads
        self._units: weakref.WeakKeyDictionary[psycopg.Connection[Any], Units] = weakref.WeakKeyDictionary()
        self._pids: set[int] = set()  # the server processes of this pool's connections, whose NOTIFYs are ours
        self._closed = False

    @classmethod
    async def open(cls, url: str, *, size: int = POOL_SIZE, prepare: Callable[[Units], None] | None = None) -> Pool:
        """Connect to ``url``; ``prepare`` runs once on the first connection (the schema brought up to date)."""
        threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="postgres")
        pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            url,
            min_size=size,
            max_size=size,
            kwargs={"autocommit": True},
            configure=_configure,
            timeout=CONNECT_TIMEOUT,
            open=False,
            name="data-request-bot",
        )
        opened = cls(pool, threads)
        loop = asyncio.get_running_loop()
        try:
            # One connection first: a server that refuses is told at once, not after the pool's retries.
            await loop.run_in_executor(threads, partial(_first_connection, url, prepare))
            await loop.run_in_executor(threads, partial(_open_pool, pool))
        except BaseException:
            await opened.close()
            raise
        return opened

    def _apply(self, work: Callable[[Units], T]) -> T:
        try:
            with self._pool.connection() as raw:
                units = self._units.get(raw)
                if units is None:
                    units = self._units[raw] = Units(raw)
                    self._pids.add(raw.info.backend_pid)
                return work(units)
        except psycopg_pool.PoolTimeout as error:
            raise sqlite3.OperationalError(f"no connection to PostgreSQL within {CONNECT_TIMEOUT:g} s") from error
        except psycopg.Error as error:  # outside a statement: the connection itself was lost
            raise _error(error) from error

    async def call(self, work: Callable[[Any], T]) -> T:
        """``work(units)`` on a pooled connection, on a thread of the pool's own."""
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._apply, work)

    async def listen(self, url: str, heard: Callable[[str], None], *, retry_after: float = 2.0) -> None:
        """Call ``heard`` with what each commit of another copy of the bot changed, until cancelled: a post
        another copy queued and did not send (it died) is sent here without waiting for the next round."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
                    await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    async for notify in connection.notifies():
                        if notify.pid not in self._pids:  # this copy's own commits were signalled as they ended
                            heard(notify.payload)
            except (psycopg.Error, OSError):
                await asyncio.sleep(retry_after)  # the server is away: the pool's units say so; listen again later

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """One statement's rows."""
        return await self.call(lambda units: units.execute(sql, params).fetchall())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._threads, self._pool.close)
        self._threads.shutdown(wait=False)
