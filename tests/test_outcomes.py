"""Closing records the nature of the answer (complied, in part, no data, denied with a reason), shown in the thread,
``status`` and the audit; retention erases emails and staff's notes, never the record's fields."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from erasures import APPROVE_ACTION, approve, ask, latest, request_of, with_button
from fakes import buttons, text_of
from harness import Harness, SettableClock, ack_text, envelope, eventually, running_bot

from handlers.buttons import CLOSE_ACTION, DENY_ACTION
from handlers.kinds.retrieval.rules import DOWNLOAD_ACTION
from store import RequestStatus

ON_BOTH_BACKENDS = True  # each ``bot`` test runs on SQLite and on PostgreSQL (tests/conftest.py)

COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"
FAILED = "PERSONAL_DATA_RETRIEVAL_TASK_FAILED"
DAY = 86_400.0


def told(bot: Harness, user: str, words: str) -> list[dict[str, Any]]:
    return [m for m in bot.slack.ephemerals_to(user) if words in text_of(m)]


async def ended(bot: Harness, email: str, event: str = COMPLETED) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A retrieval whose task ended (completed, or failed with no shopper found): task id, parent, last reply."""
    task_id, parent = await bot.request(email)
    if event == COMPLETED:
        bot.prime.complete(task_id)
    else:
        bot.prime.fail(task_id)  # DATA_SUBJECT_NOT_FOUND
    await bot.relay(envelope(event, task_id))
    reply = await bot.slack.wait_for(lambda: next((p for p in bot.replies(parent["ts"]) if buttons(p)), None))
    return task_id, parent, reply


async def outcome_of(bot: Harness, task_id: str) -> tuple[str | None, str | None]:
    request = await bot.runtime.store.requests.for_task(task_id)
    assert request is not None
    return request.outcome, request.denial_reason


async def test_mark_as_sent_records_complied_and_close_partly_complied_in_part(bot: Harness) -> None:
    """The button records ``complied``; ``close <task> --partly`` records ``complied in part``; the thread, the
    answer, ``status`` and the audit say which."""
    whole, _, reply = await ended(bot, "whole@example.com")
    await bot.press(reply, CLOSE_ACTION)
    await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "marked as answered"))
    assert await outcome_of(bot, whole) == ("complied", None)

    part, parent, _ = await ended(bot, "part@example.com")
    assert ack_text(await bot.slash(f"close {part} --partly", user="U0BOB")) == ""
    await bot.slack.wait_for(lambda: told(bot, "U0BOB", "(complied in part)"))
    assert await outcome_of(bot, part) == ("complied in part", None)
    await bot.slack.wait_for(lambda: "(complied in part)" in text_of(latest(bot, parent["ts"])) or None)
    await bot.slash(f"status {part}")
    (status,) = await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "answer: complied in part"))
    assert "closed by <@U0BOB>" in text_of(status)
    closes = [(e.actor, e.detail) for e in await bot.runtime.store.audit.entries() if e.action == "closed"]
    assert closes == [
        ("U0ALICE", "answer sent to shopper: complied"),
        ("U0BOB", "answer sent to shopper: complied in part"),
    ]
    assert "takes an email or task id" in ack_text(await bot.slash("close --partly"))


async def test_a_task_that_found_no_shopper_closes_as_no_data(bot: Harness) -> None:
    """Amazon's DATA_SUBJECT_NOT_FOUND, answered with **Mark as answered**, is recorded as ``no data``."""
    task_id, parent, reply = await ended(bot, "nobody@example.com", FAILED)
    assert "DATA_SUBJECT_NOT_FOUND" in text_of(reply)
    await bot.press(reply, CLOSE_ACTION)
    await bot.slack.wait_for(lambda: "(no data)" in text_of(latest(bot, parent["ts"])) or None)
    assert await outcome_of(bot, task_id) == ("no data", None)


