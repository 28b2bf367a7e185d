"""Never asked twice, never started twice: crashes around the approval, the 8-hour clientToken window, Try again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from erasures import APPROVE_ACTION, DELETION_FAILED, RETRY_ACTION, approve, ask, latest, request_of, with_button
from fakes import text_of
from harness import Harness, SettableClock, envelope, eventually, running_bot

from prime import CLIENT_TOKEN_WINDOW
from store import RequestStatus

EMAIL = "erase.me@example.com"
DELETION_TASK = "personalDataDeletionTask"


def _tokens(bot: Harness) -> list[str]:
    return [s["variables"]["input"]["clientToken"]["token"] for s in bot.prime.deletion_starts()]


async def test_a_crash_between_the_approval_and_the_start_call_resumes_the_start(bot: Harness) -> None:
    """Bob approves while Amazon's token endpoint hangs, and the bot dies: the approval was recorded first, so the
    restarted bot starts the task by itself, with the clientToken stored at the request, and asks no one again."""
    parent = await ask(bot, f"delete {EMAIL} --reason asked twice")
    bot.prime.fail_next["token"] = ["timeout"]
    message = with_button(bot, parent["ts"], APPROVE_ACTION)
    assert message is not None
    await bot.press(message, APPROVE_ACTION, user="U0BOB")
    await bot.prime.wait_for(lambda: bot.prime.holding)  # the start is under way: its token call hangs
    request = await request_of(bot, parent)
    assert request.status is RequestStatus.STARTING and request.approved_by == "U0BOB"
    assert bot.prime.deletion_starts() == []
    await bot.crash()
    bot.prime.release()
    await bot.restart()
    await bot.prime.wait_for(lambda: bot.prime.deletion_tasks())
    await eventually(lambda: _is(bot, request.id, RequestStatus.ON_HOLD))
    assert _tokens(bot) == [request.client_token]
    assert len(bot.prime.deletion_tasks()) == 1
    actions = [e.action for e in await bot.runtime.store.audit.entries()]
    assert actions.count("approved") == 1 and actions.count("task started") == 1


async def _is(bot: Harness, request_id: int, status: RequestStatus) -> bool:
    request = await bot.runtime.store.requests.get(request_id)
    return request is not None and request.status is status


async def test_a_crash_after_the_task_exists_finds_the_same_task(bot: Harness) -> None:
    """Amazon made the task but its answer never came back (the bot died): the restarted bot's start, with the
    same clientToken, gets the same task; Amazon holds one deletion for this shopper."""
    parent = await ask(bot, f"delete {EMAIL}")
    gate = asyncio.Event()
    bot.prime.start_gate = gate
    message = with_button(bot, parent["ts"], APPROVE_ACTION)
    assert message is not None
    await bot.press(message, APPROVE_ACTION, user="U0BOB")
    await bot.prime.wait_for(lambda: bot.prime.deletion_tasks())
    request = await request_of(bot, parent)
    await bot.crash()
    gate.set()
    await bot.restart()
    await eventually(lambda: _is(bot, request.id, RequestStatus.ON_HOLD))
    assert len(bot.prime.deletion_tasks()) == 1 and len(set(_tokens(bot))) == 1 and len(_tokens(bot)) == 2
    stored = await bot.runtime.store.requests.get(request.id)
    assert stored is not None and stored.task_id == bot.prime.deletion_tasks()[0]


async def test_the_8_hour_window_is_not_overrun_and_try_again_starts_afresh(tmp_path: Path) -> None:
    """Amazon answers 503 from the approval on: once the clientToken's window has passed by the bot's clock, it
    stops calling (a retry could start a second task) and the thread offers Try again, which starts a new task
    with a new clientToken when Amazon is back."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock) as bot:
        parent = await ask(bot, f"delete {EMAIL}")
        bot.prime.fail_next["startPersonalDataDeletionTask"] = ["503"] * 100
        message = with_button(bot, parent["ts"], APPROVE_ACTION)
        assert message is not None
        await bot.press(message, APPROVE_ACTION, user="U0BOB")
        await bot.slack.wait_for(lambda: "Waiting for Buy with Prime" in text_of(bot.replies(parent["ts"])))
        request = await request_of(bot, parent)
        first_token = request.client_token
        clock.advance(CLIENT_TOKEN_WINDOW)
        calls = len(bot.prime.deletion_starts())
        await bot.runtime.workers.reconciler.reconcile(resume=True)
        await eventually(lambda: _is(bot, request.id, RequestStatus.ABANDONED))
        assert len(bot.prime.deletion_starts()) == calls
        await bot.slack.wait_for(lambda: "8 hours" in text_of(bot.replies(parent["ts"])))
        retry = with_button(bot, parent["ts"], RETRY_ACTION)
        assert retry is not None
        bot.prime.fail_next.clear()
        await bot.press(retry, RETRY_ACTION, user="U0ALICE")
        await bot.prime.wait_for(lambda: bot.prime.deletion_tasks())
        assert _tokens(bot)[-1] != first_token
        retried = [e for e in await bot.runtime.store.audit.entries() if e.action == "retried"]
        assert [(e.actor, e.detail) for e in retried] == [("U0ALICE", "new task after the clientToken's window passed")]


