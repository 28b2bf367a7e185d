"""An erasure waits for a second allowed person: nothing reaches Amazon before; Approve starts it; Reject ends it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from erasures import APPROVE_ACTION, CANCEL_ACTION, REJECT_ACTION, approve, ask, latest, request_of, with_button
from fakes import buttons, text_of
from harness import Harness, eventually, running_bot

from handlers.kinds.erasure.rules import REASON_LIMIT
from handlers.kinds.erasure.texts import REASON_SHOWN
from store import RequestStatus

ON_BOTH_BACKENDS = True  # each ``bot`` test runs on SQLite and on PostgreSQL (tests/conftest.py)

EMAIL = "erase.me@example.com"


async def test_nothing_reaches_amazon_before_a_second_allowed_person_approves(bot: Harness) -> None:
    """The thread asks for approval with the email masked; the requester's and an outsider's clicks are refused,
    told to the clicker alone and audited, and no deletion is started."""
    parent = await ask(bot, f"delete {EMAIL} --reason shopper asked by email")
    shown = text_of(latest(bot, parent["ts"]))
    assert EMAIL not in bot.slack.public_text() and "e***@example.com" in shown
    assert "Waiting for approval" in shown and "shopper asked by email" in shown
    first = with_button(bot, parent["ts"], APPROVE_ACTION)
    assert first is not None
    assert [b["text"]["text"] for b in buttons(first)] == ["Approve", "Reject", "Verify identity", "Deny"]

    await bot.press(first, APPROVE_ACTION, user="U0ALICE")
    own = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE"))
    assert "another allowed person must approve" in text_of(own[-1])
    await bot.press(first, APPROVE_ACTION, user="U0MALLORY")
    outsider = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0MALLORY"))
    assert "not allowed" in text_of(outsider[-1])

    request = await request_of(bot, parent)
    assert request.status is RequestStatus.AWAITING_APPROVAL and request.approved_by is None
    assert bot.prime.deletion_starts() == []
    refusals = [(e.actor, e.detail) for e in await bot.runtime.store.audit.entries() if e.action == "refused"]
    assert refusals == [("U0ALICE", "approve: own request"), ("U0MALLORY", "approve: not allowed")]


async def test_approval_starts_one_task_with_the_hold_setting_and_the_reason(tmp_path: Path) -> None:
    """Bob's approval sends one start with DELETION_HOLD_DAYS (here 7) and every word after --reason; the thread
    names the task, says it is on hold until a date, offers Cancel deletion, and the audit log says who approved."""
    async with running_bot(tmp_path, deletion_hold_days=7) as bot:
        parent = await ask(bot, f"delete {EMAIL} gdpr --reason shopper asked --by email")
        task = await approve(bot, parent, EMAIL)
        start = bot.prime.deletion_starts()[0]
        assert start["variables"]["input"]["holdingPeriod"] == 7
        assert start["variables"]["input"]["reason"] == "shopper asked --by email"
        assert EMAIL not in start["query"] and "dataSubject" not in json.dumps(bot.prime.deletion_queries())
        assert task.status == "ON_HOLD" and len(bot.prime.deletion_tasks()) == 1
        await bot.slack.wait_for(lambda: with_button(bot, parent["ts"], CANCEL_ACTION))
        now = latest(bot, parent["ts"])
        assert "On hold until" in text_of(now) and "<@U0BOB>" in text_of(now)
        assert [b["text"]["text"] for b in buttons(now)] == ["Cancel deletion", "Verify identity"]
        entries = await bot.runtime.store.audit.entries()
        assert [(e.action, e.actor) for e in entries][:3] == [
            ("requested", "U0ALICE"),
            ("approved", "U0BOB"),
            ("task started", "amazon"),
        ]
        assert entries[0].detail == "erasure; hold 7 days" and entries[2].detail.endswith("hold 7 days")
        request = await request_of(bot, parent)
        assert request.status is RequestStatus.ON_HOLD and request.hold_ends_at is not None
        assert request.hold_ends_at - request.created_at >= 7 * 86_400 - 60


async def test_hold_from_the_command_wins_and_zero_starts_the_deletion_at_once(bot: Harness) -> None:
    """--hold 30d reaches Amazon as 30; --hold 0d is valid and the task runs at once (no Cancel offered)."""
    held = await ask(bot, "delete held@example.com --hold 30d")
    await approve(bot, held, "held@example.com")
    now_ = await ask(bot, "delete now@example.com --hold 0d")
    task = await approve(bot, now_, "now@example.com")
    assert [s["variables"]["input"]["holdingPeriod"] for s in bot.prime.deletion_starts()] == [30, 0]
    assert task.status == "IN_PROGRESS"
    await bot.slack.wait_for(lambda: "no holding period" in text_of(latest(bot, now_["ts"])))
    assert with_button(bot, now_["ts"], CANCEL_ACTION) is None
    assert "reason" not in bot.prime.deletion_starts()[1]["variables"]["input"]


async def test_two_approvals_at_once_start_one_task(tmp_path: Path) -> None:
    """Bob and Carol click Approve together: one task, one approval audited, the second clicker told who did."""
    async with running_bot(tmp_path, allowed_users=frozenset({"U0ALICE", "U0BOB", "U0CAROL"})) as bot:
        await _two_approvals(bot)


async def _two_approvals(bot: Harness) -> None:
    parent = await ask(bot, f"delete {EMAIL}")
    first = with_button(bot, parent["ts"], APPROVE_ACTION)
    assert first is not None
    await asyncio.gather(
        bot.press(first, APPROVE_ACTION, user="U0BOB"), bot.press(first, APPROVE_ACTION, user="U0CAROL")
    )
    await bot.prime.wait_for(lambda: bot.prime.deletion_tasks())
    told = await bot.slack.wait_for(
        lambda: [
            m for u in ("U0BOB", "U0CAROL") for m in bot.slack.ephemerals_to(u) if "Already approved" in text_of(m)
        ]
    )
    assert len(told) == 1
    request = await request_of(bot, parent)
    await eventually(lambda: _status_is(bot, request.id, RequestStatus.ON_HOLD))
    assert len(bot.prime.deletion_starts()) == 1
    approvals = [e for e in await bot.runtime.store.audit.entries() if e.action == "approved"]
    assert len(approvals) == 1


async def _status_is(bot: Harness, request_id: int, status: RequestStatus) -> bool:
    request = await bot.runtime.store.requests.get(request_id)
    return request is not None and request.status is status


async def test_reject_asks_why_in_a_form_and_closes_the_case(bot: Harness) -> None:
    """Reject opens a form; an empty reason or one with an email is answered in the form; a good one ends the erasure
    (REJECTED, closed, who and why in the thread, nothing sent to Amazon) and the audit log says who, not why."""
    parent = await ask(bot, f"delete {EMAIL}")
    first = with_button(bot, parent["ts"], REJECT_ACTION)
    assert first is not None
    await bot.press(first, REJECT_ACTION, user="U0BOB")
    opened = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    view = opened[0].args["view"]
    if isinstance(view, str):
        view = json.loads(view)
    assert view["callback_id"] == "erasure_reject" and opened[0].args["trigger_id"]

    for bad in ("   ", f"asked by {EMAIL}"):
        answer = await bot.submit(view, {"reason": {"reason": bad}}, user="U0BOB")
        assert answer.status_code == 200 and answer.json()["response_action"] == "errors"
        assert "reason" in answer.json()["errors"]
    answer = await bot.submit(view, {"reason": {"reason": "not a <!channel> shopper of ours"}}, user="U0BOB")
    assert answer.status_code == 200 and not answer.content.strip()

    request = await request_of(bot, parent)
    await eventually(lambda: _status_is(bot, request.id, RequestStatus.REJECTED))
    await bot.slack.wait_for(lambda: "Rejected by <@U0BOB>" in text_of(latest(bot, parent["ts"])))
    said = text_of(latest(bot, parent["ts"]))
    assert "&lt;!channel&gt;" in said and "<!channel>" not in bot.slack.public_text()
    assert not buttons(latest(bot, parent["ts"]))
    request = await request_of(bot, parent)
    assert request.closed_by == "U0BOB" and request.closed_at is not None
    assert (request.outcome, request.denial_reason) == ("denied", "other")  # a reason in staff's own words
    assert bot.prime.requests == [] or bot.prime.deletion_starts() == []
    rejected = [e for e in await bot.runtime.store.audit.entries() if e.action == "rejected"]
    assert [(e.actor, e.detail) for e in rejected] == [("U0BOB", "")]
    assert "shopper of ours" not in json.dumps([e.detail for e in await bot.runtime.store.audit.entries()])


async def test_the_requester_may_withdraw_but_an_outsider_may_not_reject(bot: Harness) -> None:
    """Alice withdraws her own erasure (Reject is not the four-eyes step); Mallory's Reject opens no form."""
    parent = await ask(bot, f"delete {EMAIL}")
    first = with_button(bot, parent["ts"], REJECT_ACTION)
    assert first is not None
    await bot.press(first, REJECT_ACTION, user="U0MALLORY")
    await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0MALLORY"))
    assert bot.slack.calls_to("views.open") == []
    await bot.press(first, REJECT_ACTION, user="U0ALICE")
    opened = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    view = opened[0].args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    await bot.submit(view, {"reason": {"reason": "asked for the wrong shopper"}}, user="U0ALICE")
    await bot.slack.wait_for(lambda: "Rejected by <@U0ALICE>" in text_of(latest(bot, parent["ts"])))
    refused = [(e.actor, e.detail) for e in await bot.runtime.store.audit.entries() if e.action == "refused"]
    assert refused == [("U0MALLORY", "reject: not allowed")]


