"""Compliance operations: deadlines, reminders, closing, list, audit export, retention, App Home."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import buttons, slack_headers, text_of
from harness import SIGNING_SECRET, Harness, SettableClock, ack_text, envelope, eventually, running_bot
from processes import clean_env

from bot.admin import run_audit, run_purge
from handlers.buttons import CLOSE_ACTION
from store import EmailCipher, Store
from store._rows import append_audit

DAY = 86_400.0
COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"


async def completed(bot: Harness, email: str, *, user: str = "U0ALICE") -> tuple[str, dict, dict]:
    """A request whose task completed: (task id, thread parent, the reply with the buttons)."""
    task_id, parent = await bot.request(email, user=user)
    bot.prime.complete(task_id)
    await bot.relay(envelope(COMPLETED, task_id))
    return task_id, parent, await bot.download_reply(parent)


def close_button(reply: dict) -> dict:
    return {
        **reply,
        "blocks": [b for b in reply["blocks"] if b.get("type") == "actions"]
        and [
            {
                "type": "actions",
                "block_id": b["block_id"],
                "elements": [e for e in b["elements"] if e["action_id"] == CLOSE_ACTION],
            }
            for b in reply["blocks"]
            if b.get("type") == "actions"
        ],
    }


def reminders(bot: Harness, parent: dict) -> list[str]:
    return [text_of(p) for p in bot.replies(parent["ts"]) if "due" in text_of(p) and not buttons(p)]


async def test_jurisdiction_and_explicit_deadlines_set_the_due_date_shown_in_the_thread(tmp_path: Path) -> None:
    """gdpr is one calendar month, ccpa 45 days, --deadline N days, and the default RESPONSE_DEADLINE_DAYS."""
    clock = SettableClock(1_767_139_200.0)  # 2025-12-31 00:00 UTC: one month later is 31 January
    async with running_bot(tmp_path, clock=clock, response_deadline_days=20) as bot:
        for text, email in (
            ("a@example.com gdpr", "a@example.com"),
            ("b@example.com ccpa", "b@example.com"),
            ("c@example.com --deadline 10d", "c@example.com"),
            ("d@example.com", "d@example.com"),
        ):
            await bot.request(text, email=email)
        cases = {r.email_masked: r for r in await bot.runtime.store.cases.open()}
        assert cases["a***@example.com"].due_at == clock.now + 31 * DAY
        assert cases["a***@example.com"].deadline == "GDPR: one month"
        assert cases["b***@example.com"].due_at == clock.now + 45 * DAY
        assert cases["c***@example.com"].due_at == clock.now + 10 * DAY
        assert cases["d***@example.com"].deadline == "20 days, the default"
        assert "GDPR: one month" in json.dumps(bot.slack.updates())


async def test_bad_deadline_options_are_refused(bot: Harness) -> None:
    """A deadline that is not 1-365 days, or two deadlines at once, is answered and starts nothing."""
    for text in ("x@example.com --deadline 0d", "x@example.com --deadline soon", "x@example.com gdpr --deadline 9"):
        assert "Try `/data-request" in ack_text(await bot.slash(text))
    assert not bot.prime.starts()


async def test_reminders_come_at_seven_and_two_days_and_on_the_day_once_each(tmp_path: Path) -> None:
    """Each reminder is posted once in the thread, mentioning the requester, and survives a restart."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock) as bot:
        _, parent = await bot.request("late@example.com --deadline 10d", email="late@example.com")
        sender = bot.runtime.workers.reminders
        assert await sender.send_due() == 0
        clock.advance(3 * DAY + 1)  # 7 days before the due date
        assert await sender.send_due() == 1
        assert await sender.send_due() == 0
        await bot.slack.wait_for(lambda: len(reminders(bot, parent)) == 1)
        assert "<@U0ALICE>" in reminders(bot, parent)[0] and "7 days" in reminders(bot, parent)[0]
        await bot.crash()
        await bot.restart()
        clock.advance(5 * DAY)  # 2 days before
        assert await bot.runtime.workers.reminders.send_due() == 1
        clock.advance(2 * DAY)  # the due date
        assert await bot.runtime.workers.reminders.send_due() == 1
        assert await bot.runtime.workers.reminders.send_due() == 0
        said = await bot.slack.wait_for(lambda: reminders(bot, parent) if len(reminders(bot, parent)) == 3 else None)
        assert "2 days" in said[1] and "due today" in said[2]


