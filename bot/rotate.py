"""``data-request-bot rotate-key``: every stored email re-sealed under ``NEW_ENCRYPTION_KEY``, all or nothing.

The bot must be stopped (the command takes the database's instance lock): a
running bot would go on sealing new requests under the old key. The new key is
first written to a file beside the database (owner-only, fsynced, its path
printed), so it is held somewhere before any data is sealed under it. Then every
email is re-encrypted and every lookup hash recomputed in one transaction,
together with the key check and an audit entry, so a crash leaves the database
wholly under the old key; the write-ahead log is then folded in, so old
ciphertexts leave it. With a key file (ENCRYPTION_KEY unset) the new key then
takes the key file's place. Run again after a crash, the command finishes what
the crash interrupted.

With ``DATABASE_URL`` (PostgreSQL) every copy of the bot must be stopped: the command takes the serving
lock that each running copy holds shared (store/_leader.py), and the new key is kept in the current folder,
since the database has no folder of the bot's beside it.
"""

from __future__ import annotations

import getpass
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from bot.settings import MAKE_KEY, load_new_key, load_storage_settings
from core import ConfigError
from store import (
    EmailCipher,
    InstanceLock,
    Store,
    key_file_for,
    no_copy_serving,
    open_verified,
    pending_key_file_for,
    read_key_file,
    stored_key_state,
    where_shown,
    write_key_file,
)

__all__ = ["run_rotate_key"]


async def run_rotate_key(env: Mapping[str, str], *, out: TextIO) -> int:
    """Rotate the database's key to NEW_ENCRYPTION_KEY; print where the new key is and what to set next."""
    settings = load_storage_settings(env)
    new_key = load_new_key(env)
    if settings.database_url is not None:
        return await _rotate_postgres(settings.database_url, old_key=settings.encryption_key, new_key=new_key, out=out)
    path = settings.database_path
    if not path.exists():
        raise ConfigError(
            (f"DATABASE_PATH {path} does not exist", "point DATABASE_PATH at the bot's database (serve creates it)")
        )
    key_file = key_file_for(path)
    old_key = settings.encryption_key or read_key_file(key_file)
    if old_key is None:
        raise ConfigError(
            (
                f"ENCRYPTION_KEY is not set and there is no key file at {key_file}: there is no current key",
                "set ENCRYPTION_KEY to the key the bot runs with, and NEW_ENCRYPTION_KEY to the one to move to",
            )
        )
    if old_key == new_key:
        raise ConfigError(
            ("NEW_ENCRYPTION_KEY is the key the database already uses", f"make a new one with: {MAKE_KEY}")
        )
    old, new = EmailCipher(old_key), EmailCipher(new_key)
    pending = pending_key_file_for(path)
    lock = InstanceLock.acquire(path, command="rotate-key")
    try:
        try:
            store = await open_verified(path, configured=old_key, create_key=False)
        except ConfigError:
            if not _rotated_before(path, new):
                raise
            store = None  # an earlier run committed the data under the new key, then stopped
        count = await _reseal(store, pending=pending, new_key=new_key, old_key=old_key, out=out)
        if settings.encryption_key is None:
            _install(pending, key_file, new_key)
    finally:
        lock.release()
    _say_resealed(count, new, where=f"the data in {path}", out=out)
    print(f"the old key {old.fingerprint} no longer opens {path}; keep it only with backups made before now", file=out)
    if settings.encryption_key is None:
        print(f"next: {key_file} now holds the new key; unset NEW_ENCRYPTION_KEY and start the bot", file=out)
    else:
        print(
            f"next: set ENCRYPTION_KEY to the contents of {pending} where the bot's environment is kept, "
            f"unset NEW_ENCRYPTION_KEY, and start the bot; then keep a copy of the key apart from the database "
            f"and delete {pending}",
            file=out,
        )
    return 0


async def _reseal(store: Store | None, *, pending: Path, new_key: bytes, old_key: bytes, out: TextIO) -> int | None:
    """Keep the new key on disk first, then re-seal every email under it in one transaction; how many were
    re-sealed (None: ``store`` is None, the data was already under the new key)."""
    new = EmailCipher(new_key)
    try:
        _keep(pending, new_key, current=old_key)
        print(f"the new key {new.fingerprint} is kept in {pending} (owner-only, on disk)", file=out, flush=True)
        return None if store is None else await store.rotate_key(new, actor=f"cli:{getpass.getuser()}")
    finally:
        if store is not None:
            await store.close()