async def test_denying_an_erasure_before_approval_closes_it_and_nothing_reaches_amazon(bot: Harness) -> None:
    """**Deny** opens a form: no reason, or ``other`` without a note, is answered beside the field; a reason ends
    the erasure unstarted and closed (who, why in the thread; the note escaped, sealed, never in the channel)."""
    parent = await ask(bot, "delete erase.me@example.com")
    first = with_button(bot, parent["ts"], DENY_ACTION)
    assert first is not None
    await bot.press(first, DENY_ACTION, user="U0BOB")
    opened = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    view = opened[0].args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == "record_deny"

    answer = await bot.submit(view, {"note": {"note": ""}}, user="U0BOB")
    assert list(answer.json()["errors"]) == ["reason"]
    answer = await bot.submit(view, {"note": {"note": " "}}, user="U0BOB", selected={"reason": {"reason": "other"}})
    assert list(answer.json()["errors"]) == ["note"]
    note = "legal hold <@U0ALICE> <https://evil.example|click>"
    answer = await bot.submit(view, {"note": {"note": note}}, user="U0BOB", selected={"reason": {"reason": "exempt"}})
    assert answer.status_code == 200 and not answer.content.strip()

    await bot.slack.wait_for(lambda: "Denied by <@U0BOB>" in text_of(latest(bot, parent["ts"])) or None)
    request = await request_of(bot, parent)
    assert (request.status, request.closed_by, request.outcome, request.denial_reason) == (
        RequestStatus.REJECTED,
        "U0BOB",
        "denied",
        "exempt",
    )
    assert not buttons(latest(bot, parent["ts"]))
    said = await bot.slack.wait_for(
        lambda: [p for p in bot.replies(parent["ts"]) if "denied this request" in text_of(p)]
    )
    assert "Nothing was sent to Buy with Prime" in text_of(said[0])
    assert "legal hold" not in bot.slack.public_text() and "evil.example" not in bot.slack.public_text()
    assert (await bot.runtime.store.verdicts.notes(request.id)).outcome == note
    denials = [(e.actor, e.detail) for e in await bot.runtime.store.audit.entries() if e.action == "denied"]
    assert denials == [("U0BOB", "exempt")]

    await bot.press(with_button(bot, parent["ts"], APPROVE_ACTION) or {}, APPROVE_ACTION, user="U0BOB")
    await bot.slack.wait_for(lambda: told(bot, "U0BOB", "Nothing changed"))
    assert bot.prime.deletion_starts() == []
    await bot.slash("status erase.me@example.com")
    (status,) = await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "Outcome note"))
    shown = text_of(status)
    assert "answer: denied (exempt)" in shown and "&lt;@U0ALICE&gt;" in shown and "<https://evil" not in shown


async def test_deny_command_closes_a_running_retrieval_and_its_data_is_never_offered(bot: Harness) -> None:
    """``deny <email> unverifiable`` closes the case while Amazon works; when the task completes the thread says the
    case was denied (no Download), and a Download click is refused."""
    task_id, parent = await bot.request("denied@example.com")
    assert ack_text(await bot.slash("deny denied@example.com unverifiable --note no answer to two emails")) == ""
    await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "Denied: the case"))
    assert await outcome_of(bot, task_id) == ("denied", "unverifiable")
    await bot.slack.wait_for(lambda: "Denied by <@U0ALICE>" in text_of(latest(bot, parent["ts"])) or None)

    bot.prime.complete(task_id)
    await bot.relay(envelope(COMPLETED, task_id))
    done = await bot.slack.wait_for(lambda: [p for p in bot.replies(parent["ts"]) if "was denied" in text_of(p)])
    assert not buttons(done[0])
    request = await bot.runtime.store.requests.for_task(task_id)
    assert request is not None and request.status is RequestStatus.COMPLETED and request.closed_by == "U0ALICE"
    stale = {"ts": parent["ts"], "blocks": [{"type": "actions", "block_id": "x", "elements": [
        {"type": "button", "action_id": DOWNLOAD_ACTION, "value": f"{request.id}.{request.ref}",
         "text": {"type": "plain_text", "text": "Download"}}]}]}  # fmt: skip
    await bot.press(stale, DOWNLOAD_ACTION)
    await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "was denied, so nothing is to be downloaded"))
    assert "X-Amz-Signature" not in json.dumps(bot.slack.ephemerals_to("U0ALICE"))


async def test_a_deny_command_that_cannot_be_kept_is_answered_at_once(bot: Harness) -> None:
    """An unknown reason lists the reasons; ``other`` needs a note; someone not allowed is refused and audited."""
    answer = ack_text(await bot.slash("deny jane@example.com because"))
    assert "`unverifiable`, `exempt`, `withdrawn`, `duplicate`, `unfounded`, `other`" in answer
    assert "`other` needs one" in ack_text(await bot.slash("deny jane@example.com other"))
    task_id, _ = await bot.request("jane@example.com")
    await bot.slash(f"deny {task_id} duplicate", user="U0MALLORY")
    await bot.slack.wait_for(lambda: told(bot, "U0MALLORY", "not allowed"))
    assert await outcome_of(bot, task_id) == (None, None)


