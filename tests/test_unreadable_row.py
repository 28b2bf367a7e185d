"""One stored email that cannot be decrypted stays with its request: it backs off alone, the others go on."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
from pathlib import Path

import pytest
from fakes import text_of
from harness import Harness, running_bot
from processes import clean_env, run_bot
from test_cases import key_of
from test_odd_answers import slow_retries
from test_refusals import encoded
from test_rotate import populate, snapshot

from bot.admin import run_audit

WAITING = "waiting@example.com"
UNREADABLE = "cannot be decrypted"


def corrupt_oldest_email(bot: Harness) -> int:
    """Flip one byte of the oldest request's sealed email in the database file, as a damaged row has it."""
    with sqlite3.connect(bot.settings.database_path) as db:
        request_id, sealed = db.execute("SELECT id, email_sealed FROM requests ORDER BY id LIMIT 1").fetchone()
        damaged = bytes(sealed[:-1]) + bytes([sealed[-1] ^ 0x01])
        db.execute("UPDATE requests SET email_sealed = ? WHERE id = ?", (damaged, request_id))
    return int(request_id)


async def check_failures(bot: Harness, request_id: int) -> int:
    (request,) = [r for r in await bot.runtime.store.requests.unfinished(due_by=float("inf")) if r.id == request_id]
    assert request.status.value == "STARTING"
    return request.check_failures


async def waiting_request(bot: Harness) -> dict[str, object]:
    """A request that Amazon's refused credentials keep in STARTING, then the credentials work again."""
    real_secret = bot.prime.client_secret
    bot.prime.client_secret = "rotated-at-amazon"
    await bot.slash(WAITING)
    parent = await bot.slack.wait_for(lambda: bot.parents()[0])
    await bot.slack.wait_for(lambda: bot.replies(parent["ts"])[0])
    bot.prime.client_secret = real_secret
    return parent


async def test_an_undecryptable_oldest_request_backs_off_alone_and_a_newer_task_completes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The oldest open request's ciphertext is damaged: the pass logs one line for it (no traceback), backs it
    off on its own schedule, and polls and completes the newer task; later passes leave the damaged row alone
    until its backoff ends, and `status` on it still answers."""
    async with running_bot(tmp_path, tuning=slow_retries(), relay_api_key=None) as bot:
        await waiting_request(bot)
        bad_id = corrupt_oldest_email(bot)
        good_task, good_parent = await bot.request("good@example.com")
        bot.prime.complete(good_task)
        caplog.set_level(logging.INFO)
        caplog.clear()

        await bot.runtime.workers.reconciler.reconcile(resume=True)  # every unfinished request, as at a restart
        await bot.download_reply(good_parent)
        failures = await check_failures(bot, bad_id)
        for _ in range(3):
            await bot.runtime.workers.reconciler.reconcile()
        assert await check_failures(bot, bad_id) == failures  # not due again: its own backoff holds
        await bot.slash(f"status {WAITING}")
        answer = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE")[0])
        assert "w***@example.com" in text_of(answer)
    said = [r for r in caplog.records if UNREADABLE in r.getMessage()]
    assert len(said) == 2, [r.getMessage() for r in said]  # the resume pass, and the status command's own look
    assert all(r.exc_info is None and f"request {bad_id}" in r.getMessage() for r in said)
    assert "Traceback" not in caplog.text and "failed" not in caplog.text
    assert WAITING not in caplog.text


async def test_audit_reveal_shows_the_other_emails_and_names_the_damaged_row(bot: Harness) -> None:
    """`audit --reveal` with one damaged row exports every entry: the others revealed, that one marked masked."""
    await bot.request("first@example.com")
    await bot.request("second@example.com")
    corrupt_oldest_email(bot)
    env = {"DATABASE_PATH": str(bot.settings.database_path), "ENCRYPTION_KEY": key_of(bot)}
    out = io.StringIO()
    assert await run_audit(env, since=0, fmt="jsonl", reveal=True, out=out) == 0
    shoppers = {json.loads(line)["shopper"] for line in out.getvalue().splitlines()}
    assert shoppers == {"second@example.com", "(cannot be decrypted; masked f***@example.com)"}


async def test_rotate_key_stops_on_a_damaged_row_and_changes_nothing(tmp_path: Path) -> None:
    """rotate-key meeting a row that does not open: exit 2, one line naming the request, nothing rotated."""
    database, old = tmp_path / "requests.db", os.urandom(32)
    await populate(database, old, cases=4)
    with sqlite3.connect(database) as db:
        sealed = db.execute("SELECT email_sealed FROM requests WHERE id = 3").fetchone()[0]
        damaged = bytes(sealed[:-1]) + bytes([sealed[-1] ^ 0x01])  # never the same bytes (a zero byte could be)
        db.execute("UPDATE requests SET email_sealed = ? WHERE id = 3", (damaged,))
    before = snapshot(database)
    env = clean_env(
        DATABASE_PATH=str(database), ENCRYPTION_KEY=encoded(old), NEW_ENCRYPTION_KEY=encoded(os.urandom(32))
    )
    done = await run_bot("rotate-key", env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert "request 3's stored email does not open" in line and "nothing was rotated" in line
    assert snapshot(database) == before