def _say_resealed(count: int | None, new: EmailCipher, *, where: str, out: TextIO) -> None:
    if count is None:
        print(f"{where} was already under the new key {new.fingerprint}: nothing to re-encrypt", file=out)
    else:
        print(
            f"re-encrypted {count} shopper email(s) under the new key {new.fingerprint}, in one transaction", file=out
        )


def _rotated_before(path: Path, new: EmailCipher) -> bool:
    """The data is already under the new key: what is left is to keep the key where it belongs."""
    try:
        state = stored_key_state(path)
    except sqlite3.Error:
        return False
    return state.has_data and state.opens(new)


def _keep(pending: Path, key: bytes, *, current: bytes) -> None:
    """Write ``key`` to ``pending`` durably before any data is sealed under it; never over another key.

    A file there from an earlier run that holds this key or the current one is replaced (both are
    held elsewhere); one holding any other key may be the only copy of a key some backup needs.
    """
    try:
        held = read_key_file(pending)
    except ConfigError:  # not a key at all: nothing to lose
        held = None
    except OSError as error:
        raise _cannot_keep(pending, error) from error
    if held not in (None, key, current):
        raise ConfigError(
            (
                f"{pending} holds another key ({EmailCipher(held).fingerprint}), left by an earlier rotate-key; "
                "nothing was changed",
                f"move {pending} away (keep it if a backup needs that key), then run rotate-key again",
            )
        )
    try:
        write_key_file(pending, key)
    except OSError as error:
        raise _cannot_keep(pending, error) from error


def _cannot_keep(pending: Path, error: OSError) -> ConfigError:
    return ConfigError(
        (
            f"cannot write the new key to {pending} ({error.strerror or error}); nothing was changed",
            f"make {pending.parent} writable by this user and move away whatever is at {pending}, "
            "then run rotate-key again",
        )
    )


def _install(pending: Path, key_file: Path, key: bytes) -> None:
    """Put the new key in the key file (whole, durably), then drop the pending copy: serve reads the key file."""
    try:
        write_key_file(key_file, key)
    except OSError as error:
        raise ConfigError(
            (
                f"the data is under the new key, kept in {pending}, but {key_file} could not be replaced "
                f"({error.strerror or error})",
                f"move {pending} to {key_file}, then start the bot",
            )
        ) from error
    pending.unlink(missing_ok=True)


PENDING_FOR_POSTGRES = Path("data-request-bot.new-key")  # in the folder rotate-key runs in


async def _rotate_postgres(url: str, *, old_key: bytes | None, new_key: bytes, out: TextIO) -> int:
    """rotate-key on PostgreSQL: the same steps as on SQLite, with every copy of the bot stopped."""
    if old_key is None:
        raise ConfigError(
            ("ENCRYPTION_KEY is not set", "set it to the key every copy of the bot runs with (DATABASE_URL needs it)")
        )
    if old_key == new_key:
        raise ConfigError(
            ("NEW_ENCRYPTION_KEY is the key the database already uses", f"make a new one with: {MAKE_KEY}")
        )
    old, new = EmailCipher(old_key), EmailCipher(new_key)
    held = await no_copy_serving(url)
    if held is None:
        raise ConfigError(
            (
                f"a copy of the bot is serving from {where_shown(url)}; nothing was changed",
                "stop every copy (a copy still running would seal new requests under the old key), "
                "then run rotate-key again",
            )
        )
    pending = Path.cwd() / PENDING_FOR_POSTGRES.name
    try:
        try:
            store: Store | None = await open_verified(url, configured=old_key, create_key=False)
        except ConfigError as refused:
            try:  # an earlier run committed the data under the new key, then stopped?
                await (await open_verified(url, configured=new_key, create_key=False)).close()
            except ConfigError:
                raise refused from None  # neither key opens it: the current key's problem is the one to tell
            store = None
        count = await _reseal(store, pending=pending, new_key=new_key, old_key=old_key, out=out)
    finally:
        await held.close()
    _say_resealed(count, new, where="the data", out=out)
    print(
        f"next: set ENCRYPTION_KEY to the contents of {pending} in every copy's environment, unset "
        f"NEW_ENCRYPTION_KEY, and start the copies; the old key {old.fingerprint} opens only backups made before "
        f"now; keep a copy of the new key apart from the database and delete {pending}",
        file=out,
    )
    return 0