async def test_open_orders_then_try_again_starts_one_new_task_with_a_new_client_token(bot: Harness) -> None:
    """Amazon fails the deletion with ORDERS_NOT_CLOSED: the thread explains the open orders and offers Try again;
    two clicks at once start one new task, with a new clientToken and the same hold and reason, audited."""
    parent = await ask(bot, "delete openorders@example.com --hold 0d --reason shopper asked")
    task = await approve(bot, parent, "openorders@example.com")
    bot.prime.fail(task.task_id, code="ORDERS_NOT_CLOSED", message="The shopper has open orders")
    assert (await bot.relay(envelope(DELETION_FAILED, task.task_id, task_field=DELETION_TASK))).status_code == 200
    await bot.slack.wait_for(lambda: "open Buy with Prime orders" in text_of(bot.replies(parent["ts"])))
    retry = with_button(bot, parent["ts"], RETRY_ACTION)
    assert retry is not None
    said = text_of(bot.replies(parent["ts"]))
    assert "open Buy with Prime orders" in said and "Try again" in said
    assert "open orders" in text_of(latest(bot, parent["ts"]))

    await asyncio.gather(bot.press(retry, RETRY_ACTION, user="U0BOB"), bot.press(retry, RETRY_ACTION, user="U0ALICE"))
    await bot.prime.wait_for(lambda: len(bot.prime.deletion_tasks()) == 2 or None)
    request = await request_of(bot, parent)
    await eventually(lambda: _is(bot, request.id, RequestStatus.IN_PROGRESS))
    await bot.slack.wait_for(
        lambda: [m for u in ("U0BOB", "U0ALICE") for m in bot.slack.ephemerals_to(u) if "Already started" in text_of(m)]
    )
    assert len(bot.prime.deletion_tasks()) == 2
    first, second = bot.prime.deletion_starts()[0], bot.prime.deletion_starts()[-1]
    assert first["variables"]["input"]["clientToken"] != second["variables"]["input"]["clientToken"]
    assert second["variables"]["input"]["holdingPeriod"] == 0
    assert second["variables"]["input"]["reason"] == "shopper asked"
    retried = [e for e in await bot.runtime.store.audit.entries() if e.action == "retried"]
    assert len(retried) == 1 and retried[0].detail == f"new task after ORDERS_NOT_CLOSED (was task {task.task_id})"
    stored = await bot.runtime.store.requests.get(request.id)
    assert stored is not None and stored.task_id == bot.prime.deletion_tasks()[1] and not stored.errors
