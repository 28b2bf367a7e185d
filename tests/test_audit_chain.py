"""The audit log's hash chain: `audit --verify` finds the first entry changed, removed or inserted afterwards.

The logs are written by the real bot (signed commands, fake Amazon's events, clicks); the tampering is
done the way someone with the database file would do it, with sqlite3 after dropping the triggers.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import SettableClock, eventually, running_bot
from processes import clean_env, run_bot
from test_cases import DAY, _has, close_button, completed, key_of

from bot.admin import run_audit
from store._chain import entry_hash
from store._schema import BASELINE, BASELINE_VERSION

Tamper = Callable[[sqlite3.Connection], None]


async def verify(database: Path, key: str | None = None) -> tuple[int, list[str]]:
    """``data-request-bot audit --verify`` on ``database``, as its own process: (exit status, its lines)."""
    env = clean_env(DATABASE_PATH=str(database), **({"ENCRYPTION_KEY": key} if key else {}))
    done = await run_bot("audit", "--verify", env=env, cwd=database.parent)
    assert done.stderr == "", done.stderr
    return done.returncode, done.lines


@pytest.fixture(scope="module")
def case_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A database whose log the bot wrote: two cases requested, one completed, downloaded and closed, one
    revealed export by a second process while the bot ran. (database, its key)"""
    workdir = tmp_path_factory.mktemp("chain")

    async def drive() -> str:
        async with running_bot(workdir) as bot:
            _, _, reply = await completed(bot, "chain@example.com")
            await bot.click(reply, user="U0BOB")
            await eventually(lambda: _has(bot, "link shown"))
            key = key_of(bot)
            env = {"DATABASE_PATH": str(bot.settings.database_path), "ENCRYPTION_KEY": key}
            await run_audit(env, since=0, fmt="csv", reveal=True, out=io.StringIO())
            await bot.click(close_button(reply))
            await eventually(lambda: _has(bot, "closed"))
            await bot.request("second@example.com")
            return key

    key = asyncio.run(drive())
    return workdir / "data-requests.db", key


def tampered(case_log: tuple[Path, str], tmp_path: Path, change: Tamper) -> Path:
    """A copy of the bot's database with ``change`` made to its audit table past the triggers."""
    copy = tmp_path / "data-requests.db"
    shutil.copy(case_log[0], copy)
    with sqlite3.connect(copy) as db:
        db.execute("DROP TRIGGER audit_is_append_only_update")
        db.execute("DROP TRIGGER audit_is_append_only_delete")
        change(db)
    return copy


def entry(db: sqlite3.Connection, entry_id: int) -> tuple[float, int | None, str, str, str, str, str, str]:
    row = db.execute(
        "SELECT at, request_id, actor, actor_name, action, detail, prev_hash, hash FROM audit WHERE id = ?",
        (entry_id,),
    ).fetchone()
    return tuple(row)  # type: ignore[return-value]


def make_room(db: sqlite3.Connection, at: int) -> None:
    """Move entries ``at`` and after one id up, so a new entry can take id ``at``."""
    db.execute("UPDATE audit SET id = -id WHERE id >= ?", (at,))
    db.execute("UPDATE audit SET id = 1 - id WHERE id < 0")


def forged(db: sqlite3.Connection, entry_id: int, *, detail: str) -> tuple[object, ...]:
    """An entry as the bot would have written it after ``entry_id - 1`` (someone who knows the encoding)."""
    prev_hash = entry(db, entry_id - 1)[7]
    values = (entry_id, 1.9e9, 1, "U0MALLORY", "", "approved", detail)
    return (*values, prev_hash, entry_hash(*values, prev_hash))


def edit_detail(db: sqlite3.Connection) -> None:
    db.execute("UPDATE audit SET detail = 'nothing to see' WHERE id = 3")


def edit_and_rehash(db: sqlite3.Connection) -> None:
    at, request_id, actor, actor_name, action, _, prev_hash, _ = entry(db, 3)
    new = entry_hash(3, at, request_id, actor, actor_name, action, "nothing to see", prev_hash)
    db.execute("UPDATE audit SET detail = 'nothing to see', hash = ? WHERE id = 3", (new,))


