"""The one place that reads and writes the database: ``Store`` owns the connection and hands out intents.

``store.requests``, ``store.cases``, ``store.verdicts``, ``store.inbox``, ``store.outbox``, ``store.audit``,
``store.reports`` and ``store.evidence`` each hold one kind of record and one method per thing done to it;
they share this store's connection, clock, cipher and the names of the people acting. Each method is one
unit of work on the database (see store/_database.py). Nothing outside the store reaches the connection.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from core import ConfigError
from store._audit import ActorNames, Audit
from store._cases import Cases
from store._checkpoints import Checkpoints
from store._database import Database, WriteHealth
from store._evidence import Evidence
from store._inbox import Inbox
from store._key import (
    EmailCipher,
    KeyState,
    create_key_file,
    key_file_for,
    key_file_or_none,
    key_problem,
    pending_key_file_for,
    read_key_file,
    read_key_state,
    record_key_check,
    rotate,
)
from store._leader import Leadership
from store._moves import Decisions
from store._outbox import Outbox
from store._reports import Reports
from store._request_locks import AcrossCopies
from store._requests import Requests
from store._rows import MOVING, MOVING_SQL, marks
from store._signal import Listener
from store._verdicts import Verdicts

__all__ = ["Store", "open_verified"]

Clock = Callable[[], float]


class Store:
    """Persistence for requests, cases, the event inbox, the Slack outbox and the audit log."""

    def __init__(self, database: Database, *, cipher: EmailCipher, clock: Clock = time.time) -> None:
        self._database = database
        self._db = database.connection  # raw access, for tests that check what the database refuses
        self._clock = clock
        self._names = ActorNames()
        self.cases = Cases(database=database, clock=clock, names=self._names)
        self.decisions = Decisions(database=database, clock=clock, names=self._names)
        self.inbox = Inbox(database=database, clock=clock)
        self.outbox = Outbox(database=database, clock=clock, names=self._names)
        self.reports = Reports(database=database)
        self.across = AcrossCopies(database.url)  # a request moved by one copy at a time (PostgreSQL)
        self.checkpoints = Checkpoints(database)  # serve runs its loop; without it commits checkpoint as usual
        self._seal_with(cipher)

    def _seal_with(self, cipher: EmailCipher) -> None:
        """The intents that seal or open shopper emails, with ``cipher``."""
        self._cipher = cipher
        self.requests = Requests(database=self._database, clock=self._clock, cipher=cipher, names=self._names)
        self.audit = Audit(database=self._database, clock=self._clock, cipher=cipher, names=self._names)
        self.verdicts = Verdicts(database=self._database, clock=self._clock, cipher=cipher, names=self._names)
        self.evidence = Evidence(database=self._database, cipher=cipher)

    @classmethod
    async def open(cls, where: Path | str, *, cipher: EmailCipher, clock: Clock = time.time) -> Store:
        """Open (creating if needed) the database at ``where`` (a SQLite file or a PostgreSQL URL), migrated."""
        return cls(await Database.open(where), cipher=cipher, clock=clock)

    @property
    def postgres(self) -> bool:
        """The store is on PostgreSQL (``DATABASE_URL``): other copies of the bot may share it."""
        return self._database.postgres

    async def close(self) -> None:
        await self.across.close()
        await self._database.close()

    @property
    def writes(self) -> WriteHealth:
        """Whether the database takes writes now (for /readyz and /metrics)."""
        return self._database.writes

    def after_commit(self, listener: Listener) -> None:
        """Call ``listener`` after every commit that queued Slack posts or changed a case the lists show."""
        self._database.after_commit(listener)

    def know_name(self, user_id: str, name: str) -> None:
        """The Slack name that came with ``user_id``'s latest action: audit entries record it beside the id."""
        self._names.know(user_id, name)

    async def ping(self) -> bool:
        """The database answers a trivial query."""
        return await self._database.ping()

    async def rotate_key(self, new: EmailCipher, *, actor: str) -> int:
        """Re-seal every email and note under ``new`` (and recompute every lookup hash), in one transaction.

        Returns how many emails were re-sealed. The write-ahead log is folded into the database file
        afterwards, so nothing sealed under the old key stays behind in it. From then on this store
        seals and opens with ``new``.
        """
        count: int = await self._database.run(partial(rotate, old=self._cipher, new=new, actor=actor, at=self._clock()))
        await self._database.checkpoint()
        self._seal_with(new)
        return count

    def leadership(self) -> Leadership:
        """Who runs the work one copy alone may do: this copy on SQLite, the advisory lock's holder on PostgreSQL."""
        return Leadership(self._database.url)

    async def forget_claims(self) -> None:
        """Drop every claim on outbox and inbox rows: for a bot that is the database's only user (SQLite, under
        its lock) at its start, whose claims can only be those of its own earlier run, killed mid-send."""

        def forget(db: sqlite3.Connection) -> None:
            db.execute("UPDATE outbox SET claimed_until = NULL WHERE claimed_until IS NOT NULL")
            db.execute("UPDATE inbox SET claimed_until = NULL WHERE claimed_until IS NOT NULL")

        await self._database.run(forget)

    async def backlog(self) -> dict[str, float | int | None]:
        """What is waiting, and for how long: for an operator's alarms, not for users."""
        now = self._clock()
        rows = await self._database.fetch(
            "SELECT"
            " (SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL) AS inbox,"
            " (SELECT MIN(received_at) FROM inbox WHERE processed_at IS NULL"  # per pending event, not every task id
            "    AND EXISTS (SELECT 1 FROM requests WHERE requests.task_id = inbox.task_id)) AS inbox_oldest,"
            " (SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND gave_up_at IS NULL) AS outbox,"
            " (SELECT MIN(created_at) FROM outbox WHERE sent_at IS NULL AND gave_up_at IS NULL) AS outbox_oldest,"
            " (SELECT COUNT(*) FROM outbox WHERE gave_up_at IS NOT NULL) AS gave_up,"
            # the unfinished are summed from the kept counts, not counted
            f" (SELECT COALESCE(SUM(count), 0) FROM request_counts WHERE status IN ({marks(MOVING)})) AS unfinished,"
            f" (SELECT MIN(created_at) FROM requests WHERE {MOVING_SQL}) AS unfinished_oldest",
            MOVING,
        )
        row = rows[0]

        def age(since: float | None) -> float | None:
            return round(now - since, 3) if since is not None else None

        return {
            "inbox_pending": row["inbox"],
            "inbox_oldest_age_seconds": age(row["inbox_oldest"]),
            "outbox_pending": row["outbox"],
            "outbox_oldest_age_seconds": age(row["outbox_oldest"]),
            "outbox_abandoned": row["gave_up"],
            "requests_unfinished": row["unfinished"],
            "requests_oldest_unfinished_age_seconds": age(row["unfinished_oldest"]),
        }


