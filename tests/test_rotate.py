"""``rotate-key``: every email re-sealed and every lookup hash recomputed under the new key, all or nothing."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import sqlite3
import stat
import sys
from contextlib import closing
from pathlib import Path
from unittest import mock

import pytest
from processes import clean_env, run_bot
from test_refusals import encoded, one_line, seed

from bot.rotate import run_rotate_key
from core import ConfigError
from store import EmailCipher, RequestStatus, open_verified

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


def put_key(path: Path, key: bytes) -> None:
    """A key file as the bot writes one: the key in urlsafe base64, owner-only."""
    path.write_text(encoded(key) + "\n")
    path.chmod(0o600)


def key_in(path: Path) -> bytes:
    """The key a key file holds, checked to be its owner's alone."""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return base64.urlsafe_b64decode(path.read_text().strip())


async def rotate_killed_at(word: str, *args: str, env: dict[str, str], cwd: Path) -> None:
    """Run a real rotate-key (tests/rotate_paused.py) until it says ``word``, then kill -9 it there."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "rotate_paused.py"),
        word,
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(60):
            said = await process.stdout.readline()
            while said and said != f"{word}\n".encode():
                said = await process.stdout.readline()
        assert said, "rotate-key ended before it got there"
    finally:
        process.kill()
        await process.wait()


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
    pending = tmp_path / "requests.db.key.new"
    assert f"re-encrypted {CASES - 1} shopper email(s)" in said
    assert f"set ENCRYPTION_KEY to the contents of {pending}" in said
    assert key_in(pending) == new
    assert encoded(new) not in said and encoded(old) not in said
    with closing(sqlite3.connect(database)) as db:
        (detail,) = db.execute("SELECT detail FROM audit WHERE action = 'encryption key rotated'").fetchone()
    assert f"{EmailCipher(old).fingerprint} replaced by {EmailCipher(new).fingerprint}" in detail


async def test_rotate_key_with_a_key_file_rewrites_the_file(tmp_path: Path) -> None:
    """ENCRYPTION_KEY unset: the key file holds the old key, and the new one afterwards (still 0600)."""
    database, old, new = tmp_path / "requests.db", os.urandom(32), os.urandom(32)
    await populate(database, old, cases=3)
    key_file = tmp_path / "requests.db.key"
    put_key(key_file, old)
    out = io.StringIO()
    assert await run_rotate_key({"DATABASE_PATH": str(database), "NEW_ENCRYPTION_KEY": encoded(new)}, out=out) == 0
    assert key_in(key_file) == new
    assert f"{key_file} now holds the new key" in out.getvalue()
    assert not (tmp_path / "requests.db.key.new").exists(), "the key file holds it now; no second copy stays"


async def test_the_readme_recipe_keeps_the_new_key_in_a_printed_file_that_then_opens_the_data(tmp_path: Path) -> None:
    """ENCRYPTION_KEY set and NEW_ENCRYPTION_KEY made inline (the operator never sees it): rotate-key prints the
    owner-only file that holds it; the old key is then refused naming that file, and its contents reveal the data."""
    database, old = tmp_path / "requests.db", os.urandom(32)
    await populate(database, old, cases=3)
    env = clean_env(DATABASE_PATH=str(database), ENCRYPTION_KEY=encoded(old))
    done = await run_bot("rotate-key", env={**env, "NEW_ENCRYPTION_KEY": encoded(os.urandom(32))}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    pending = tmp_path / "requests.db.key.new"
    assert f"kept in {pending}" in done.stdout and f"set ENCRYPTION_KEY to the contents of {pending}" in done.stdout
    new = key_in(pending)
    refused = await run_bot("audit", "--reveal", env=env, cwd=tmp_path)
    assert refused.returncode == 2
    assert f"set ENCRYPTION_KEY to the contents of {pending}" in one_line(refused.stderr)
    revealed = await run_bot("audit", "--reveal", env={**env, "ENCRYPTION_KEY": encoded(new)}, cwd=tmp_path)
    assert revealed.returncode == 0, revealed.stderr
    assert "Shopper.2@Example.com" in revealed.stdout


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


@pytest.mark.parametrize("key_file", [False, True], ids=["ENCRYPTION_KEY", "key file"])
async def test_kill_9_in_the_middle_of_rotate_key_leaves_nothing_half_rotated(tmp_path: Path, key_file: bool) -> None:
    """A real rotate-key killed inside its transaction: the database is wholly under the old key, which still
    opens it as configured; the new key is already on disk, owner-only; a rerun rotates everything."""
    database, old, new = tmp_path / "requests.db", os.urandom(32), os.urandom(32)
    await populate(database, old)
    before = snapshot(database)
    env = clean_env(DATABASE_PATH=str(database), NEW_ENCRYPTION_KEY=encoded(new))
    if key_file:
        put_key(tmp_path / "requests.db.key", old)
    else:
        env["ENCRYPTION_KEY"] = encoded(old)
    await rotate_killed_at("midway", str(CASES // 2), env=env, cwd=tmp_path)
    assert snapshot(database) == before
    await assert_wholly_under(database, old, other=new)
    assert key_in(tmp_path / "requests.db.key.new") == new, "the new key was on disk before any email was sealed"
    if key_file:
        assert key_in(tmp_path / "requests.db.key") == old
    done = await run_bot("rotate-key", env=env, cwd=tmp_path)  # the lock died with the process
    assert done.returncode == 0, done.stderr
    await assert_wholly_under(database, new, other=old)


async def test_kill_9_after_the_commit_leaves_the_new_key_on_disk_and_a_rerun_finishes(tmp_path: Path) -> None:
    """Key file mode, killed once the data is committed under the new key but before the key file is replaced:
    the new key is in the owner-only pending file, audit names it, and rotate-key run again finishes the job."""
    database, old, new = tmp_path / "requests.db", os.urandom(32), os.urandom(32)
    await populate(database, old)
    key_file, pending = tmp_path / "requests.db.key", tmp_path / "requests.db.key.new"
    put_key(key_file, old)
    env = clean_env(DATABASE_PATH=str(database), NEW_ENCRYPTION_KEY=encoded(new))
    await rotate_killed_at("committed", env=env, cwd=tmp_path)
    await assert_wholly_under(database, new, other=old)
    assert key_in(pending) == new and key_in(key_file) == old
    refused = await run_bot("audit", "--reveal", env=env, cwd=tmp_path)
    assert refused.returncode == 2
    line = one_line(refused.stderr)
    assert f"run rotate-key again with the same NEW_ENCRYPTION_KEY, or move {pending} to {key_file}" in line
    done = await run_bot("rotate-key", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "already under the new key" in done.stdout and f"{key_file} now holds the new key" in done.stdout
    assert key_in(key_file) == new and not pending.exists()
    del env["NEW_ENCRYPTION_KEY"]
    revealed = await run_bot("audit", "--reveal", env=env, cwd=tmp_path)
    assert revealed.returncode == 0, revealed.stderr
    assert "Shopper.2@Example.com" in revealed.stdout


@pytest.mark.parametrize("key_file", [False, True], ids=["ENCRYPTION_KEY", "key file"])
async def test_a_new_key_that_cannot_be_written_refuses_before_the_data_changes(tmp_path: Path, key_file: bool) -> None:
    """Something that is not a writable file where the new key goes (a folder: root cannot write it either):
    exit 2, one line naming the path and the fix, no traceback, the database and the key file untouched."""
    database, old = tmp_path / "requests.db", os.urandom(32)
    await populate(database, old, cases=3)
    before = snapshot(database)
    pending = tmp_path / "requests.db.key.new"
    pending.mkdir()
    env = clean_env(DATABASE_PATH=str(database), NEW_ENCRYPTION_KEY=encoded(os.urandom(32)))
    if key_file:
        put_key(tmp_path / "requests.db.key", old)
    else:
        env["ENCRYPTION_KEY"] = encoded(old)
    done = await run_bot("rotate-key", env=env, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    line = one_line(done.stderr)
    assert f"cannot write the new key to {pending}" in line and "nothing was changed" in line
    assert f"move away whatever is at {pending}" in line
    assert snapshot(database) == before
    if key_file:
        assert key_in(tmp_path / "requests.db.key") == old


async def test_rotate_key_never_writes_over_another_key_left_where_the_new_key_goes(tmp_path: Path) -> None:
    """A pending key file holding some third key (perhaps the only copy a backup needs): exit 2, it stays as it was."""
    database, old, third = tmp_path / "requests.db", os.urandom(32), os.urandom(32)
    await populate(database, old, cases=3)
    before = snapshot(database)
    pending = tmp_path / "requests.db.key.new"
    put_key(pending, third)
    env = clean_env(
        DATABASE_PATH=str(database), ENCRYPTION_KEY=encoded(old), NEW_ENCRYPTION_KEY=encoded(os.urandom(32))
    )
    done = await run_bot("rotate-key", env=env, cwd=tmp_path)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert f"{pending} holds another key ({EmailCipher(third).fingerprint})" in line and "move" in line
    assert key_in(pending) == third
    assert snapshot(database) == before


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


async def test_rotate_key_reseals_staffs_notes_so_they_open_under_the_new_key(tmp_path: Path) -> None:
    """A verification note and a denial note, sealed under the old key, open under the new one after rotate-key."""
    database, old, new = tmp_path / "requests.db", os.urandom(32), os.urandom(32)
    await seed(database, old, 2, pattern="Shopper.{n}@Example.com")
    store = await open_verified(database, configured=old, create_key=False)
    try:
        await store.verdicts.verify(1, user="U0ALICE", method="order", note="quoted the order", notices=())
        stands = _status(database, 2)
        await store.verdicts.deny(
            2, user="U0BOB", reason="other", note="a stranger asked", from_=stands, to=stands, notices=()
        )
    finally:
        await store.close()
    env = {"DATABASE_PATH": str(database), "ENCRYPTION_KEY": encoded(old), "NEW_ENCRYPTION_KEY": encoded(new)}
    assert await run_rotate_key(env, out=io.StringIO()) == 0
    store = await open_verified(database, configured=new, create_key=False)
    try:
        assert (await store.verdicts.notes(1)).verified == "quoted the order"
        assert (await store.verdicts.notes(2)).outcome == "a stranger asked"
    finally:
        await store.close()


def _status(database: Path, request_id: int) -> RequestStatus:
    with closing(sqlite3.connect(database)) as db:
        (status,) = db.execute("SELECT status FROM requests WHERE id = ?", (request_id,)).fetchone()
    return RequestStatus(status)
