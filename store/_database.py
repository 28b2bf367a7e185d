"""The one SQLite connection: WAL, migrations, and units of work that never interleave.

The connection lives on one thread (store/_thread.py). Every write is one unit
of work sent to that thread in a single round trip (``run``: BEGIN … COMMIT
around plain sqlite3 code; ``write_once``: one statement), so a change is whole
or absent, whatever happens to the coroutine that asked for it, and a busy
event loop is crossed once per change rather than once per statement. That
thread runs the units one at a time in the order they were sent, so they never
interleave.

Foreground first: what a person or Amazon waits on (an ack's insert, a
relayed event, a click's read, a command's reads) is sent to that thread as
it comes, but work that runs ``behind()`` (the outbox, the inbox, the
reconciler, reminders, Home refreshes, task starts) has at most
``BEHIND_AT_ONCE`` unit in the thread's queue. However much background work is
waiting, a foreground unit waits behind one background unit at most, and
never behind a queue of them. Foreground units are never held back, so they
still go to the thread together (unlike a lock around every unit).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from core import ConfigError, StoreUnavailable
from store._files import create_private, private_folder
from store._postgres_url import is_postgres_url, where_shown
from store._schema import migrate
from store._schema_pg import migrate as migrate_postgres
from store._signal import LISTED, Commit, Listener, watch
from store._thread import Connection, Noting

if TYPE_CHECKING:  # PostgreSQL's driver is loaded only for a PostgreSQL URL (store/_postgres_url.py)
    from store._postgres import Pool, Units

__all__ = [
    "AUTOCHECKPOINT_PAGES",
    "BEHIND_AT_ONCE",
    "CLAIM_LEASE",
    "WAL_LIMIT",
    "Database",
    "WriteHealth",
    "behind",
    "cannot_open",
    "cannot_reach",
]

logger = logging.getLogger(__name__)

AUTOCHECKPOINT_PAGES = 1000  # SQLite's default: a commit past this many WAL pages checkpoints (store/_checkpoints.py)
WAL_LIMIT = AUTOCHECKPOINT_PAGES * 4096  # bytes a WAL file is trimmed to when it starts over after a burst
CHECKPOINT_TRIES, CHECKPOINT_RETRY = 50, 0.02  # ``checkpoint`` kept busy by another checkpoint: a second at most

# Background units in the connection thread's queue at once: a foreground unit waits behind this many at most
# (benchmarks/README.md, "Foreground first").
BEHIND_AT_ONCE = 1

# Seconds a claimed outbox or inbox row is left to the copy of the bot that claimed it (``Database.claim``):
# longer than any Slack or Amazon call, after which a dead copy's claim lapses and another copy takes the row.
CLAIM_LEASE = 60.0

T = TypeVar("T")
Item = TypeVar("Item")
Result = TypeVar("Result")

_behind: contextvars.ContextVar[bool] = contextvars.ContextVar("behind", default=False)


async def behind(work: Awaitable[T]) -> T:
    """Await ``work`` with its database units behind those someone waits on (see the module docstring).

    Tasks ``work`` starts inherit this, so a worker loop run this way keeps everything it sets off behind.
    """
    token = _behind.set(True)
    try:
        return await work
    finally:
        _behind.reset(token)


class WriteHealth:
    """Whether the database takes writes: failing from a refused write (disk full, read-only) until one commits.

    ``/readyz`` reports not ready while ``failing``; the log says so once per episode, not per write.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.failing_since: float | None = None
        self.last_error = ""
        self.failures = 0  # refused writes since start, for /metrics

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def failed(self, error: sqlite3.Error) -> StoreUnavailable:
        """Record a refused write; the error to raise in its place."""
        self.failures += 1
        self.last_error = str(error)
        if self.failing_since is None:
            self.failing_since = self._clock()
            logger.error("database: writes are failing (%s); requests cannot be saved until this is fixed", error)
        return StoreUnavailable(f"the database refused a write: {error}")

    def committed(self) -> None:
        """A write went through: the episode, if any, is over."""
        if self.failing_since is not None:
            logger.warning("database: writes work again")
            self.failing_since = None


@dataclass(frozen=True, slots=True)
class Batched(Generic[Item, Result]):
    """A unit that can run together with others of its kind: ``together(connection, items)`` does for each
    item what it would do alone, in one statement per step rather than one per item (PostgreSQL's round
    trips; see ``Database.run_batched``)."""

    together: Callable[[Any, list[Item]], list[Result]]
    item: Item


