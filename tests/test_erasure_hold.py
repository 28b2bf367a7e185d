"""The holding period: Cancel deletion works during it (the requester too), is explained when too late, and the
reconciler looks at a held task only when its hold ends."""

from __future__ import annotations

from pathlib import Path

from erasures import (
    CANCEL_ACTION,
    DELETED,
    DELETION_FAILED,
    RETRY_ACTION,
    approve,
    ask,
    latest,
    request_of,
    with_button,
)
from fakes import buttons, text_of
from harness import Harness, SettableClock, envelope, eventually, running_bot

from handlers.buttons import CLOSE_ACTION, VERIFY_ACTION
from store import RequestStatus

ON_BOTH_BACKENDS = True  # each ``bot`` test runs on SQLite and on PostgreSQL (tests/conftest.py)

EMAIL = "cancel.me@example.com"
DELETION_TASK = "personalDataDeletionTask"


async def _held(bot: Harness) -> tuple[dict[str, object], str]:
    parent = await ask(bot, f"delete {EMAIL} --hold 30d")
    task = await approve(bot, parent, EMAIL)
    await bot.slack.wait_for(lambda: with_button(bot, str(parent["ts"]), CANCEL_ACTION))
    return parent, task.task_id


async def _status(bot: Harness, parent: dict[str, object]) -> RequestStatus:
    return (await request_of(bot, parent)).status  # type: ignore[arg-type]


async def test_the_requester_cancels_during_the_hold(bot: Harness) -> None:
    """Alice (who asked) clicks Cancel deletion: Amazon cancels the task, the thread says who cancelled and offers
    no Cancel any more, the audit log names her, and the bot never asks Amazon about the cancelled task again."""
    parent, task_id = await _held(bot)
    message = with_button(bot, str(parent["ts"]), CANCEL_ACTION)
    assert message is not None
    await bot.press(message, CANCEL_ACTION, user="U0ALICE")
    await bot.slack.wait_for(lambda: "Cancelled by <@U0ALICE>" in text_of(latest(bot, str(parent["ts"]))))
    assert len(bot.prime.cancels()) == 1 and bot.prime.tasks[task_id].cancelled
    assert not [b for b in buttons(latest(bot, str(parent["ts"]))) if "cancel" in b["text"]["text"].lower()]
    told = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE"))
    assert "will not delete" in text_of(told[-1])
    cancelled = [e for e in await bot.runtime.store.audit.entries() if e.action == "cancelled"]
    assert [(e.actor, e.detail) for e in cancelled] == [("U0ALICE", f"task {task_id}")]
    queries = len(bot.prime.deletion_queries())
    await bot.runtime.workers.reconciler.reconcile(resume=True)
    await bot.runtime.workers.reconciler.reconcile()
    assert len(bot.prime.deletion_queries()) == queries  # the fake answers "not found" for a cancelled task
    assert await _status(bot, parent) is RequestStatus.CANCELLED


async def test_cancel_after_the_hold_is_explained_and_the_deletion_goes_on(bot: Harness) -> None:
    """The hold ended at Amazon: Cancel gets CannotCancelPersonalDataDeletionTask, told in words to the clicker,
    audited as too late; the thread shows the deletion running without Cancel, then Deleted when it completes."""
    parent, task_id = await _held(bot)
    message = with_button(bot, str(parent["ts"]), CANCEL_ACTION)
    assert message is not None
    bot.prime.release_hold(task_id)
    await bot.press(message, CANCEL_ACTION, user="U0BOB")
    told = await bot.slack.wait_for(
        lambda: [m for m in bot.slack.ephemerals_to("U0BOB") if "Too late to cancel" in text_of(m)]
    )
    assert "CannotCancelPersonalDataDeletionTask" in text_of(told[0]) and "cannot be stopped" in text_of(told[0])
    await bot.slack.wait_for(lambda: "Deleting at Buy with Prime" in text_of(latest(bot, str(parent["ts"]))))
    assert [b["action_id"] for b in buttons(latest(bot, str(parent["ts"])))] == [VERIFY_ACTION]  # no Cancel
    assert not bot.prime.tasks[task_id].cancelled
    late = [(e.action, e.actor) for e in await bot.runtime.store.audit.entries() if e.actor == "U0BOB"]
    assert ("cancel too late", "U0BOB") in late and ("cancelled", "U0BOB") not in late

    bot.prime.complete(task_id)
    assert (await bot.relay(envelope(DELETED, task_id, task_field=DELETION_TASK))).status_code == 200
    await bot.slack.wait_for(lambda: "Deleted" in text_of(latest(bot, str(parent["ts"]))))
    assert await _status(bot, parent) is RequestStatus.COMPLETED


