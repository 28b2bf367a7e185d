"""Background work gives way, item by item, to the requests someone is waiting on (core/_foreground.py).

The gate's own rules first, on a gate alone; then through the real bot: a bare ``/data-request`` is held
in flight (its form's ``views.open`` held at the fake Slack), and the work other requests set off waits
for its answer instead of starting beside it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from fakes import FakePrime, buttons, slash_body
from fakes.socket_mode import FakeSlackWithSockets
from harness import CHANNEL, Harness, envelope, eventually, make_settings, running_bot

from bot.runtime import Runtime
from bot.tuning import Tuning
from core import Foreground

COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"
FORM = "views.open"  # what a bare command waits on before its answer is sent

# Only the held answer's end lets an item through: the patience is never what ends a wait in these tests.
PATIENT = replace(Tuning.fast(), foreground_patience=60.0)


async def test_a_background_item_waits_while_a_request_is_in_flight_and_starts_when_it_ends() -> None:
    """The item gives way while the request is answered, and starts as soon as the answer is sent."""
    gate = Foreground(patience=60.0)
    order: list[str] = []

    async def item() -> None:
        await gate.give_way()
        order.append("item started")

    with gate.serving():
        waiting = asyncio.create_task(item())
        await asyncio.sleep(0)  # the item has run up to its wait
        assert gate.waiting == 1 and not waiting.done()
        order.append("request answered")
    await waiting
    assert order == ["request answered", "item started"]
    assert gate.in_flight == 0 and gate.waiting == 0


async def test_with_nothing_in_flight_an_item_never_waits() -> None:
    """No request in flight: giving way returns without a single turn of the loop."""
    gate = Foreground(patience=60.0)
    step = gate.give_way().__await__()
    with pytest.raises(StopIteration):
        next(step)  # finished on its first step: it never suspended


async def test_under_requests_that_never_end_items_still_start_one_at_a_time() -> None:
    """A request never answered: each waiting item starts after the patience, one after the other."""
    gate = Foreground(patience=0.001)
    left_waiting: list[int] = []

    async def item() -> None:
        await gate.give_way()
        left_waiting.append(gate.waiting)

    with gate.serving():
        async with asyncio.timeout(10):
            await asyncio.gather(item(), item(), item())
    assert left_waiting == [2, 1, 0]  # each started while the ones behind it still waited


async def test_a_slot_that_comes_while_a_request_is_in_flight_is_given_back_until_it_ends() -> None:
    """Two items queued for one slot in a lull: the second gets it while a request is being answered, gives
    it back while it gives way, and starts only when the answer is sent."""
    gate = Foreground(patience=60.0)
    slots = asyncio.Semaphore(1)
    order: list[str] = []
    finish_first = asyncio.Event()

    async def first() -> None:
        async with gate.turn(slots):
            await finish_first.wait()
            order.append("first done")

    async def second() -> None:
        async with gate.turn(slots):
            order.append("second started")

    running = asyncio.create_task(first())
    await asyncio.sleep(0)  # the first holds the slot
    queued = asyncio.create_task(second())
    await asyncio.sleep(0)  # the second waits for the slot, no request in flight yet
    with gate.serving():
        finish_first.set()
        await running  # the slot goes to the second while the request is in flight
        await items_waiting(gate, 1)
        assert not slots.locked() and not queued.done()
        order.append("request answered")
    await queued
    assert order == ["first done", "request answered", "second started"]


async def command_held(bot: Harness) -> asyncio.Task[httpx.Response]:
    """A bare ``/data-request``, its answer held in flight (its form's views.open held at Slack)."""
    bot.slack.hold[FORM] = asyncio.Event()
    answer = asyncio.create_task(bot.slash(""))
    await bot.slack.wait_for(lambda: FORM in bot.slack.held)
    return answer


async def items_waiting(foreground: Foreground, count: int) -> None:
    async def there() -> bool:
        return foreground.waiting == count

    await eventually(there)


async def test_a_new_requests_thread_and_start_wait_while_a_command_is_being_answered(tmp_path: Path) -> None:
    """A second command is acknowledged at once, but its thread and its start at Amazon wait for the first
    command's answer, and go as soon as it is sent."""
    async with running_bot(tmp_path, tuning=PATIENT) as bot:
        held = await command_held(bot)
        assert (await bot.slash("held@example.com")).status_code == 200
        await items_waiting(bot.runtime.foreground, 1)  # the new request's start, giving way
        assert not bot.parents() and not bot.prime.starts()

        bot.slack.hold[FORM].set()
        assert (await held).status_code == 200
        await bot.slack.wait_for(lambda: bot.parents())
        assert [task.email for task in await bot.prime.wait_for(lambda: list(bot.prime.tasks.values()))] == [
            "held@example.com"
        ]


async def test_a_relayed_event_is_stored_at_once_and_applied_after_the_command_being_answered(
    tmp_path: Path,
) -> None:
    """Amazon's event is accepted while a command is answered; the inbox applies it (and the outbox posts the
    Download reply) only once that answer is sent."""
    async with running_bot(tmp_path, tuning=PATIENT) as bot:
        task_id, parent = await bot.request("relayed@example.com")
        bot.prime.complete(task_id)
        held = await command_held(bot)
        assert (await bot.relay(envelope(COMPLETED, task_id))).json() == {"status": "stored"}
        await items_waiting(bot.runtime.foreground, 1)  # the task's events, giving way
        assert not [reply for reply in bot.replies(parent["ts"]) if buttons(reply)]

        bot.slack.hold[FORM].set()
        assert (await held).status_code == 200
        assert buttons(await bot.download_reply(parent))


async def test_in_socket_mode_an_envelope_being_answered_holds_background_work_too(tmp_path: Path) -> None:
    """Over the socket, a bare command's envelope is held unanswered (its form's views.open held): a second
    command is acknowledged, and its thread and start wait until the first envelope is answered."""
    async with FakeSlackWithSockets() as slack, FakePrime() as prime:
        settings = make_settings(slack, prime, tmp_path, slack_app_token=slack.app_token, slack_signing_secret=None)
        runtime = await Runtime.start(settings, host="127.0.0.1", tuning=PATIENT)
        slack.hold[FORM] = asyncio.Event()
        try:
            await slack.wait_for(lambda: slack.sockets)

            async def push(text: str) -> str:
                body = slash_body(text, user="U0ALICE", channel=CHANNEL, response_url=slack.response_url("U0ALICE"))
                return await slack.push("slash_commands", dict(parse_qsl(body)))

            form = await push("")
            await slack.wait_for(lambda: FORM in slack.held)
            second = await push("socket@example.com")
            await slack.wait_for(lambda: slack.acks.get(second))
            await items_waiting(runtime.foreground, 1)
            assert not prime.starts() and not slack.posts(CHANNEL)

            slack.hold[FORM].set()
            await slack.wait_for(lambda: slack.acks.get(form))
            await slack.wait_for(lambda: slack.posts(CHANNEL))
            assert [task.email for task in await prime.wait_for(lambda: list(prime.tasks.values()))] == [
                "socket@example.com"
            ]
        finally:
            slack.hold[FORM].set()
            await runtime.stop()
