"""``data-request-bot backup PATH``: a consistent copy while the bot runs, verified, owner-only, restorable."""

from __future__ import annotations

import base64
import shutil
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

from fakes import text_of
from harness import envelope, running_bot
from processes import clean_env, run_bot

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
        assert "the key is not in the backup: keep ENCRYPTION_KEY" in done.stdout
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


async def test_backup_to_a_file_replaces_it_and_leaves_no_journal_beside_it(tmp_path: Path) -> None:
    """A fixed PATH (a nightly job) is replaced whole, and the copy is one self-contained file."""
    async with running_bot(tmp_path / "live") as bot:
        await bot.request(SHOPPERS[0])
        target = tmp_path / "nightly.db"
        target.write_bytes(b"yesterday's backup")
        env = storage_env(bot.settings.database_path, bot.settings.encryption_key)
        done = await run_bot("backup", str(target), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live", "nightly.db"]
    with closing(sqlite3.connect(target)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 1


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
    """An index page overwritten on disk: the copy fails PRAGMA integrity_check, exit 1, the old backup stays."""
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
    target = tmp_path / "nightly.db"
    target.write_bytes(b"the last good backup")
    done = await run_bot("backup", str(target), env=storage_env(live, key), cwd=tmp_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.startswith(f"{PROG} backup failed, nothing was written:"), done.stderr
    assert target.read_bytes() == b"the last good backup"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live", "nightly.db"]
