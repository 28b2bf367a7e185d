"""``rotate-key``: every email re-sealed and every lookup hash recomputed under the new key, all or nothing."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from unittest import mock

import pytest
from processes import clean_env, run_bot
from test_refusals import encoded, seed

from bot.rotate import run_rotate_key
from prime import ConfigError
from store import EmailCipher, open_verified

CASES = 300
HERE = Path(__file__).parent


async def populate(database: Path, key: bytes, cases: int = CASES) -> None:
    """``cases`` requests sealed under ``key``, then one purged (no email left to rotate)."""
    await seed(database, key, cases, pattern="Shopper.{n}@Example.com")
    with closing(sqlite3.connect(database)) as db, db:
        db.execute("UPDATE requests SET email_hash = NULL, email_sealed = NULL, email_masked = NULL WHERE id = 1")


def snapshot(database: Path) -> list[tuple[object, ...]]:
    """Every sealed email and lookup hash, and the key check, as stored."""
    with closing(sqlite3.connect(database)) as db:
        rows = db.execute("SELECT id, email_sealed, email_hash FROM requests ORDER BY id").fetchall()
        check = db.execute("SELECT sealed, fingerprint FROM key_check").fetchall()
        audit = db.execute("SELECT count(*) FROM audit WHERE action = 'encryption key rotated'").fetchone()
    return [*rows, *check, audit]


async def assert_wholly_under(database: Path, key: bytes, *, other: bytes) -> None:
    """Every email opens with ``key`` and is found by its hash; ``other`` is refused at open."""
    with pytest.raises(ConfigError, match="does not open the data"):
        await open_verified(database, configured=other, create_key=False)
    store = await open_verified(database, configured=key, create_key=False)
    try:
        assert await store.requests.reveal_email(1) is None
        for n in (0, 1, CASES // 2, CASES - 1):
            if n == 0:
                continue  # request 1 was purged
            assert await store.requests.reveal_email(n + 1) == f"Shopper.{n}@Example.com"
            (found,) = await store.requests.for_email(f"shopper.{n}@example.com")
            assert found.id == n + 1
        with closing(sqlite3.connect(database)) as db:
            sealed = [
                bytes(r[0]) for r in db.execute("SELECT email_sealed FROM requests WHERE email_sealed IS NOT NULL")
            ]
        cipher = EmailCipher(key)
        assert len(sealed) == CASES - 1 and all(cipher.decrypt(s).startswith("Shopper.") for s in sealed)
    finally:
        await store.close()


async def test_rotate_key_reseals_every_email_and_hash_audits_it_and_says_what_to_set(tmp_path: Path) -> None:
    """300 cases: afterwards only the new key opens them, lookups work, one audit entry, and the next steps print."""
    database, old, new = tmp_path / "requests.db", os.urandom(32), os.urandom(32)
    await populate(database, old)
    out = io.StringIO()
    env = {"DATABASE_PATH": str(database), "ENCRYPTION_KEY": encoded(old), "NEW_ENCRYPTION_KEY": encoded(new)}
    assert await run_rotate_key(env, out=out) == 0
    await assert_wholly_under(database, new, other=old)
    said = out.getvalue()
    assert f"re-encrypted {CASES - 1} shopper email(s)" in said
    assert "set ENCRYPTION_KEY to the value of NEW_ENCRYPTION_KEY" in said
    assert encoded(new) not in said and encoded(old) not in said
    with closing(sqlite3.connect(database)) as db:
        (detail,) = db.execute("SELECT detail FROM audit WHERE action = 'encryption key rotated'").fetchone()
    assert f"{EmailCipher(old).fingerprint} replaced by {EmailCipher(new).fingerprint}" in detail


async def test_rotate_key_with_a_key_file_rewrites_the_file(tmp_path: Path) -> None:
    """ENCRYPTION_KEY unset: the key file holds the old key, and the new one afterwards (still 0600)."""
    database, old, new = tmp_path / "requests.db", os.urandom(32), os.urandom(32)
    await populate(database, old, cases=3)
    key_file = tmp_path / "requests.db.key"
    key_file.write_text(encoded(old) + "\n")
    out = io.StringIO()
    assert await run_rotate_key({"DATABASE_PATH": str(database), "NEW_ENCRYPTION_KEY": encoded(new)}, out=out) == 0
    assert base64.urlsafe_b64decode(key_file.read_text().strip()) == new
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert f"{key_file} now holds the new key" in out.getvalue()


async def test_a_failure_midway_rolls_everything_back(tmp_path: Path) -> None:
    """Sealing fails at the 150th email: nothing changed (emails, hashes, key check, audit), the old key still opens."""
    database, old, new = tmp_path / "requests.db", os.urandom(32), os.urandom(32)
    await populate(database, old)
    before = snapshot(database)
    original = EmailCipher.encrypt
    calls = 0

    def failing(self: EmailCipher, email: str) -> bytes:
        nonlocal calls
        calls += 1
        if calls == CASES // 2:
            raise OSError("injected: the disk went away")
        return original(self, email)

    env = {"DATABASE_PATH": str(database), "ENCRYPTION_KEY": encoded(old), "NEW_ENCRYPTION_KEY": encoded(new)}
    with mock.patch.object(EmailCipher, "encrypt", failing), pytest.raises(OSError, match="injected"):
        await run_rotate_key(env, out=io.StringIO())
    assert calls == CASES // 2
    assert snapshot(database) == before
    await assert_wholly_under(database, old, other=new)


async def test_kill_9_in_the_middle_of_rotate_key_leaves_nothing_half_rotated(tmp_path: Path) -> None:
    """A real rotate-key killed inside its transaction: the database is wholly under the old key; a rerun works."""
    database, old, new = tmp_path / "requests.db", os.urandom(32), os.urandom(32)
    await populate(database, old)
    before = snapshot(database)
    env = clean_env(DATABASE_PATH=str(database), ENCRYPTION_KEY=encoded(old), NEW_ENCRYPTION_KEY=encoded(new))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "rotate_paused.py"),
        str(CASES // 2),
        env=env,
        cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(60):
            assert (await process.stdout.readline()) == b"midway\n"
    finally:
        process.kill()
        await process.wait()
    assert snapshot(database) == before
    await assert_wholly_under(database, old, other=new)
    done = await run_bot("rotate-key", env=env, cwd=tmp_path)  # the lock died with the process
    assert done.returncode == 0, done.stderr
    await assert_wholly_under(database, new, other=old)


@pytest.mark.parametrize(
    ("new_key", "expected"),
    [(None, "NEW_ENCRYPTION_KEY is not set"), ("short", "NEW_ENCRYPTION_KEY is not 32 bytes"), ("old", "already uses")],
)
async def test_rotate_key_mistakes_are_one_line_and_change_nothing(
    tmp_path: Path, new_key: str | None, expected: str
) -> None:
    """No, a malformed, or the same NEW_ENCRYPTION_KEY: exit 2, one line naming it, the database untouched."""
    database, old = tmp_path / "requests.db", os.urandom(32)
    await populate(database, old, cases=3)
    before = snapshot(database)
    env = clean_env(DATABASE_PATH=str(database), ENCRYPTION_KEY=encoded(old))
    if new_key is not None:
        env["NEW_ENCRYPTION_KEY"] = encoded(old) if new_key == "old" else new_key
    done = await run_bot("rotate-key", env=env, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("data-request-bot: NEW_ENCRYPTION_KEY") and expected in line
    assert snapshot(database) == before


async def test_rotate_key_with_the_wrong_current_key_refuses(tmp_path: Path) -> None:
    """ENCRYPTION_KEY that does not open the data: exit 2 before anything is rewritten."""
    database = tmp_path / "requests.db"
    await populate(database, os.urandom(32), cases=3)
    before = snapshot(database)
    env = clean_env(
        DATABASE_PATH=str(database), ENCRYPTION_KEY=encoded(os.urandom(32)), NEW_ENCRYPTION_KEY=encoded(os.urandom(32))
    )
    done = await run_bot("rotate-key", env=env, cwd=tmp_path)
    assert done.returncode == 2 and "ENCRYPTION_KEY" in done.stderr and "Traceback" not in done.stderr
    assert snapshot(database) == before
