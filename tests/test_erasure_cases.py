"""An erasure is a case like any other: duplicates per kind, reminders while nobody approves, status, lists,
the Home tab, the audit export and retention name its kind; events of both kinds land on the right thread."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import logging
from pathlib import Path

import pytest
from erasures import DELETED, REJECT_ACTION, approve, ask, latest, request_of, with_button
from fakes import buttons, text_of
from harness import Harness, SettableClock, envelope, eventually, running_bot

from bot.admin import run_audit
from store import RequestStatus

DAY = 86_400.0
EMAIL = "erase.me@example.com"
RETRIEVED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"
DELETION_TASK = "personalDataDeletionTask"


def key_of(bot: Harness) -> str:
    """The running bot's ENCRYPTION_KEY, as an operator sets it for the offline commands."""
    assert bot.settings.encryption_key is not None
    return base64.b64encode(bot.settings.encryption_key).decode()


async def test_duplicates_are_per_kind(bot: Harness) -> None:
    """A retrieval and an erasure for one shopper are both opened; a second erasure is pointed to the open one,
    changes nothing and is audited."""
    await bot.request(EMAIL)
    parent = await ask(bot, f"delete {EMAIL}")
    assert len(bot.parents()) == 2
    await bot.slash(f"delete {EMAIL} --reason again", user="U0BOB")
    told = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0BOB"))
    said = text_of(told[-1])
    assert "An erasure for `e***@example.com` is already open" in said and "waiting for approval" in said
    assert parent["ts"].replace(".", "") in said  # the permalink of its thread
    assert len(bot.parents()) == 2 and bot.prime.deletion_starts() == []
    refused = [(e.actor, e.detail) for e in await bot.runtime.store.audit.entries() if e.action == "refused"]
    assert refused == [("U0BOB", "erasure: duplicate of an open or recent request")]


