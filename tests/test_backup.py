"""``data-request-bot backup PATH``: a consistent copy while the bot runs, verified, owner-only, restorable."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import sqlite3
import stat
import time
from contextlib import closing
from pathlib import Path

import pytest
from fakes import text_of
from harness import envelope, running_bot
from processes import clean_env, run_bot
from test_refusals import one_line

from core import ConfigError
from store import EmailCipher, InstanceLock

PROG = "data-request-bot:"
SHOPPERS = ["ann@example.com", "ben@example.com", "cat@example.com"]


def storage_env(database: Path, key: bytes) -> dict[str, str]:
    return clean_env(DATABASE_PATH=str(database), ENCRYPTION_KEY=base64.urlsafe_b64encode(key).decode())


async def test_a_backup_taken_while_the_bot_works_restores_into_a_fresh_bot_with_every_case(tmp_path: Path) -> None:
    """Backup of a running bot's database (its newest rows still in the WAL), copied back as a fresh bot's
    DATABASE_PATH: that bot finds every case by the shopper's email, and the completed one still downloads."""
    backups = tmp_path / "backups"
    backups.mkdir()
    async with running_bot(tmp_path / "live") as bot:
        tasks = [(await bot.request(email))[0] for email in SHOPPERS]
        bot.prime.complete(tasks[0])
        assert (await bot.relay(envelope("PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED", tasks[0]))).status_code == 200
        await bot.slack.wait_for(lambda: [p for p in bot.slack.posts() if "Download" in text_of(p)])
        live = bot.settings.database_path
        assert live.with_name(live.name + "-wal").stat().st_size > 0, "the newest changes are still in the WAL"

        done = await run_bot("backup", str(backups), env=storage_env(live, bot.settings.encryption_key), cwd=tmp_path)

        assert done.returncode == 0, done.stderr
        assert "3 cases (3 open)" in done.stdout and "integrity ok" in done.stdout, done.stdout
        fingerprint = EmailCipher(bot.settings.encryption_key).fingerprint
        assert f"the key is not in the backup: keep ENCRYPTION_KEY (key {fingerprint}) as safely" in done.stdout
        (copy,) = backups.iterdir()
        assert copy.name.startswith("data-requests-") and str(copy) in done.stdout
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert f"{copy.stat().st_size / 1024:.1f} KB" in done.stdout

        # The restore procedure: stop the bot, copy the backup over DATABASE_PATH, start it again.
        await bot.runtime.stop()
        bot.crashed = True  # stopped already; the harness must not stop it twice
        restored = tmp_path / "restored" / "data-requests.db"
        restored.parent.mkdir()
        shutil.copy2(copy, restored)
        shutil.rmtree(tmp_path / "live")
        await bot.restart(database_path=restored)
        for index, (email, task_id) in enumerate(zip(SHOPPERS, tasks, strict=True)):
            await bot.slash(f"status {email}", user="U0BOB")
            answer = await bot.slack.wait_for(lambda i=index: bot.slack.ephemerals_to("U0BOB")[i])
            assert task_id in text_of(answer), text_of(answer)
        reply = await bot.download_reply(bot.parents()[0])
        await bot.click(reply, user="U0BOB")
        await bot.slack.wait_for(lambda: [m for m in bot.slack.ephemerals_to("U0BOB") if "X-Amz" in text_of(m)])
        bot.crashed = False


