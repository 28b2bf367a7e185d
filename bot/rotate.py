"""``data-request-bot rotate-key``: every stored email re-sealed under ``NEW_ENCRYPTION_KEY``, all or nothing.

The bot must be stopped (the command takes the database's instance lock): a
running bot would go on sealing new requests under the old key. Every email is
re-encrypted and every lookup hash recomputed in one transaction, together with
the key check and an audit entry, so a crash leaves the database wholly under
the old key; the write-ahead log is then folded in, so old ciphertexts leave it.
"""

from __future__ import annotations

import base64
import getpass
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from bot.settings import MAKE_KEY, load_new_key, load_storage_settings
from prime import ConfigError
from store import PRIVATE_FILE, EmailCipher, InstanceLock, key_file_for, open_verified, read_key_file

__all__ = ["run_rotate_key"]


async def run_rotate_key(env: Mapping[str, str], *, out: TextIO) -> int:
    """Rotate the database's key to NEW_ENCRYPTION_KEY; print what to set next."""
    settings = load_storage_settings(env)
    new_key = load_new_key(env)
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
    lock = InstanceLock.acquire(path, command="rotate-key")
    try:
        store = await open_verified(path, configured=old_key, create_key=False)
        try:
            old, new = EmailCipher(old_key), EmailCipher(new_key)
            count = await store.rotate_key(new, actor=f"cli:{getpass.getuser()}")
        finally:
            await store.close()
    finally:
        lock.release()
    print(f"re-encrypted {count} shopper email(s) under the new key {new.fingerprint}, in one transaction", file=out)
    print(f"the old key {old.fingerprint} no longer opens {path}; keep it only with backups made before now", file=out)
    if settings.encryption_key is None:
        _replace_key_file(key_file, new_key)
        print(f"next: {key_file} now holds the new key; unset NEW_ENCRYPTION_KEY and start the bot", file=out)
    else:
        print(
            "next: set ENCRYPTION_KEY to the value of NEW_ENCRYPTION_KEY where the bot's environment is kept, "
            "unset NEW_ENCRYPTION_KEY, and start the bot",
            file=out,
        )
    return 0


def _replace_key_file(key_file: Path, key: bytes) -> None:
    """Write the new key beside the old file and swap it in, so the key file is never half written."""
    temporary = key_file.with_name(key_file.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as file:
        file.write(base64.urlsafe_b64encode(key) + b"\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, key_file)