Unit = Callable[[Any], Any] | Batched[Any, Any]


def _runs(units: list[Unit]) -> Iterator[list[Unit]]:
    """The group's units in order, neighbours batched with the same ``together`` kept in one run."""
    run: list[Unit] = []
    for unit in units:
        if run and not (isinstance(unit, Batched) and isinstance(run[0], Batched) and unit.together is run[0].together):
            yield run
            run = []
        run.append(unit)
    if run:
        yield run


def _run(run: list[Unit], connection: Any) -> list[Any]:
    first = run[0]
    if isinstance(first, Batched):
        return first.together(connection, [unit.item for unit in run if isinstance(unit, Batched)])
    return [first(connection)]


def _grouped(units: list[Unit], connection: sqlite3.Connection) -> list[tuple[bool, Any]]:
    """The group's outcomes, each unit's result or error. A lone unit needs no savepoint: its error undoes the
    transaction, which is all it did."""
    if len(units) == 1:
        return [(True, _run(units, connection)[0])]
    return _in_savepoints(units, connection)


def _in_savepoints(units: list[Unit], connection: sqlite3.Connection) -> list[tuple[bool, Any]]:
    """Run each unit in its own savepoint: one unit's error undoes that unit alone.

    A run of batched units goes in one savepoint; if it fails, each of them is tried again alone, so the one
    that broke a rule fails by itself, as it would have unbatched.
    """
    outcomes: list[tuple[bool, Any]] = []
    for run in _runs(units):
        connection.execute("SAVEPOINT unit")
        try:
            results = _run(run, connection)
        except Exception as error:
            connection.execute("ROLLBACK TO unit")
            connection.execute("RELEASE unit")
            if len(run) == 1:
                outcomes.append((False, error))
            else:
                for unit in run:
                    outcomes.extend(_in_savepoints([unit], connection))
            continue
        connection.execute("RELEASE unit")
        outcomes.extend((True, result) for result in results)
    return outcomes


def _transaction(
    connection: Noting | Units, *, work: Callable[[Any], T], begin: str = "BEGIN IMMEDIATE"
) -> tuple[T, bool, Commit | None]:
    """``work``'s result, whether it changed anything, and its signal (read on the same thread, so no other
    unit counts)."""
    before = connection.total_changes
    noted = connection.noted
    noted.clear()
    connection.execute(begin)
    try:
        result = work(connection)
        connection.commit()  # a refused COMMIT (a full disk, a lost server) is rolled back like any error
    except BaseException:
        connection.rollback()
        noted.clear()
        raise
    signal = Commit.of(noted)
    noted.clear()
    return result, connection.total_changes != before, signal


def _snapshot(connection: Noting | Units, *, work: Callable[[Any], T]) -> T:
    """``work``'s reads, all from one snapshot of the database, taking no write lock."""
    connection.execute("BEGIN DEFERRED")
    try:
        return work(connection)
    finally:
        connection.rollback()  # it only read: nothing to keep


def _prepare_postgres(units: Units) -> None:
    """The schema brought up to date, by whichever copy of the bot gets there first."""
    migrate_postgres(units.raw, listed=LISTED)


def _prepare(db: sqlite3.Connection) -> None:
    """Settings of the connection, then the schema brought up to date."""
    db.execute("PRAGMA journal_mode = WAL")
    # WAL syncs at checkpoints, not at every commit: a power cut (not a crash of the bot) may undo the
    # last commits (benchmarks/README.md says what FULL costs).
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA busy_timeout = 5000")
    db.execute("PRAGMA secure_delete = ON")  # purged emails are overwritten, not unlinked
    db.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")  # a burst's WAL does not stay big
    migrate(db)


def _changes(sql: str, params: Sequence[Any], db: Noting | Units) -> tuple[int, Commit | None]:
    """How many rows one statement (in its own implicit transaction) changed, and its signal."""
    noted = db.noted
    noted.clear()
    try:
        count = db.execute(sql, params).rowcount
        return count, Commit.of(noted)
    finally:
        noted.clear()


def cannot_open(path: Path, error: Exception) -> ConfigError:
    """The one line for a database (or the files beside it) that cannot be opened or written."""
    reason = getattr(error, "strerror", None) or str(error)
    return ConfigError(
        f"DATABASE_PATH: cannot open the database at {path} ({reason}): point DATABASE_PATH at a file "
        "in a folder the bot's user can write, or give that user the file and its folder"
    )