async def test_cancel_when_amazon_does_not_answer_leaves_it_on_hold(bot: Harness) -> None:
    """Amazon answers 503 to every try of the cancel: the clicker is told it is not cancelled, and it stays on hold
    with its button, so a second click can cancel it."""
    parent, task_id = await _held(bot)
    message = with_button(bot, str(parent["ts"]), CANCEL_ACTION)
    assert message is not None
    bot.prime.fail_next["cancelPersonalDataDeletionTask"] = ["503"] * 10
    await bot.press(message, CANCEL_ACTION, user="U0ALICE")
    told = await bot.slack.wait_for(
        lambda: [m for m in bot.slack.ephemerals_to("U0ALICE") if "not* cancelled" in text_of(m)]
    )
    assert "Cancel deletion" in text_of(told[0])
    assert await _status(bot, parent) is RequestStatus.ON_HOLD
    assert not bot.prime.tasks[task_id].cancelled
    bot.prime.fail_next.clear()
    await bot.press(message, CANCEL_ACTION, user="U0ALICE")
    await eventually(lambda: _is(bot, parent, RequestStatus.CANCELLED))


async def _is(bot: Harness, parent: dict[str, object], status: RequestStatus) -> bool:
    return await _status(bot, parent) is status


async def test_a_cancel_whose_answer_was_lost_is_still_a_cancel(bot: Harness) -> None:
    """Amazon cancels but its answer is a 500; the client's retry then gets "not found" (Amazon forgets a cancelled
    task): the erasure is cancelled, and the audit entry says how it was known."""
    parent, task_id = await _held(bot)
    message = with_button(bot, str(parent["ts"]), CANCEL_ACTION)
    assert message is not None
    bot.prime.fail_next["cancelPersonalDataDeletionTask"] = ["task-then-500"]
    await bot.press(message, CANCEL_ACTION, user="U0ALICE")
    await eventually(lambda: _is(bot, parent, RequestStatus.CANCELLED))
    assert bot.prime.tasks[task_id].cancelled and len(bot.prime.cancels()) == 2
    cancelled = [e for e in await bot.runtime.store.audit.entries() if e.action == "cancelled"]
    assert cancelled[0].detail == f"task {task_id} (Amazon no longer knows it)"


async def test_the_hold_end_is_seen_by_the_reconciler_and_not_polled_before(tmp_path: Path) -> None:
    """While on hold the reconciler asks Amazon nothing; once the bot's clock passes the hold's end it asks once,
    sees IN_PROGRESS, audits "hold ended" and takes Cancel off the thread."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock) as bot:
        parent = await ask(bot, f"delete {EMAIL} --hold 10d")
        task = await approve(bot, parent, EMAIL)
        reconciler = bot.runtime.workers.reconciler
        queries = len(bot.prime.deletion_queries())
        clock.advance(9 * 86_400)
        await reconciler.reconcile()
        assert len(bot.prime.deletion_queries()) == queries
        bot.prime.release_hold(task.task_id)
        clock.advance(86_400 + 1)
        await reconciler.reconcile()
        assert len(bot.prime.deletion_queries()) == queries + 1
        await eventually(lambda: _is(bot, parent, RequestStatus.IN_PROGRESS))
        assert "hold ended" in [e.action for e in await bot.runtime.store.audit.entries()]
        await bot.slack.wait_for(
            lambda: [b["action_id"] for b in buttons(latest(bot, str(parent["ts"])))] == [VERIFY_ACTION] or None
        )  # no Cancel any more: only the record's own button


async def test_a_cancel_amazon_answers_not_found_is_not_confirmed_and_the_deletion_is_followed(bot: Harness) -> None:
    """Amazon answers "not found" to the first cancel ever sent: no earlier cancel of the bot's explains it, so the
    clicker is told it is not confirmed, the erasure stays on hold with its button, and the audit log says so.
    Amazon then ends the hold and deletes: the event is applied, the thread says Deleted, and the audit log has the
    hold's end the bot never saw."""
    parent, task_id = await _held(bot)
    message = with_button(bot, str(parent["ts"]), CANCEL_ACTION)
    assert message is not None
    bot.prime.fail_next["cancelPersonalDataDeletionTask"] = ["not-found"]
    await bot.press(message, CANCEL_ACTION, user="U0ALICE")
    told = await bot.slack.wait_for(
        lambda: [m for m in bot.slack.ephemerals_to("U0ALICE") if "not confirmed" in text_of(m)]
    )
    assert "Cancel deletion" in text_of(told[0])
    await eventually(lambda: _audited(bot, "cancel not confirmed"))
    request = await request_of(bot, parent)
    assert request.status is RequestStatus.ON_HOLD and request.cancel_sent_at is None
    assert with_button(bot, str(parent["ts"]), CANCEL_ACTION) is not None
    assert "Cancelled" not in text_of(latest(bot, str(parent["ts"])))
    entries = await bot.runtime.store.audit.entries()
    assert [(e.actor, e.detail) for e in entries if e.action == "cancel not confirmed"] == [
        ("U0ALICE", f"task {task_id} (ResourceNotFoundError)")
    ]
    assert "cancelled" not in [e.action for e in entries]

    bot.prime.release_hold(task_id)
    bot.prime.complete(task_id)
    assert (await bot.relay(envelope(DELETED, task_id, task_field=DELETION_TASK))).status_code == 200
    await bot.slack.wait_for(lambda: "Deleted" in text_of(latest(bot, str(parent["ts"]))))
    assert await _status(bot, parent) is RequestStatus.COMPLETED

    async def moved_then_received() -> bool:  # the event is marked received after the move its post announced
        moves = [e.action for e in await bot.runtime.store.audit.entries() if e.actor == "amazon"]
        return moves[-3:] == ["hold ended", "completed", "event received"]

    await eventually(moved_then_received)


