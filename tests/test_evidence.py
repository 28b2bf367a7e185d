"""`data-request-bot evidence`: one case's whole record in one file, JSON for machines and HTML for people.

The cases are made by the real bot (signed commands and clicks, fake Amazon's events, its own timers on a
settable clock); the files are made by the real command, in its own process, and the HTML is read back
as a browser renders it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from erasures import approve, ask
from fakes import text_of
from harness import SettableClock, envelope, eventually, running_bot
from processes import Finished, clean_env, run_bot
from test_cases import COMPLETED, DAY, _has, close_button

from store._chain import entry_hash

RETRIEVAL_EMAIL = "evidence.shopper@example.com"
ERASURE_EMAIL = "erase.evidence@example.com"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Made:
    """The database the bot left behind, and what happened in it."""

    def __init__(self, database: Path, key: str, task_id: str, erasure_task: str, link: str) -> None:
        self.database, self.key, self.task_id, self.erasure_task, self.link = database, key, task_id, erasure_task, link

    def env(self) -> dict[str, str]:
        return clean_env(DATABASE_PATH=str(self.database), ENCRYPTION_KEY=self.key)

    async def evidence(self, *args: str) -> Finished:
        return await run_bot("evidence", *args, env=self.env(), cwd=self.database.parent)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """A retrieval asked with a 10-day deadline, its shopper's identity verified by Bob, reminded, extended by
    Bob, completed, its Download shown to Bob, closed by Alice; and an erasure Alice asked and Bob approved."""
    workdir = tmp_path_factory.mktemp("evidence")
    clock = SettableClock()

    async def drive() -> Made:
        async with running_bot(workdir, clock=clock) as bot:
            task_id, parent = await bot.request(f"{RETRIEVAL_EMAIL} --deadline 10d", email=RETRIEVAL_EMAIL)
            await bot.slash(f"verify {task_id} document", user="U0BOB")
            await eventually(lambda: _has(bot, "identity verified"))
            clock.advance(4 * DAY)
            assert await bot.runtime.workers.reminders.send_due() == 1
            await bot.slash(f"extend {task_id} 45d", user="U0BOB")
            await eventually(lambda: _has(bot, "deadline extended"))
            bot.prime.complete(task_id)
            await bot.relay(envelope(COMPLETED, task_id))
            reply = await bot.download_reply(parent)
            await bot.click(reply, user="U0BOB")
            shown = await bot.slack.wait_for(
                lambda: [m for m in bot.slack.ephemerals_to("U0BOB") if "X-Amz" in text_of(m)]
            )
            link = re.search(r"https?://[^\s|>\"]+", text_of(shown[0]))
            await eventually(lambda: _has(bot, "link shown"))
            await bot.click(close_button(reply))
            await eventually(lambda: _has(bot, "closed"))
            erasure = await ask(bot, f"delete {ERASURE_EMAIL}")
            erasure_task = await approve(bot, erasure, ERASURE_EMAIL)
            assert bot.settings.encryption_key is not None
            key = base64.urlsafe_b64encode(bot.settings.encryption_key).decode()
        assert link is not None, text_of(shown[0])
        return Made(workdir / "data-requests.db", key, task_id, erasure_task.task_id, link.group(0))

    return asyncio.run(drive())


def audit_rows(database: Path, request_id: int) -> list[tuple[int, str, str, str]]:
    with sqlite3.connect(database) as db:
        return db.execute(
            "SELECT id, action, prev_hash, hash FROM audit WHERE request_id = ? ORDER BY id", (request_id,)
        ).fetchall()


async def test_json_evidence_holds_the_whole_case_in_time_order_without_the_email(made: Made) -> None:
    """Found by its task id: intake, the task and Amazon's event, the reminder, the extension, the Download
    shown to Bob, the outcome and every audit entry with the hash the log holds; no email, no link."""
    done = await made.evidence(made.task_id)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["evidence_format"] == 1 and doc["case"]["request"] == 1 and doc["case"]["status"] == "COMPLETED"
    assert doc["intake"]["requested_by"]["id"] == "U0ALICE" and doc["intake"]["deadline"].startswith("10 days")
    assert doc["shopper"] == {"email_masked": "e***@example.com", "email_erased_at": None}
    assert doc["verification"]["verified_by"]["id"] == "U0BOB" and doc["verification"]["how"] == "document"
    assert doc["verification"]["at"] and doc["outcome"]["outcome"] == "complied"
    [task] = doc["tasks"]
    assert task["task"] == made.task_id and task["status"] == "COMPLETED" and task["started_at"]
    assert [e["type"] for e in task["events"]] == [COMPLETED] and task["events"][0]["processed_at"]
    [reminder] = doc["reminders"]
    assert reminder["which"] and reminder["at"]
    assert [(e["by"]["id"], e["detail"]) for e in doc["extensions"]["extended"]] == [("U0BOB", "+45 days")]
    [download] = doc["downloads"]
    assert download["shown_to"]["id"] == "U0BOB" and download["at"]
    assert doc["outcome"]["closed_by"]["id"] == "U0ALICE" and doc["outcome"]["closed_at"]
    stored = audit_rows(made.database, 1)
    assert [(e["id"], e["action"], e["prev_hash"], e["hash"]) for e in doc["audit"]] == stored
    assert doc["audit_chain"]["intact"] is True
    for e in doc["audit"]:  # each hash can be recomputed from the file alone
        fields = (e["id"], e["at_epoch"], e["request_id"], e["actor"], e["actor_name"], e["action"], e["detail"])
        assert entry_hash(*fields, e["prev_hash"]) == e["hash"]
    times = [t["at"] for t in doc["timeline"]]
    whats = [t["what"] for t in doc["timeline"]]
    assert times == sorted(times) and whats[:2] == ["shopper's request received", "requested"]
    assert (
        whats.index("reminder sent")
        < whats.index("deadline extended")
        < whats.index("link shown")
        < whats.index("closed")
    )
    assert RETRIEVAL_EMAIL not in done.stdout and made.link not in done.stdout
    assert "https://" not in done.stdout and "http://" not in done.stdout


async def test_erasure_evidence_names_who_approved_by_request_id(made: Made) -> None:
    """The erasure's file, asked for by request id: Alice requested, Bob approved, the deletion task on hold."""
    done = await made.evidence("2")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["case"]["kind"] == "erasure" and doc["intake"]["requested_by"]["id"] == "U0ALICE"
    assert doc["approval"]["approved_by"]["id"] == "U0BOB"
    assert [(d["action"], d["by"]["id"]) for d in doc["approval"]["decisions"]] == [("approved", "U0BOB")]
    assert [t["task"] for t in doc["tasks"]] == [made.erasure_task]
    assert ERASURE_EMAIL not in done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