async def _reject_form(bot: Harness, parent: dict[str, object], *, user: str) -> dict[str, object]:
    first = with_button(bot, str(parent["ts"]), REJECT_ACTION)
    assert first is not None
    before = len(bot.slack.calls_to("views.open"))
    await bot.press(first, REJECT_ACTION, user=user)
    opened = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open")[before:])
    view = opened[0].args["view"]
    return json.loads(view) if isinstance(view, str) else view  # type: ignore[no-any-return]


async def test_a_reject_reason_that_grows_when_escaped_still_ends_the_erasure_in_the_thread(bot: Harness) -> None:
    """A 500-character Reject reason of `&` (the form's limit) is 2,500 characters once escaped: the first message
    still loses Approve/Reject and says who rejected; the reason is cut after escaping, with a visible "…", never
    through an entity; Slack refuses nothing."""
    parent = await ask(bot, f"delete {EMAIL}")
    view = await _reject_form(bot, parent, user="U0BOB")
    answer = await bot.submit(view, {"reason": {"reason": "&" * REASON_LIMIT}}, user="U0BOB")
    assert answer.status_code == 200 and not answer.content.strip()
    await bot.slack.wait_for(lambda: "Rejected by <@U0BOB>" in text_of(latest(bot, parent["ts"])))
    assert not buttons(latest(bot, parent["ts"]))
    said = await bot.slack.wait_for(lambda: [r for r in bot.replies(parent["ts"]) if "rejected this" in text_of(r)])
    cut = "&amp;" * (REASON_SHOWN // 5 - 1) + "…"
    assert cut in text_of(latest(bot, parent["ts"])) and cut in text_of(said[0])
    assert "&amp…" not in bot.slack.public_text() and bot.slack.invalid_blocks == []


async def test_a_command_reason_that_grows_when_escaped_still_opens_the_thread(bot: Harness) -> None:
    """The same 500 `&` after --reason: the thread opens, its Reason field cut after escaping."""
    parent = await ask(bot, f"delete {EMAIL} --reason {'&' * REASON_LIMIT}")
    assert "&amp;" * (REASON_SHOWN // 5 - 1) + "…" in text_of(latest(bot, parent["ts"]))
    assert bot.slack.invalid_blocks == []


async def test_a_reject_reason_with_a_disguised_email_is_answered_in_the_form(bot: Harness) -> None:
    """A full-width ＠, or spaces around @, still make an email: the form says so and nothing is rejected yet."""
    parent = await ask(bot, f"delete {EMAIL}")
    view = await _reject_form(bot, parent, user="U0BOB")
    for disguised in ("asked by erase.me＠example.com", "asked by erase.me @ example.com"):
        answer = await bot.submit(view, {"reason": {"reason": disguised}}, user="U0BOB")
        assert answer.status_code == 200 and answer.json()["response_action"] == "errors", disguised
    assert (await request_of(bot, parent)).status is RequestStatus.AWAITING_APPROVAL
