"""The operator's and the compliance officer's commands with ``DATABASE_URL``, each run as its own process as
an operator runs it: the audit chain verified (and a tampered entry found), the evidence file, ``check``,
``backup`` pointing at pg_dump, ``rotate-key`` (refused while a copy serves), and ``serve`` without the key."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path

import psycopg
import pytest
from harness import SettableClock
from processes import Fakes, clean_env, run_bot
from test_store import in_progress

from store import EmailCipher, Leadership, open_verified

KEY = os.urandom(32)
NEW_KEY = os.urandom(32)


def b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


async def three_cases(url: str) -> None:
    store = await open_verified(url, configured=KEY, create_key=True, clock=SettableClock(1_765_000_000.0))
    try:
        for n in range(3):
            await in_progress(store, f"shopper{n}@example.com", task_id=f"task-{n}")
    finally:
        await store.close()


@pytest.fixture
async def url(postgres_url: str) -> str:
    await three_cases(postgres_url)
    return postgres_url


async def test_audit_verify_passes_the_bots_log_and_names_an_entry_changed_behind_its_back(
    url: str, tmp_path: Path
) -> None:
    env = clean_env(DATABASE_URL=url)  # no key: verifying reads no email
    intact = await run_bot("audit", "--verify", env=env, cwd=tmp_path)
    assert intact.returncode == 0, intact.stderr
    assert "6 entries, chain intact" in intact.stdout
    with psycopg.connect(url, autocommit=True) as db:  # the owner of the database can step around the trigger
        db.execute("ALTER TABLE audit DISABLE TRIGGER audit_is_append_only_update")
        db.execute("UPDATE audit SET detail = 'nothing to see' WHERE id = 3")
    broken = await run_bot("audit", "--verify", env=env, cwd=tmp_path)
    assert broken.returncode == 1
    assert "chain broken at entry 3" in broken.stdout + broken.stderr


async def test_evidence_for_a_case_is_written_from_postgresql_without_the_email(url: str, tmp_path: Path) -> None:
    out = tmp_path / "case-1.json"
    done = await run_bot(
        "evidence", "1", "--out", str(out), env=clean_env(DATABASE_URL=url, ENCRYPTION_KEY=b64(KEY)), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    evidence = json.loads(out.read_text())
    assert "shopper0@example.com" not in out.read_text()
    assert [task["task"] for task in evidence["tasks"]] == ["task-0"]
    assert out.stat().st_mode & 0o777 == 0o600


async def test_backup_points_at_pg_dump_and_changes_nothing(url: str, tmp_path: Path) -> None:
    done = await run_bot(
        "backup", str(tmp_path / "copy.db"), env=clean_env(DATABASE_URL=url, ENCRYPTION_KEY=b64(KEY)), cwd=tmp_path
    )
    assert done.returncode == 2
    assert "pg_dump" in done.stderr and not (tmp_path / "copy.db").exists()


async def test_check_says_the_database_answers_and_the_key_opens_it(url: str, tmp_path: Path, fakes: Fakes) -> None:
    good = await run_bot("check", env=fakes.env(tmp_path, DATABASE_URL=url, ENCRYPTION_KEY=b64(KEY)), cwd=tmp_path)
    assert "database: PostgreSQL" in good.stdout and "ENCRYPTION_KEY opens the stored data" in good.stdout
    wrong = await run_bot(
        "check", env=fakes.env(tmp_path, DATABASE_URL=url, ENCRYPTION_KEY=b64(os.urandom(32))), cwd=tmp_path
    )
    assert wrong.returncode == 1 and "ENCRYPTION_KEY does not open" in wrong.stdout


async def test_serve_without_the_shared_key_exits_2_naming_it(url: str, tmp_path: Path, fakes: Fakes) -> None:
    env = fakes.env(tmp_path, DATABASE_URL=url)
    env.pop("ENCRYPTION_KEY", None)
    done = await run_bot("serve", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "ENCRYPTION_KEY" in done.stderr and "DATABASE_URL" in done.stderr


async def test_rotate_key_waits_for_every_copy_to_stop_then_reseals_every_email(url: str, tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=url, ENCRYPTION_KEY=b64(KEY), NEW_ENCRYPTION_KEY=b64(NEW_KEY))
    serving = Leadership(url, ask_every=0.05)  # what a serving copy holds
    held = asyncio.Event()

    async def lead() -> None:
        held.set()
        await asyncio.Event().wait()

    copy = asyncio.create_task(serving.run(lead))
    try:
        async with asyncio.timeout(10):
            await held.wait()
        refused = await run_bot("rotate-key", env=env, cwd=tmp_path)
        assert refused.returncode == 2 and "stop every copy" in refused.stderr
    finally:
        copy.cancel()
        await asyncio.gather(copy, return_exceptions=True)
    done = await run_bot("rotate-key", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "re-encrypted 3 shopper email(s)" in done.stdout
    kept = tmp_path / "data-request-bot.new-key"
    assert kept.stat().st_mode & 0o777 == 0o600
    reopened = await open_verified(url, configured=NEW_KEY, create_key=True)
    try:
        (request,) = await reopened.requests.for_email("shopper1@example.com")
        assert await reopened.requests.reveal_email(request.id) == "shopper1@example.com"
    finally:
        await reopened.close()
    with pytest.raises(Exception, match="ENCRYPTION_KEY does not open"):
        await open_verified(url, configured=KEY, create_key=True)
    assert EmailCipher(NEW_KEY).fingerprint in done.stdout