async def test_after_downtime_only_the_most_urgent_reminder_is_posted(tmp_path: Path) -> None:
    """A bot that was down past two thresholds posts one reminder, not a burst of stale ones."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock) as bot:
        _, parent = await bot.request("gone@example.com --deadline 5d", email="gone@example.com")
        clock.advance(6 * DAY)
        assert await bot.runtime.workers.reminders.send_due() == 1
        said = await bot.slack.wait_for(lambda: reminders(bot, parent))
        assert "due today" in said[0]
        assert await bot.runtime.workers.reminders.send_due() == 0


async def test_closing_stops_reminders_and_updates_the_thread_and_twice_changes_nothing(tmp_path: Path) -> None:
    """Mark as sent to shopper records who and when, shows Closed, stops reminders; a second press is a no-op."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock) as bot:
        _, _, reply = await completed(bot, "close@example.com")
        await bot.click(close_button(reply), user="U0BOB")
        ack = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0BOB")[0])
        assert "marked as answered" in text_of(ack)
        await bot.slack.wait_for(lambda: [u for u in bot.slack.updates() if "Closed" in json.dumps(u)])
        await bot.click(close_button(reply), user="U0ALICE")
        again = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE")[0])
        assert "already closed by <@U0BOB>" in text_of(again)
        clock.advance(40 * DAY)
        assert await bot.runtime.workers.reminders.send_due() == 0
        closes = [e for e in await bot.runtime.store.audit.entries() if e.action == "closed"]
        assert [(e.actor, e.request_id) for e in closes] == [("U0BOB", 1)]


async def test_a_user_who_is_not_allowed_cannot_close(bot: Harness) -> None:
    """Closing is for allowed users: anyone else is refused and the refusal is audited."""
    _, _, reply = await completed(bot, "noclose@example.com")
    await bot.click(close_button(reply), user="U0MALLORY")
    refusal = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0MALLORY")[0])
    assert "not allowed" in text_of(refusal)
    assert (await bot.runtime.store.cases.open())[0].closed_at is None
    assert any(e.actor == "U0MALLORY" and "close" in e.detail for e in await bot.runtime.store.audit.entries())