async def test_an_erasure_on_hold_is_not_denied_but_cancelled_first(bot: Harness) -> None:
    """While Amazon holds the deletion, ``deny`` says to cancel it first, and the case stays open."""
    parent = await ask(bot, "delete held@example.com --hold 10d")
    task = await approve(bot, parent, "held@example.com")
    await bot.slash(f"deny {task.task_id} withdrawn")
    await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "Cancel deletion"))
    request = await request_of(bot, parent)
    assert request.closed_at is None and request.outcome is None and request.status is RequestStatus.ON_HOLD
    assert DENY_ACTION not in json.dumps(latest(bot, parent["ts"]))


async def test_retention_erases_emails_and_notes_and_keeps_every_record_field(tmp_path: Path) -> None:
    """Past RETENTION_DAYS a denied and a complied case lose the email and staff's notes (sealed columns nulled,
    not in the file), and keep received, verified by, how and when, outcome, denial reason, who closed it."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock, retention_days=30) as bot:
        answered, _, reply = await ended(bot, "answered@example.com")
        await bot.slash(f"verify {answered} document --note driving licence seen by video")
        await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "Recorded"))
        await bot.press(reply, CLOSE_ACTION)
        await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "marked as answered"))
        refused, _, _ = await ended(bot, "refused@example.com")  # an unfinished task is kept until it ends
        await bot.slash(f"deny {refused} other --note asked on behalf of a stranger")
        await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "Denied: the case"))
        before = {task: await bot.runtime.store.requests.for_task(task) for task in (answered, refused)}

        clock.advance(31 * DAY)
        assert sorted(await bot.runtime.workers.retention.purge()) == sorted(r.id for r in before.values() if r)
        await eventually(lambda: _purged(bot, answered))
        for task, was in before.items():
            now = await bot.runtime.store.requests.for_task(task)
            assert was is not None and now is not None and now.email_masked is None and now.purged_at is not None
            kept = ("received_on", "verified_by", "verified_how", "verified_at", "outcome", "denial_reason")
            assert {f: getattr(now, f) for f in kept} == {f: getattr(was, f) for f in kept}
            assert (now.closed_at, now.closed_by, now.created_at) == (was.closed_at, was.closed_by, was.created_at)
            notes = await bot.runtime.store.verdicts.notes(now.id)
            assert notes.verified is None and notes.outcome is None
        assert (await bot.runtime.store.requests.for_task(answered)).verified_how == "document"  # type: ignore[union-attr]
        assert (await bot.runtime.store.requests.for_task(refused)).denial_reason == "other"  # type: ignore[union-attr]
        with sqlite3.connect(bot.settings.database_path) as db:
            sealed = db.execute(
                "SELECT COUNT(*) FROM requests"
                " WHERE verified_note_sealed IS NOT NULL OR outcome_note_sealed IS NOT NULL"
            ).fetchone()
        assert sealed == (0,)


async def _purged(bot: Harness, task_id: str) -> bool:
    request = await bot.runtime.store.requests.for_task(task_id)
    return request is not None and request.purged_at is not None


async def test_home_lists_the_viewers_answered_cases_with_their_outcome(bot: Harness) -> None:
    """The Home tab shows the viewer's last answered cases, each with the nature of its answer, newest first."""
    _, _, reply = await ended(bot, "whole@example.com")
    await bot.press(reply, CLOSE_ACTION)
    await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "marked as answered"))
    await ask(bot, "delete twice@example.com")
    await bot.slash("deny twice@example.com duplicate")
    await bot.slack.wait_for(lambda: told(bot, "U0ALICE", "Denied: the case"))
    await bot.runtime.workers.home.opened("U0ALICE")
    view = (await bot.slack.wait_for(lambda: bot.slack.calls_to("views.publish")))[-1].args["view"]
    shown = text_of(view)
    answered = shown.split("Your recently answered requests", 1)[1]
    assert answered.index("denied (duplicate)") < answered.index("complied")
    assert "t***@example.com" in answered and "w***@example.com" in answered