def cannot_reach(url: str, error: Exception) -> ConfigError:
    """The one line for a PostgreSQL database that cannot be reached or used (never showing its password)."""
    return ConfigError(
        f"DATABASE_URL: cannot use the PostgreSQL database {where_shown(url)} ({error}): check that the server "
        "is up, that the URL's user may connect and create tables, and that the database exists"
    )


class Database:
    """An open, migrated database; every read and write of the store goes through it."""

    def __init__(self, connection: Connection | Pool, *, path: Path | None, url: str | None = None) -> None:
        self.connection = connection
        # The SQLite file, for the checkpointer's own connection (store/_checkpoints.py); None on PostgreSQL.
        self.path = path
        self.url = url  # PostgreSQL's, for the leader's connection of its own (store/_leader.py)
        self._listening: asyncio.Task[None] | None = None  # PostgreSQL: other copies' commits, heard
        self._listeners: list[Listener] = []
        self.writes = WriteHealth()
        self._waiting: list[tuple[Unit, asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._background = asyncio.Semaphore(BEHIND_AT_ONCE)

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """Foreground units go at once; background ones take turns, ``BEHIND_AT_ONCE`` at a time."""
        if not _behind.get():
            yield
            return
        async with self._background:
            yield

    @property
    def postgres(self) -> bool:
        """The database is PostgreSQL's (``DATABASE_URL``), where several copies of the bot may share it."""
        return self.path is None

    @classmethod
    async def open(cls, where: Path | str) -> Database:
        """Open (creating if needed) the database at ``where`` (a SQLite file, or a PostgreSQL URL) and migrate
        it to the newest schema.

        A database that cannot be opened or written (a read-only filesystem, a file owned by someone
        else, a folder in its place, a server that refuses) is the operator's to fix: ConfigError, naming
        DATABASE_PATH or DATABASE_URL.
        """
        if isinstance(where, str):
            return await cls._open_postgres(where)
        path = where
        try:
            private_folder(path.parent)
            create_private(path)  # before SQLite creates it: the WAL and SHM then get its owner-only mode too
            connection = await Connection.open(path)
        except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as error:
            raise cannot_open(path, error) from error
        try:
            await connection.call(_prepare)
            await connection.call(watch)
        except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as error:
            await connection.close()
            raise cannot_open(path, error) from error
        except BaseException:
            await connection.close()
            raise
        return cls(connection, path=path)

    @classmethod
    async def _open_postgres(cls, url: str) -> Database:
        if not is_postgres_url(url):
            raise ConfigError("DATABASE_URL: not a PostgreSQL URL: write it as postgresql://user:password@host/db")
        from store._postgres import Pool  # PostgreSQL's driver, loaded now that it is used

        try:
            pool = await Pool.open(url, prepare=_prepare_postgres)
        except (sqlite3.Error, OSError, ValueError) as error:
            raise cannot_reach(url, error) from error
        opened = cls(pool, path=None, url=url)
        opened._listening = asyncio.create_task(
            pool.listen(url, lambda kind: opened._tell(Commit.of({kind}))), name="database listener"
        )
        return opened

    def after_commit(self, listener: Listener) -> None:
        """Call ``listener`` (on the event loop, at once) after each commit that queued Slack posts or moved
        a case: one place wakes the outbox and refreshes the lists, whichever write it was."""
        self._listeners.append(listener)

    def _tell(self, signal: Commit | None) -> None:
        if signal is None:
            return
        for listener in self._listeners:
            listener(signal)

    async def close(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            await asyncio.gather(self._listening, return_exceptions=True)
        await self.connection.close()

    async def ping(self) -> bool:
        """The database answers a trivial query."""
        try:
            return bool(await self.fetch("SELECT 1"))
        except (sqlite3.Error, ValueError):
            return False

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of one query, in one round trip to the connection's thread (execute, fetch and close together)."""
        async with self._turn():
            return await self.connection.execute(sql, params)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` as one transaction on the connection's thread, in a single round trip.

        ``work`` is plain synchronous sqlite3 code; it commits whole or rolls back whole, even if
        the awaiting task is cancelled meanwhile.
        """
        try:
            result: T
            async with self._turn():
                result, changed, signal = await self.connection.call(partial(_transaction, work=work))
        except sqlite3.OperationalError as error:
            raise self.writes.failed(error) from error
        if changed:
            self.writes.committed()
        self._tell(signal)
        return result

    async def claim(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work``, a unit that claims rows it locks itself (``FOR UPDATE SKIP LOCKED``), as one transaction.

        On PostgreSQL it does not wait for the writers' turn (store/_postgres.py): copies claiming at once each
        skip what another has locked. On SQLite it is ``run``: one writer at a time already.
        """
        if not self.postgres:
            return await self.run(work)
        async with self._turn():
            result, changed, signal = await self.connection.call(partial(_transaction, work=work, begin="BEGIN"))
        if changed:
            self.writes.committed()
        self._tell(signal)
        return result

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work``, plain sqlite3 reads, in one read transaction on the connection's thread.

        For a reader that walks many rows (a cursor, not a list) and needs them consistent with each
        other: writers of other processes go on meanwhile, unseen by it.
        """
        async with self._turn():
            return await self.connection.call(partial(_snapshot, work=work))

    async def run_grouped(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Like ``run``, but units that arrive together commit together (group commit).

        For bursts of acknowledgements (32 commands at once): each unit still succeeds or fails
        alone (a savepoint each), but the burst crosses to the connection's thread and commits once,
        instead of queueing 32 round trips one behind the other (benchmarks/README.md).
        """
        result: T = await self._grouped(work)
        return result

    async def run_batched(
        self, together: Callable[[sqlite3.Connection, list[Item]], list[Result]], item: Item
    ) -> Result:
        """Like ``run_grouped`` for a unit that ``together`` can do at once with others of its kind: the ones in
        one group run as one, a statement per step for all of them. Group commit saves SQLite a commit per
        unit; PostgreSQL pays a round trip per statement, so there only this makes a burst cheap. Each still
        fails alone (``_in_savepoints``)."""
        result: Result = await self._grouped(Batched(together, item))
        return result

    async def _grouped(self, unit: Unit) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((unit, done))
        if self._committer is None or self._committer.done():
            # A task of its own: a caller cancelled while waiting must not strand the others' units.
            # Acknowledgements wait on it, so it is never behind, whoever started it.
            self._committer = asyncio.create_task(
                self._commit_waiting(), name="group commit", context=contextvars.Context()
            )
        return await asyncio.shield(done)

    async def _commit_waiting(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                outcomes = await self.run(partial(_grouped, [unit for unit, _ in group]))
            except BaseException as error:  # the group's transaction itself failed: every unit did
                outcomes = [(False, error)] * len(group)
            for (ok, value), (_, done) in zip(outcomes, group, strict=True):
                if done.done():
                    continue
                if isinstance(value, sqlite3.OperationalError):  # this unit's write was refused
                    value = self.writes.failed(value)
                if ok:
                    done.set_result(value)
                else:
                    done.set_exception(value)

    async def write_once(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement in its own implicit transaction (one round trip); return how many rows it changed."""
        try:
            async with self._turn():
                changed, signal = await self.connection.call(partial(_changes, sql, params))
        except sqlite3.OperationalError as error:
            raise self.writes.failed(error) from error
        if changed > 0:
            self.writes.committed()
        self._tell(signal)
        return changed

    async def autocheckpoint(self, *, off: bool) -> None:
        """Turn this connection's automatic checkpoints off (another connection checkpoints) or back on."""
        if self.postgres:
            return  # PostgreSQL keeps its own write-ahead log
        await self.fetch(f"PRAGMA wal_autocheckpoint = {0 if off else AUTOCHECKPOINT_PAGES}")

    async def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file, so erased data leaves the WAL too.

        The copying is done first on a connection of its own (PASSIVE: commands go on meanwhile), so the
        TRUNCATE on this connection, which every command waits behind, has little left to copy.
        Its result row is read (and the statement finished): a statement left running makes SQLite refuse
        the next transaction.
        """
        if self.path is None:
            # PostgreSQL: the erased values stay in the table's dead row versions until a VACUUM removes them
            # (now, not at some later autovacuum). Bytes left in pages' free space and in the server's WAL are
            # sealed: no key opens them once the old one is destroyed after a rotation (docs/operating.md).
            await self.connection.call(lambda units: units.execute("VACUUM requests"))
            return
        side = await Connection.open(self.path)
        try:
            await side.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            await side.close()
        for _ in range(CHECKPOINT_TRIES):
            rows = await self.fetch("PRAGMA wal_checkpoint(TRUNCATE)")
            if not rows or not rows[0][0]:
                return
            # Busy: another connection (serve's checkpoint loop) was checkpointing, and SQLite answers that at
            # once, without waiting. Erased data stays in the WAL until this one gets through.
            await asyncio.sleep(CHECKPOINT_RETRY)
        logger.warning("database: the WAL could not be emptied after erasing data; the next checkpoint does it")