async def test_backup_to_a_new_file_is_one_self_contained_file_and_an_existing_file_is_never_replaced(
    tmp_path: Path,
) -> None:
    """A new PATH gets the copy, one self-contained file (no journal beside it); a PATH that exists (yesterday's
    backup, or anything else) is refused with exit 2 and one line, and stays as it was."""
    async with running_bot(tmp_path / "live") as bot:
        await bot.request(SHOPPERS[0])
        env = storage_env(bot.settings.database_path, bot.settings.encryption_key)
        target = tmp_path / "nightly.db"
        done = await run_bot("backup", str(target), env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        yesterday = tmp_path / "yesterday.db"
        yesterday.write_bytes(b"yesterday's backup")
        again = await run_bot("backup", str(yesterday), env=env, cwd=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live", "nightly.db", "yesterday.db"]
    with closing(sqlite3.connect(target)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 1
    assert again.returncode == 2
    line = one_line(again.stderr)
    assert f"{yesterday} exists, and a backup never replaces a file" in line
    assert yesterday.read_bytes() == b"yesterday's backup"


@pytest.mark.parametrize(
    ("suffix", "why"),
    [
        ("", "is the live database"),
        ("-wal", "is the live database's write-ahead log"),
        ("-shm", "is the live database's shared memory file"),
        (".lock", "is the bot's lock file"),
        (".key", "is the database's key file"),
        (".key.new", "is the database's key file"),
    ],
)
async def test_backup_never_writes_over_the_bots_own_files(tmp_path: Path, suffix: str, why: str) -> None:
    """PATH naming the running bot's database, WAL, SHM, lock or key file (existing or not): exit 2, one line
    saying which it is; the file keeps its inode, and the bot still holds its lock (no second serve can start)."""
    async with running_bot(tmp_path / "live") as bot:
        await bot.request(SHOPPERS[0])
        live = bot.settings.database_path
        key_file = live.with_name(live.name + ".key")
        key_file.write_text(base64.urlsafe_b64encode(bot.settings.encryption_key).decode() + "\n")
        key_file.chmod(0o600)  # the key file beside the database: ENCRYPTION_KEY unset
        target = live.with_name(live.name + suffix)
        inode = target.stat().st_ino if target.exists() else None
        done = await run_bot("backup", str(target), env=clean_env(DATABASE_PATH=str(live)), cwd=tmp_path)
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert f"{target} {why}" in one_line(done.stderr)
        assert (target.stat().st_ino if target.exists() else None) == inode
        with pytest.raises(ConfigError, match="in use by data-request-bot serve"):
            InstanceLock.acquire(live)
        assert key_file.read_text().strip() == base64.urlsafe_b64encode(bot.settings.encryption_key).decode()


async def test_a_path_ending_in_a_slash_is_a_folder_made_owner_only(tmp_path: Path) -> None:
    """``backup new/folder/`` that does not exist: the folders are made (0700) and a time-stamped file goes in;
    a slash after an existing file's name is refused in one line."""
    async with running_bot(tmp_path / "live") as bot:
        await bot.request(SHOPPERS[0])
        env = storage_env(bot.settings.database_path, bot.settings.encryption_key)
        folder = tmp_path / "backups" / "nightly"
        done = await run_bot("backup", f"{folder}/", env=env, cwd=tmp_path)
        (tmp_path / "a-file").write_text("not a folder")
        not_a_folder = await run_bot("backup", f"{tmp_path / 'a-file'}/", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    (copy,) = folder.iterdir()
    assert copy.name.startswith("data-requests-") and copy.suffix == ".db" and f"written to {copy}" in done.stdout
    assert not_a_folder.returncode == 2
    assert f"{tmp_path / 'a-file'} is a file, not a folder" in one_line(not_a_folder.stderr)
    assert (tmp_path / "a-file").read_text() == "not a folder"


async def test_backups_in_the_same_second_get_names_of_their_own(tmp_path: Path) -> None:
    """Every time-stamped name of the next minute already taken, then two backups at once: both are written, under
    suffixed names, and nothing already in the folder is replaced."""
    backups = tmp_path / "backups"
    backups.mkdir()
    now = int(time.time())
    taken = {
        backups / time.strftime("data-requests-%Y%m%dT%H%M%SZ.db", time.gmtime(second)): f"taken {second}"
        for second in range(now - 1, now + 60)
    }
    for path, text in taken.items():
        path.write_text(text)
    async with running_bot(tmp_path / "live") as bot:
        await bot.request(SHOPPERS[0])
        env = storage_env(bot.settings.database_path, bot.settings.encryption_key)
        first, second = await asyncio.gather(*(run_bot("backup", f"{backups}/", env=env, cwd=tmp_path) for _ in "12"))
    assert (first.returncode, second.returncode) == (0, 0), (first.stderr, second.stderr)
    assert all(path.read_text() == text for path, text in taken.items())
    made = sorted(set(backups.iterdir()) - set(taken))
    assert len(made) == 2 and all(p.name.endswith(("-2.db", "-3.db")) for p in made), made
    for copy in made:
        with closing(sqlite3.connect(copy)) as db:
            assert db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 1


async def test_a_folder_the_bot_may_not_write_in_is_one_line(tmp_path: Path) -> None:
    """A target folder this user cannot create files in: exit 2, one line naming the folder and the fix, no
    traceback (mode 0500; for root, whom modes do not stop, /sys, where nobody may create a file)."""
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    if os.geteuid() == 0:
        folder = Path("/sys")
    async with running_bot(tmp_path / "live") as bot:
        env = storage_env(bot.settings.database_path, bot.settings.encryption_key)
        done = await run_bot("backup", f"{folder}/", env=env, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    line = one_line(done.stderr)
    assert f"cannot write in {folder}" in line and "a folder this user can write to" in line


async def test_backup_mistakes_are_one_line_each_and_write_nothing(tmp_path: Path) -> None:
    """No database, not a database, no such folder, or the live database as PATH: exit 2, one line, no
    traceback, no file."""
    missing = await run_bot(
        "backup", str(tmp_path / "out.db"), env=storage_env(tmp_path / "none.db", bytes(32)), cwd=tmp_path
    )
    assert missing.returncode == 2 and missing.stderr.startswith(f"{PROG} there is no database at")
    (tmp_path / "notes.txt").write_text("not a database, but a long enough text to have a header" * 10)
    not_sqlite = await run_bot(
        "backup", str(tmp_path / "out.db"), env=storage_env(tmp_path / "notes.txt", bytes(32)), cwd=tmp_path
    )
    assert not_sqlite.returncode == 2 and "is not a SQLite database: check DATABASE_PATH" in not_sqlite.stderr
    async with running_bot(tmp_path / "live") as bot:
        live = bot.settings.database_path
        env = storage_env(live, bot.settings.encryption_key)
        no_folder = await run_bot("backup", str(tmp_path / "nowhere" / "out.db"), env=env, cwd=tmp_path)
        itself = await run_bot("backup", str(live), env=env, cwd=tmp_path)
    assert no_folder.returncode == 2 and "is not a folder: create it" in no_folder.stderr
    assert itself.returncode == 2 and "is the live database" in itself.stderr
    for done in (missing, not_sqlite, no_folder, itself):
        assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "out.db").exists()


async def test_a_damaged_database_fails_the_integrity_check_and_keeps_the_last_good_backup(tmp_path: Path) -> None:
    """An index page overwritten on disk: the copy fails PRAGMA integrity_check, exit 1, the folder holds only the
    old backup (no partial copy)."""
    async with running_bot(tmp_path / "live") as bot:
        for email in SHOPPERS:
            await bot.request(email)
        live = bot.settings.database_path
        key = bot.settings.encryption_key
    with closing(sqlite3.connect(live)) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'requests_by_email_kind'").fetchone()[0]
    with live.open("r+b") as raw:  # scramble the index's cells, keep its page header readable
        raw.seek((root - 1) * page_size + page_size // 2)
        raw.write(bytes(range(256)) * (page_size // 512))
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "data-requests-20261129T021500Z.db").write_bytes(b"the last good backup")
    done = await run_bot("backup", str(backups), env=storage_env(live, key), cwd=tmp_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.startswith(f"{PROG} backup failed, nothing was written:"), done.stderr
    (kept,) = backups.iterdir()
    assert kept.read_bytes() == b"the last good backup"