async def _audited(bot: Harness, action: str) -> bool:
    return action in [e.action for e in await bot.runtime.store.audit.entries()]


async def _believed_cancelled(bot: Harness) -> tuple[dict[str, object], str]:
    """A cancel whose first try is answered 500 (Amazon did nothing) and whose retry gets "not found": the bot takes
    it for its own cancel that took, and records the erasure cancelled, while Amazon still holds the task."""
    parent, task_id = await _held(bot)
    message = with_button(bot, str(parent["ts"]), CANCEL_ACTION)
    assert message is not None
    bot.prime.fail_next["cancelPersonalDataDeletionTask"] = ["500", "not-found"]
    await bot.press(message, CANCEL_ACTION, user="U0BOB")
    await bot.slack.wait_for(lambda: "Cancelled by <@U0BOB>" in text_of(latest(bot, str(parent["ts"]))))
    assert not bot.prime.tasks[task_id].cancelled
    return parent, task_id


async def test_a_deletion_amazon_completes_after_the_bot_recorded_a_cancel_is_corrected_loudly(bot: Harness) -> None:
    """The bot recorded a cancel, and the case was even closed as answered; then Amazon deletes and says so. Its word
    is applied: the thread's first message says the data was deleted, a reply names the requester and who
    cancelled and says the earlier "cancelled" was wrong, and the audit log has each step."""
    parent, task_id = await _believed_cancelled(bot)
    close = await bot.slack.wait_for(lambda: with_button(bot, str(parent["ts"]), CLOSE_ACTION))
    await bot.press(close, CLOSE_ACTION, user="U0ALICE")
    await eventually(lambda: _audited(bot, "closed"))

    bot.prime.release_hold(task_id)
    bot.prime.complete(task_id)
    assert (await bot.relay(envelope(DELETED, task_id, task_field=DELETION_TASK))).status_code == 200
    ts = str(parent["ts"])
    await bot.slack.wait_for(lambda: "Not cancelled at Buy with Prime" in text_of(latest(bot, ts)))
    assert "deleted the shopper's data" in text_of(latest(bot, ts)) and not buttons(latest(bot, ts))
    correction = await bot.slack.wait_for(lambda: [r for r in bot.replies(ts) if "Correction" in text_of(r)])
    said = text_of(correction[0])
    assert "<@U0ALICE>" in said and "<@U0BOB>" in said and "That was wrong" in said and task_id in said
    assert "closed before this" in said and not buttons(correction[0])
    assert await _status(bot, parent) is RequestStatus.COMPLETED
    moves = [e.action for e in await bot.runtime.store.audit.entries() if e.actor == "amazon"]
    assert moves[-4:] == ["cancel contradicted", "hold ended", "completed", "event received"]
    assert bot.slack.invalid_blocks == []


async def test_a_deletion_that_fails_after_the_bot_recorded_a_cancel_is_corrected(bot: Harness) -> None:
    """The same with a failure: the thread says the deletion ran and failed (nothing deleted), with Amazon's reason,
    and the open case offers Try again for open orders and Mark as answered."""
    parent, task_id = await _believed_cancelled(bot)
    bot.prime.release_hold(task_id)
    bot.prime.fail(task_id, "ORDERS_NOT_CLOSED", "The shopper has open orders")
    assert (await bot.relay(envelope(DELETION_FAILED, task_id, task_field=DELETION_TASK))).status_code == 200
    ts = str(parent["ts"])
    await bot.slack.wait_for(lambda: "Not cancelled at Buy with Prime" in text_of(latest(bot, ts)))
    correction = await bot.slack.wait_for(lambda: [r for r in bot.replies(ts) if "Correction" in text_of(r)])
    said = text_of(correction[0])
    assert "ran and failed" in said and "ORDERS_NOT_CLOSED" in said
    assert [b["action_id"] for b in buttons(correction[0])] == [RETRY_ACTION, CLOSE_ACTION]
    assert await _status(bot, parent) is RequestStatus.FAILED


async def test_a_deletion_completed_straight_from_the_hold_audits_the_hold_end(bot: Harness) -> None:
    """The bot never saw the task leave its hold (no poll between): the completion event moves it ON_HOLD → COMPLETED,
    and the audit log still says the hold ended, before it says completed."""
    parent, task_id = await _held(bot)
    bot.prime.release_hold(task_id)
    bot.prime.complete(task_id)
    assert (await bot.relay(envelope(DELETED, task_id, task_field=DELETION_TASK))).status_code == 200
    await eventually(lambda: _is(bot, parent, RequestStatus.COMPLETED))
    moves = [(e.action, e.detail) for e in await bot.runtime.store.audit.entries() if e.actor == "amazon"]
    assert [action for action, _ in moves if action != "event received"][-2:] == ["hold ended", "completed"]