async def test_list_shows_my_open_requests_and_list_all_the_teams(bot: Harness) -> None:
    """`list` is the asker's own open cases; `list all` everyone's; closed cases drop out."""
    await bot.request("mine@example.com", user="U0ALICE")
    await bot.request("theirs@example.com", user="U0BOB")
    await bot.slash("list", user="U0ALICE")
    mine = text_of(await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE")[0]))
    assert "m***@example.com" in mine and "t***@example.com" not in mine
    await bot.slash("list all", user="U0ALICE")
    team = text_of(await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE")[1]))
    assert "m***@example.com" in team and "t***@example.com" in team


async def test_audit_export_masks_emails_unless_revealed_and_records_the_reveal(bot: Harness) -> None:
    """The CSV names every action with masked emails; --reveal shows them and is itself audited."""
    _, _, reply = await completed(bot, "export@example.com")
    await bot.click(reply, user="U0ALICE")
    await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE"))
    await eventually(lambda: _has(bot, "link shown"))
    env = {"DATABASE_PATH": str(bot.settings.database_path), "ENCRYPTION_KEY": key_of(bot)}
    out = io.StringIO()
    assert await run_audit(env, since=0, fmt="csv", reveal=False, out=out) == 0
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["action"] for r in rows][:3] == ["requested", "task started", "completed"]
    assert {r["shopper"] for r in rows} == {"e***@example.com"}
    assert "export@example.com" not in out.getvalue()
    revealed = io.StringIO()
    await run_audit(env, since=0, fmt="jsonl", reveal=True, out=revealed)
    assert all(json.loads(line)["shopper"] == "export@example.com" for line in revealed.getvalue().splitlines())
    assert (await bot.runtime.store.audit.entries())[-1].action == "audit exported"


def key_of(bot: Harness) -> str:
    """The running bot's ENCRYPTION_KEY, as an operator would set it for the offline commands."""
    assert bot.settings.encryption_key is not None
    return base64.urlsafe_b64encode(bot.settings.encryption_key).decode()


async def _has(bot: Harness, action: str) -> bool:
    return any(e.action == action for e in await bot.runtime.store.audit.entries())


async def test_the_database_refuses_to_change_or_delete_audit_rows(bot: Harness) -> None:
    """Append-only is enforced by the database itself, not by convention."""
    import sqlite3

    await bot.request("append@example.com")
    with sqlite3.connect(bot.settings.database_path) as db:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit SET actor = 'someone else'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit")


async def test_retention_erases_the_email_of_old_closed_cases_and_keeps_the_audit_trail(tmp_path: Path) -> None:
    """After RETENTION_DAYS the email is gone from the database; task id, dates and actions remain."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock, retention_days=30) as bot:
        task_id, _, reply = await completed(bot, "forget.me@example.com")
        await bot.click(close_button(reply))
        await eventually(lambda: _has(bot, "closed"))
        _, _ = await bot.request("still.open@example.com")
        assert await bot.runtime.workers.retention.purge() == []
        clock.advance(31 * DAY)
        purged = await bot.runtime.workers.retention.purge()
        assert purged == [1]
        request = await bot.runtime.store.requests.get(1)
        assert request is not None and request.email_masked is None and request.task_id == task_id
        assert await bot.runtime.store.requests.reveal_email(1) is None
        assert await bot.runtime.store.requests.for_email("forget.me@example.com") == []
        actions = [e.action for e in await bot.runtime.store.audit.entries(request_id=1)]
        assert actions[0] == "requested" and actions[-1] == "purged" and "closed" in actions
        stored = b"".join(p.read_bytes() for p in tmp_path.glob("data-requests.db*"))
        assert b"f***@example.com" not in stored


async def test_a_write_right_after_a_wal_checkpoint_commits(tmp_path: Path) -> None:
    """The store's checkpoint (after a retention purge, after a key rotation) leaves no statement running.

    Its result row was left unread, so SQLite kept the statement in progress and refused the next
    transaction ("SQL statements in progress") whenever that came before the cursor was collected.
    """
    store = await Store.open(tmp_path / "data-requests.db", cipher=EmailCipher(os.urandom(32)))
    try:
        fields = {"requester": "U0ALICE", "channel": "C0CASES", "due_at": 4e9, "deadline": "30 days"}
        await store.requests.create(kind="retrieval", email="a@example.com", email_masked="a***", **fields)
        await store._database.checkpoint()
        created, _ = await store.requests.create(kind="retrieval", email="b@example.com", email_masked="b***", **fields)
        assert created.id == 2
    finally:
        await store.close()


async def test_purge_command_uses_retention_days(bot: Harness) -> None:
    """`data-request-bot purge` erases nothing that is recent, and says so."""
    await completed(bot, "recent@example.com")
    out = io.StringIO()
    env = {"DATABASE_PATH": str(bot.settings.database_path), "RETENTION_DAYS": "1", "ENCRYPTION_KEY": key_of(bot)}
    assert await run_purge(env, out=out) == 0
    assert "0 request(s)" in out.getvalue()


async def test_home_tab_shows_my_and_the_teams_open_requests_and_refreshes_on_change(bot: Harness) -> None:
    """Opening Home publishes the viewer's cases (overdue first) and the team's; a change republishes it."""
    await bot.request("home@example.com", user="U0BOB")
    await bot.runtime.workers.home.opened("U0ALICE")
    view = (await bot.slack.wait_for(lambda: bot.slack.calls_to("views.publish")))[-1].args["view"]
    shown = text_of(view)
    assert "You have no open requests" in shown and "h***@example.com" in shown
    before = len(bot.slack.calls_to("views.publish"))
    await completed(bot, "second@example.com")
    await bot.slack.wait_for(lambda: len(bot.slack.calls_to("views.publish")) > before, timeout=5)


async def test_home_opened_event_is_signed_and_routed(bot: Harness) -> None:
    """Slack's app_home_opened event reaches the Home tab through /slack/events."""
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0TEST",
            "api_app_id": "A0TEST",
            "event": {"type": "app_home_opened", "user": "U0ALICE", "tab": "home", "channel": "D0"},
            "event_id": "Ev" + os.urandom(4).hex(),
            "event_time": 1,
        }
    )
    response = await bot.http.post(
        bot.url + "/slack/events",
        content=body,
        headers=slack_headers(body, SIGNING_SECRET, content_type="application/json"),
    )
    assert response.status_code == 200
    await bot.slack.wait_for(lambda: bot.slack.calls_to("views.publish"))