async def test_html_evidence_renders_the_facts_in_a_browser_self_contained_and_owner_only(
    made: Made, tmp_path: Path
) -> None:
    """The page a browser renders from the file states the case's facts, fetches nothing, and holds no email;
    the file is readable by its owner alone."""
    out = tmp_path / "case-1.html"
    done = await made.evidence("1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.lines == [f"evidence for request 1 written to {out} (html, readable by its owner alone)"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    page = out.read_text()
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"<(?:script|link|img|iframe|object|embed)\b|@import|url\(", page, re.IGNORECASE)
    assert "@media print" in page
    dom = rendered(out)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    for fact in (
        "Evidence: request 1 (retrieval)",
        made.task_id,
        COMPLETED,
        "link shown",
        "U0BOB",
        "U0ALICE",
        "deadline extended",
        "+45 days",
        "reminder sent",
        "closed",
        "chain was intact",
    ):
        assert fact in text, fact
    assert "Received via unknown" in text  # a record field nobody recorded
    for _, _, _, stored_hash in audit_rows(made.database, 1):
        assert stored_hash in text
    assert RETRIEVAL_EMAIL not in dom and made.link not in dom


async def test_reveal_shows_the_email_and_is_audited_in_the_log_and_the_file(made: Made, tmp_path: Path) -> None:
    """--reveal puts the shopper's email in the file; the reveal is an audit entry of the case, which the
    file lists with its hash, and the chain still holds."""
    database = tmp_path / "data-requests.db"
    shutil.copy(made.database, database)
    env = clean_env(DATABASE_PATH=str(database), ENCRYPTION_KEY=made.key)
    done = await run_bot("evidence", made.task_id, "--reveal", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["shopper"]["email"] == RETRIEVAL_EMAIL and doc["generated"]["email_revealed"] is True
    last = doc["audit"][-1]
    assert (
        last["action"] == "evidence exported"
        and last["actor"].startswith("cli:")
        and last["detail"] == "email revealed"
    )
    assert (last["id"], last["action"], last["prev_hash"], last["hash"]) == audit_rows(database, 1)[-1]
    verify = await run_bot("audit", "--verify", env=env, cwd=tmp_path)
    assert verify.returncode == 0 and verify.lines[0].endswith("entries, chain intact")


async def test_an_unknown_case_and_a_missing_database_are_refused(made: Made, tmp_path: Path) -> None:
    """No such request: exit 1 saying so; no database: exit 2 naming DATABASE_PATH."""
    unknown = await made.evidence("amzn1.no-such-task")
    assert unknown.returncode == 1 and "no request has the id or task id 'amzn1.no-such-task'" in unknown.stderr
    missing = await run_bot("evidence", "1", env=clean_env(DATABASE_PATH=str(tmp_path / "none.db")), cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("data-request-bot: DATABASE_PATH")


def rendered(page: Path) -> str:
    """The DOM a headless Chromium builds from ``page`` (offline: it may not fetch anything anyway)."""
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


async def test_a_compliance_officer_without_the_key_can_verify_and_get_the_masked_file(made: Made) -> None:
    """Neither `audit --verify` nor `evidence` without --reveal reads an email, so neither needs the key;
    --reveal without it is refused, naming the setting."""
    env = clean_env(DATABASE_PATH=str(made.database))  # no ENCRYPTION_KEY, and the bot had no key file
    verified = await run_bot("audit", "--verify", env=env, cwd=made.database.parent)
    assert verified.returncode == 0 and verified.lines[0].endswith("entries, chain intact"), verified.stderr
    masked = await run_bot("evidence", made.task_id, env=env, cwd=made.database.parent)
    assert masked.returncode == 0 and json.loads(masked.stdout)["shopper"]["email_masked"] == "e***@example.com"
    revealed = await run_bot("evidence", made.task_id, "--reveal", env=env, cwd=made.database.parent)
    assert revealed.returncode == 2 and "ENCRYPTION_KEY" in revealed.stderr
