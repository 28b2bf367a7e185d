"""The key check: a database opens only with the key its data was sealed under.

A constant sealed under the key (and the key's fingerprint) is stored on first
start. Every start, and ``check``, ``audit``, ``purge``, ``backup`` and
``rotate-key``, open it again first: a wrong key, or no key for a database that
holds data, is refused in one line rather than found later as "no such
request", a missed duplicate or a traceback. A database from before the check
is verified against one of its sealed emails, then given a check. When the key
that does open the data waits in the file ``rotate-key`` writes before it
commits, the refusal names that file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from functools import partial
from pathlib import Path

from core import ConfigError
from store._crypto import EmailCipher, create_key_file, read_key_file
from store._database import Database
from store._keys import KeyState, read_key_state, record_key_check
from store._store import Store

__all__ = ["inspect_key", "key_file_for", "key_problem", "open_verified", "pending_key_file_for", "stored_key_state"]


def key_file_for(database: Path) -> Path:
    """The key file that belongs to ``database`` (used when ENCRYPTION_KEY is unset)."""
    return database.with_name(database.name + ".key")


def pending_key_file_for(database: Path) -> Path:
    """Where ``rotate-key`` keeps the new key, durably, before it commits the data under it."""
    key_file = key_file_for(database)
    return key_file.with_name(key_file.name + ".new")


def stored_key_state(database: Path) -> KeyState:
    """What ``database`` says about its key, read-only (nothing when there is no file); sqlite3.Error if unreadable."""
    if not database.exists():
        return KeyState()
    with closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as db:
        return read_key_state(db)


def key_problem(
    state: KeyState,
    *,
    configured: bytes | None,
    file_key: bytes | None,
    key_file: Path,
    database: Path,
    pending_key: bytes | None = None,
) -> tuple[str, str] | None:
    """What is wrong with the key for ``state`` (one problem: what, fix), or None when the key opens the data.

    ``pending_key`` is what ``pending_key_file_for(database)`` holds: named as the fix when it alone opens the data.
    """
    problem = _key_problem(state, configured=configured, file_key=file_key, key_file=key_file, database=database)
    if problem is None or pending_key is None or not state.has_data or not state.opens(EmailCipher(pending_key)):
        return problem
    pending = pending_key_file_for(database)
    if configured is not None:
        return (
            f"ENCRYPTION_KEY does not open the data in {database}: rotate-key moved it to the key in {pending}",
            f"set ENCRYPTION_KEY to the contents of {pending}",
        )
    return (
        f"the key file {key_file} does not open the data in {database}: "
        f"rotate-key moved it to the key in {pending} and stopped before putting that file in place",
        f"run rotate-key again with the same NEW_ENCRYPTION_KEY, or move {pending} to {key_file}",
    )


def _key_problem(
    state: KeyState, *, configured: bytes | None, file_key: bytes | None, key_file: Path, database: Path
) -> tuple[str, str] | None:
    held = f" (key {state.fingerprint})" if state.fingerprint else ""
    if configured is None and file_key is None:
        if not state.has_data:
            return None
        return (
            f"ENCRYPTION_KEY is not set and there is no key file at {key_file}, "
            f"but {database} holds data sealed under a key{held}",
            "set ENCRYPTION_KEY to that key, or restore the key file from backup (a new key cannot open the data)",
        )
    if configured is not None:
        if state.opens(EmailCipher(configured)):
            return None
        if file_key is not None and state.opens(EmailCipher(file_key)):
            return (
                f"ENCRYPTION_KEY does not open the data in {database}",
                f"copy the contents of {key_file} into ENCRYPTION_KEY: that file holds the database's key",
            )
        return (
            f"ENCRYPTION_KEY (key {EmailCipher(configured).fingerprint}) does not open the data in {database}{held}",
            "set ENCRYPTION_KEY to the key this database was created with "
            "(or point DATABASE_PATH at the database this key belongs to)",
        )
    assert file_key is not None
    if state.opens(EmailCipher(file_key)):
        return None
    return (
        f"ENCRYPTION_KEY is unset and the key file {key_file} does not open the data in {database}{held}",
        "set ENCRYPTION_KEY to the key this database was created with, or restore the key file from backup",
    )


def inspect_key(database: Path, *, configured: bytes | None) -> tuple[str, str] | None:
    """What is wrong with the key for ``database``, read-only (``check`` changes nothing), or None."""
    key_file = key_file_for(database)
    try:
        file_key = read_key_file(key_file)
    except ConfigError as error:
        if configured is None:
            return error.problems[0]
        file_key = None
    state = stored_key_state(database)
    return key_problem(
        state,
        configured=configured,
        file_key=file_key,
        key_file=key_file,
        database=database,
        pending_key=_quietly(pending_key_file_for(database)),
    )


async def open_verified(
    path: Path,
    *,
    configured: bytes | None,
    create_key: bool,
    clock: Callable[[], float] = time.time,
) -> Store:
    """Open the store at ``path`` with its key, or raise ConfigError saying why the key is wrong or missing.

    The key is ``configured`` (ENCRYPTION_KEY), else the key file beside the database; with neither,
    ``create_key`` makes a key file for a database that holds no data yet (serve's first start).
    """
    key_file = key_file_for(path)
    file_key = read_key_file(key_file) if configured is None else _quietly(key_file)
    database = await Database.open(path)
    try:
        state = await database.run(read_key_state)
        problem = key_problem(
            state,
            configured=configured,
            file_key=file_key,
            key_file=key_file,
            database=path,
            pending_key=_quietly(pending_key_file_for(path)) if state.has_data else None,
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


def _quietly(key_file: Path) -> bytes | None:
    """A key file's key for a better message; a damaged or unreadable one does not matter here."""
    try:
        return read_key_file(key_file)
    except (ConfigError, OSError):
        return None