async def test_extend_pushes_the_due_date_back_restarts_reminders_and_is_audited(tmp_path: Path) -> None:
    """`extend <email> 45d` moves the due date, shows it in the thread, and reminders count from the new date."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock) as bot:
        _, parent = await bot.request("slow@example.com --deadline 10d", email="slow@example.com")
        clock.advance(4 * DAY)
        assert await bot.runtime.workers.reminders.send_due() == 1  # the 7-day reminder
        await bot.slash("extend slow@example.com 45d", user="U0BOB")
        said = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0BOB")[0])
        assert "Extended by 45 days" in text_of(said)
        case = (await bot.runtime.store.cases.open())[0]
        assert case.due_at == pytest.approx(case.created_at + 55 * DAY)
        assert "extended by 45 days" in case.deadline
        await bot.slack.wait_for(lambda: [u for u in bot.slack.updates() if "extended by 45 days" in json.dumps(u)])
        assert await bot.runtime.workers.reminders.send_due() == 0
        clock.advance(45 * DAY)  # 6 days before the new date
        assert await bot.runtime.workers.reminders.send_due() == 1
        assert any(
            e.action == "deadline extended" and e.actor == "U0BOB" for e in await bot.runtime.store.audit.entries()
        )
        assert "7 days" in reminders(bot, parent)[-1] if len(reminders(bot, parent)) == 2 else True


async def test_extend_is_refused_for_users_not_allowed_and_for_bad_input(bot: Harness) -> None:
    """Only allowed users may extend; a missing or odd number of days is answered at once."""
    await bot.request("keep@example.com")
    assert "Try `/data-request" in ack_text(await bot.slash("extend keep@example.com"))
    assert "Try `/data-request" in ack_text(await bot.slash("extend keep@example.com soon"))
    await bot.slash("extend keep@example.com 10d", user="U0MALLORY")
    refusal = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0MALLORY")[0])
    assert "not allowed" in text_of(refusal)


async def test_old_events_are_forgotten_but_recent_ones_still_deduplicate(tmp_path: Path) -> None:
    """Processed or orphaned events older than a week leave the inbox; a week-old re-delivery is then new again."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock) as bot:
        _, parent, _ = await completed(bot, "old@example.com")
        orphan = envelope(COMPLETED, "a-task-that-is-not-ours")
        assert (await bot.relay(orphan)).json()["status"] == "stored"
        clock.advance(8 * DAY)
        await bot.runtime.workers.retention.purge()
        assert (await bot.relay(orphan)).json()["status"] == "stored"  # forgotten, so stored anew
        assert len([p for p in bot.replies(parent["ts"]) if buttons(p)]) == 1


async def test_audit_records_and_exports_each_actors_slack_name_beside_the_id(bot: Harness) -> None:
    """The name Slack sent with the command or click is stored with the entry and exported in its own column."""
    _, _, reply = await completed(bot, "names@example.com")
    await bot.click(reply, user="U0BOB")
    await eventually(lambda: _has(bot, "link shown"))
    entries = {e.action: e for e in await bot.runtime.store.audit.entries()}
    assert (entries["requested"].actor, entries["requested"].actor_name) == ("U0ALICE", "u0alice")
    assert (entries["link shown"].actor, entries["link shown"].actor_name) == ("U0BOB", "u0bob")
    assert entries["task started"].actor_name == ""  # Amazon, not a person
    out = io.StringIO()
    assert (
        await run_audit(
            {"DATABASE_PATH": str(bot.settings.database_path), "ENCRYPTION_KEY": key_of(bot)},
            since=0,
            fmt="csv",
            reveal=False,
            out=out,
        )
        == 0
    )
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert ("U0BOB", "u0bob", "link shown") in {(r["actor"], r["actor_name"], r["action"]) for r in rows}


def test_audit_into_head_ends_without_a_broken_pipe_traceback(tmp_path: Path) -> None:
    """`audit | head -n 3`: the reader leaves early; the command stops quietly (no traceback, no 'Exception
    ignored'), like `yes | head`."""
    database = tmp_path / "requests.db"

    async def fill() -> None:
        store = await Store.open(database, cipher=EmailCipher(os.urandom(32)))
        for start in range(0, 5000, 1000):
            await store._database.run(
                lambda db, start=start: [
                    append_audit(db, at=1.0e9 + i, request_id=None, actor="U0ALICE", action="status viewed")
                    for i in range(start, start + 1000)
                ]
            )
        await store.close()

    asyncio.run(fill())
    done = subprocess.run(
        f"{shlex.quote(sys.executable)} -m bot audit | head -n 3",
        shell=True,
        env=clean_env(DATABASE_PATH=str(database)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.splitlines()[0] == "time,request,task,actor,actor_name,action,detail,shopper,kind"
    assert len(done.stdout.splitlines()) == 3
    assert done.stderr == ""