async def open_verified(
    where: Path | str,
    *,
    configured: bytes | None,
    create_key: bool,
    clock: Callable[[], float] = time.time,
) -> Store:
    """Open the store at ``where`` with its key, or raise ConfigError saying why the key is wrong or missing.

    The key is ``configured`` (ENCRYPTION_KEY), else the key file beside the database; with neither,
    ``create_key`` makes a key file for a database that holds no data yet (serve's first start).
    On PostgreSQL (``where`` a URL) the key is ENCRYPTION_KEY alone: a file beside one copy of the bot would
    not be beside the others.
    """
    if isinstance(where, str):
        return await _open_postgres_verified(where, configured=configured, create_key=create_key, clock=clock)
    path = where
    key_file = key_file_for(path)
    file_key = read_key_file(key_file) if configured is None else key_file_or_none(key_file)
    database = await Database.open(path)
    try:
        state = await database.run(read_key_state)
        problem = key_problem(
            state,
            configured=configured,
            file_key=file_key,
            key_file=key_file,
            database=path,
            pending_key=key_file_or_none(pending_key_file_for(path)) if state.has_data else None,
        )
        if problem is not None:
            raise ConfigError(problem)
        key = configured or file_key
        if key is None and not create_key:
            # Nothing sealed here and no key to seal with: read-only commands need none, and record none.
            return Store(database, cipher=EmailCipher(bytes(32)), clock=clock)
        cipher = EmailCipher(key or create_key_file(key_file))
        if state.sealed is None:
            await database.run(partial(record_key_check, cipher=cipher, at=clock()))
    except BaseException:
        await database.close()
        raise
    return Store(database, cipher=cipher, clock=clock)


def _check_once(db: sqlite3.Connection, *, cipher: EmailCipher, at: float) -> KeyState:
    """The key check as it stands, recorded under ``cipher`` first if there is none: two copies starting at
    once take turns here (a writing unit), so the second reads the first's check rather than replacing it."""
    if read_key_state(db).sealed is None:
        record_key_check(db, cipher=cipher, at=at)
    return read_key_state(db)


async def _open_postgres_verified(
    url: str, *, configured: bytes | None, create_key: bool, clock: Callable[[], float]
) -> Store:
    database = await Database.open(url)
    try:
        if configured is None:
            if create_key:
                raise ConfigError(
                    (
                        "DATABASE_URL is set but ENCRYPTION_KEY is not",
                        "set ENCRYPTION_KEY (the same value in every copy of the bot): with PostgreSQL no key "
                        "file is made, since a file beside one copy would not be beside the others",
                    )
                )
            return Store(database, cipher=EmailCipher(bytes(32)), clock=clock)  # read-only commands: none needed
        cipher = EmailCipher(configured)
        state = await database.run(partial(_check_once, cipher=cipher, at=clock()))
        if not state.opens(cipher):
            held = f" (key {state.fingerprint})" if state.fingerprint else ""
            raise ConfigError(
                (
                    f"ENCRYPTION_KEY does not open the data in the DATABASE_URL database (sealed under a key{held})",
                    "set ENCRYPTION_KEY to the key the other copies of the bot use (a new key cannot open the data)",
                )
            )
    except BaseException:
        await database.close()
        raise
    return Store(database, cipher=cipher, clock=clock)