async def test_an_approval_nobody_gives_is_reminded_from_the_request_date(tmp_path: Path) -> None:
    """Seven days before the due date (counted from the request, not from any approval) the thread says the
    erasure still waits for approval; once it is rejected (closed), no reminder comes any more."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock, response_deadline_days=30) as bot:
        parent = await ask(bot, f"delete {EMAIL}")
        reminders = bot.runtime.workers.reminders
        clock.advance(22 * DAY)
        assert await reminders.send_due() == 0
        clock.advance(1 * DAY + 60)
        assert await reminders.send_due() == 1
        reply = await bot.slack.wait_for(
            lambda: [r for r in bot.replies(parent["ts"]) if "waits for another person's approval" in text_of(r)]
        )
        assert "<@U0ALICE>" in text_of(reply[0]) and "in 7 days" in text_of(reply[0])

        await bot.press(with_button(bot, parent["ts"], REJECT_ACTION) or {}, REJECT_ACTION, user="U0BOB")
        view = (await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open")))[0].args["view"]
        view = json.loads(view) if isinstance(view, str) else view
        await bot.submit(view, {"reason": {"reason": "not ours"}}, user="U0BOB")
        request = await request_of(bot, parent)
        await eventually(lambda: _status(bot, request.id, RequestStatus.REJECTED))
        clock.advance(7 * DAY)
        assert await reminders.send_due() == 0


async def _status(bot: Harness, request_id: int, status: RequestStatus) -> bool:
    request = await bot.runtime.store.requests.get(request_id)
    return request is not None and request.status is status


async def test_status_list_home_audit_and_retention_name_the_kind(tmp_path: Path) -> None:
    """status answers for the newest request of either kind and says which; list all and the Home tab show
    "erasure" and "retrieval"; the audit export has a kind column; retention erases the reason and the email
    of a finished erasure and keeps its hold."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock, retention_days=30) as bot:
        await bot.request("kept@example.com")
        parent = await ask(bot, f"delete {EMAIL} --hold 0d --reason shopper wrote on Monday")
        task = await approve(bot, parent, EMAIL)

        await bot.slash(f"status {EMAIL}")
        status = text_of((await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE")))[-1])
        assert "Shopper data erasure for `e***@example.com`" in status and "Deleting" in status
        await bot.slash("list all")
        listed = text_of(
            (
                await bot.slack.wait_for(
                    lambda: [m for m in bot.slack.ephemerals_to("U0ALICE") if "open data" in text_of(m)]
                )
            )[-1]
        )
        assert "erasure · `e***@example.com`" in listed and "retrieval · `k***@example.com`" in listed
        await bot.runtime.workers.home.opened("U0BOB")
        view = text_of((await bot.slack.wait_for(lambda: bot.slack.calls_to("views.publish")))[-1].args["view"])
        assert "erasure · `e***@example.com`" in view

        env = {"DATABASE_PATH": str(bot.settings.database_path), "ENCRYPTION_KEY": key_of(bot)}
        out = io.StringIO()
        assert await run_audit(env, since=0, fmt="csv", reveal=False, out=out) == 0
        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
        kinds = {(r["action"], r["kind"]) for r in rows if r["request"]}
        assert ("approved", "erasure") in kinds and ("requested", "retrieval") in kinds

        bot.prime.complete(task.task_id)
        await bot.relay(envelope(DELETED, task.task_id, task_field=DELETION_TASK))
        request = await request_of(bot, parent)
        await eventually(lambda: _status(bot, request.id, RequestStatus.COMPLETED))
        clock.advance(31 * DAY)
        assert request.id in await bot.runtime.workers.retention.purge()
        purged = await bot.runtime.store.requests.get(request.id)
        assert purged is not None and purged.email_masked is None and purged.task_id == task.task_id
        assert dict(purged.params) == {"hold_days": "0"}
        stored = b"".join(p.read_bytes() for p in tmp_path.glob("data-requests.db*"))
        assert b"shopper wrote on Monday" not in stored


async def test_events_for_both_kinds_arrive_in_any_order(bot: Harness) -> None:
    """A retrieval and an erasure for one shopper end by events sent reversed and twice: each thread ends once,
    in its own kind's words; each event is stored once."""
    retrieval_task, retrieval_parent = await bot.request(EMAIL)
    parent = await ask(bot, f"delete {EMAIL} --hold 0d")
    task = await approve(bot, parent, EMAIL)
    bot.prime.complete(task.task_id)
    bot.prime.complete(retrieval_task)
    deleted = envelope(DELETED, task.task_id, task_field=DELETION_TASK)
    retrieved = envelope(RETRIEVED, retrieval_task)
    for event in (deleted, retrieved, deleted, retrieved):
        assert (await bot.relay(event)).status_code == 200
    await bot.download_reply(retrieval_parent)
    await bot.slack.wait_for(lambda: "Deleted" in text_of(latest(bot, parent["ts"])))
    done = [r for r in bot.replies(parent["ts"]) if "deleted the shopper's data" in text_of(r)]
    assert len(done) == 1 and not [r for r in bot.replies(parent["ts"]) if "Download" in text_of(r)]
    assert len([r for r in bot.replies(retrieval_parent["ts"]) if buttons(r)]) == 1
    received = [e for e in await bot.runtime.store.audit.entries() if e.action == "event received"]
    assert len(received) == 2


async def test_a_deletion_event_before_the_start_answer_is_applied_once_the_task_is_known(bot: Harness) -> None:
    """The deletion completes, and its event arrives, while Amazon's answer to the start is still on its way:
    the event waits in the inbox and ends the thread once the task id is known."""
    parent = await ask(bot, f"delete {EMAIL} --hold 0d")
    gate = asyncio.Event()
    bot.prime.start_gate = gate
    await bot.press(with_button(bot, parent["ts"], "erasure_approve") or {}, "erasure_approve", user="U0BOB")
    await bot.prime.wait_for(lambda: bot.prime.deletion_tasks())
    task_id = bot.prime.deletion_tasks()[0]
    bot.prime.complete(task_id)
    assert (await bot.relay(envelope(DELETED, task_id, task_field=DELETION_TASK))).status_code == 200
    gate.set()
    await bot.slack.wait_for(lambda: "Deleted" in text_of(latest(bot, parent["ts"])))


async def test_no_email_or_reason_with_an_email_in_logs_channel_or_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The whole flow at DEBUG: the shopper's email is in no log line, no channel message and not in the clear in
    the database; a reason holding an email is refused before anything is stored."""
    caplog.set_level(logging.DEBUG)
    async with running_bot(tmp_path) as bot:
        refused = await bot.slash(f"delete {EMAIL} --reason she wrote from {EMAIL}")
        assert "without the shopper's email" in refused.text and bot.parents() == []
        parent = await ask(bot, f"delete {EMAIL} --reason shopper asked")
        task = await approve(bot, parent, EMAIL)
        bot.prime.complete(task.task_id)
        await bot.relay(envelope(DELETED, task.task_id, task_field=DELETION_TASK))
        await bot.slack.wait_for(lambda: "Deleted" in text_of(latest(bot, parent["ts"])))
        assert EMAIL not in bot.slack.public_text()
    assert not [r for r in caplog.records if EMAIL in r.getMessage()]
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("data-requests.db*"))
    assert EMAIL.encode() not in stored