def delete_one(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM audit WHERE id = 3")


def delete_the_first(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM audit WHERE id = 1")


def insert_plain(db: sqlite3.Connection) -> None:
    make_room(db, 3)
    db.execute("INSERT INTO audit (id, at, request_id, actor, action) VALUES (3, 1.9e9, 1, 'U0MALLORY', 'approved')")


def insert_forged(db: sqlite3.Connection) -> None:
    make_room(db, 3)
    db.execute(
        "INSERT INTO audit (id, at, request_id, actor, actor_name, action, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        forged(db, 3, detail="forged"),
    )


@pytest.mark.parametrize(
    ("change", "named", "intact"),
    [
        (edit_detail, "chain broken at entry 3: it was changed after it was written", 2),
        (edit_and_rehash, "chain broken at entry 3: it was changed after it was written (its hash was recomputed", 2),
        (delete_one, "chain broken at entry 3: it was removed", 2),
        (delete_the_first, "chain broken before entry 2: the entries before it were removed", 0),
        (insert_plain, "chain broken at entry 3: it was inserted afterwards", 2),
        (insert_forged, "chain broken at entry 3: it was inserted afterwards", 2),
    ],
)
async def test_verify_names_the_first_entry_changed_removed_or_inserted(
    case_log: tuple[Path, str], tmp_path: Path, change: Tamper, named: str, intact: int
) -> None:
    """Each kind of tampering is found, exit 1, and the entry it was done to is named."""
    status, lines = await verify(tampered(case_log, tmp_path, change), case_log[1])
    assert status == 1, lines
    assert lines[0].startswith(named), lines
    assert lines[1] == f"{intact} entries before it are intact"


async def test_verify_says_the_bots_own_log_is_intact(case_log: tuple[Path, str]) -> None:
    """Every entry the bot and a second process appended, interleaved, is chained: exit 0, the count, the head."""
    with sqlite3.connect(case_log[0]) as db:
        count, last_id = db.execute("SELECT COUNT(*), MAX(id) FROM audit").fetchone()
        last_hash = db.execute("SELECT hash FROM audit WHERE id = ?", (last_id,)).fetchone()[0]
        actions = [row[0] for row in db.execute("SELECT action FROM audit ORDER BY id")]
    assert "audit exported" in actions and actions.index("audit exported") < actions.index("closed")
    status, lines = await verify(case_log[0], case_log[1])
    assert status == 0, lines
    assert lines[0] == f"{count} entries, chain intact"
    assert lines[1].startswith(f"newest: entry {last_id} at ") and lines[1].endswith(f", hash {last_hash}")


async def test_verify_without_a_database_is_a_settings_problem(tmp_path: Path) -> None:
    """No database at DATABASE_PATH: exit 2, naming the setting, nothing created."""
    done = await run_bot("audit", "--verify", env=clean_env(DATABASE_PATH=str(tmp_path / "none.db")), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("data-request-bot: DATABASE_PATH") and "Traceback" not in done.stderr
    assert not (tmp_path / "none.db").exists()


async def test_retention_leaves_every_audit_entry_and_the_chain_whole(tmp_path: Path) -> None:
    """Erasing an old case's email touches the request, never the log: the chain still holds after it."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock, retention_days=30) as bot:
        _, _, reply = await completed(bot, "forget.me@example.com")
        await bot.click(close_button(reply))
        await eventually(lambda: _has(bot, "closed"))
        before = await bot.runtime.store.audit.entries()
        clock.advance(31 * DAY)
        assert await bot.runtime.workers.retention.purge() == [1]
        after = await bot.runtime.store.audit.entries()
        key = key_of(bot)
    assert after[: len(before)] == before and [e.action for e in after[len(before) :]] == ["purged"]
    status, lines = await verify(bot.settings.database_path, key)
    assert (status, lines[0]) == (0, f"{len(after)} entries, chain intact")


async def test_the_migration_chains_the_entries_an_older_bot_wrote(tmp_path: Path) -> None:
    """A database from before the chain: its entries are chained when it is opened, the triggers stay, and a
    later change to one of those old entries is found."""
    database = tmp_path / "data-requests.db"
    with sqlite3.connect(database) as db:
        db.executescript(BASELINE + f"PRAGMA user_version = {BASELINE_VERSION};")
        db.executemany(
            "INSERT INTO audit (at, request_id, actor, action, detail, actor_name) VALUES (?, NULL, ?, ?, ?, ?)",
            [(1.7e9 + i, "U0ALICE", "status viewed", f"old entry {i} — é", "alice") for i in range(50)],
        )
    status, lines = await verify(database)
    assert (status, lines[0]) == (0, "50 entries, chain intact")
    with sqlite3.connect(database) as db:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit SET detail = 'changed' WHERE id = 7")
        db.execute("DROP TRIGGER audit_is_append_only_update")
        db.execute("UPDATE audit SET detail = 'changed' WHERE id = 7")
    status, lines = await verify(database)
    assert status == 1 and lines[0].startswith("chain broken at entry 7: it was changed")


def rewrite_from_the_third(db: sqlite3.Connection) -> None:
    """Change entry 3 and recompute every hash from there on: a chain that holds, told apart from the
    original only by a hash noted before."""
    first = 3
    db.execute("UPDATE audit SET detail = 'nothing to see' WHERE id = ?", (first,))
    prev_hash = entry(db, first - 1)[7]
    for (entry_id,) in db.execute("SELECT id FROM audit WHERE id >= ? ORDER BY id", (first,)).fetchall():
        at, request_id, actor, actor_name, action, detail, _, _ = entry(db, entry_id)
        new = entry_hash(entry_id, at, request_id, actor, actor_name, action, detail, prev_hash)
        db.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?", (prev_hash, new, entry_id))
        prev_hash = new


def newest_noted(lines: list[str]) -> tuple[str, str]:
    """The entry and hash a successful --verify printed as the newest, as an auditor notes them down."""
    found = re.fullmatch(r"newest: entry (\d+) at \S+, hash (\w+)", lines[1])
    assert found, lines
    return found.group(1), found.group(2)


def delete_the_newest(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM audit WHERE id = (SELECT MAX(id) FROM audit)")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            delete_the_newest,
            "chain broken after entry {before}: entry {newest}, noted earlier, is no longer in the log",
        ),
        (rewrite_from_the_third, "chain broken at entry {newest}: it no longer has the hash noted for it"),
    ],
)
async def test_an_entry_noted_earlier_must_still_be_there_with_its_hash(
    case_log: tuple[Path, str], tmp_path: Path, change: Tamper, named: str
) -> None:
    """What the chain alone cannot show (the newest entries removed, the log rewritten from one entry on) is
    found against the newest entry and hash an earlier --verify printed (--expect)."""
    newest, digest = newest_noted((await verify(case_log[0], case_log[1]))[1])
    copy = tampered(case_log, tmp_path, change)
    assert (await verify(copy, case_log[1]))[0] == 0  # the chain itself still holds
    done = await run_bot(
        "audit",
        "--verify",
        "--expect",
        f"{newest}:{digest}",
        env=clean_env(DATABASE_PATH=str(copy), ENCRYPTION_KEY=case_log[1]),
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout
    assert done.lines[0].startswith(named.format(newest=newest, before=int(newest) - 1)), done.lines


async def test_expect_passes_on_the_log_as_it_was_noted_and_refuses_a_malformed_value(
    case_log: tuple[Path, str],
) -> None:
    """The untouched log passes --expect with its own newest entry; a value that is not ENTRY:HASH is exit 2."""
    _, lines = await verify(case_log[0], case_log[1])
    newest, digest = newest_noted(lines)
    env = clean_env(DATABASE_PATH=str(case_log[0]), ENCRYPTION_KEY=case_log[1])
    good = await run_bot("audit", "--verify", "--expect", f"{newest}:{digest}", env=env, cwd=case_log[0].parent)
    assert (good.returncode, good.lines) == (0, lines)
    bad = await run_bot("audit", "--verify", "--expect", "yesterday", env=env, cwd=case_log[0].parent)
    assert bad.returncode == 2 and bad.stderr.startswith("data-request-bot: --expect takes")
