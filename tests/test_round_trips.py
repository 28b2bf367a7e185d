"""How many times one retrieval start crosses to the database's thread: each crossing is a wait behind others'."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from store import RequestStatus
from tests.harness import envelope, running_bot

COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"

# The loops that run beside the listeners: their rounds are the bot's, not this start's.
LOOPS = {"outbox", "inbox", "reconciler", "reminders", "retention", "checkpoints", "usergroup"}

# Units one start sends: the command's insert, the request read, the opener's due-read, its attempt mark, its
# sent-mark (moving the request, which it returns), the email, the start mark, and the started move with its
# next check.
START_ROUND_TRIPS = 8


async def test_one_retrieval_start_takes_a_known_number_of_round_trips(tmp_path: Path) -> None:
    """A signed ``/data-request <email>`` taken until its thread is opened and its task is IN_PROGRESS crosses
    to the database's thread exactly ``START_ROUND_TRIPS`` times (a new crossing shows here as a failure)."""
    async with running_bot(tmp_path) as bot:
        await asyncio.sleep(0)  # the loops have begun: one cancelled before it began would leave its coroutine
        bot.runtime.workers.cancel("outbox")  # the thread's later updates are the outbox's, not the start's
        connection = bot.runtime.store._db
        units: list[str] = []
        call = connection.call

        async def counted(work: Callable[[Any], Any]) -> Any:
            task = asyncio.current_task()
            if task is None or task.get_name() not in LOOPS:
                units.append(getattr(work, "__qualname__", repr(work)))
            return await call(work)

        connection.call = counted  # type: ignore[method-assign]
        response = await bot.slash("shopper@example.com")
        assert response.status_code == 200, response.text
        await bot.prime.wait_for(lambda: list(bot.prime.tasks.values()))
        await asyncio.gather(*(t for t in asyncio.all_tasks() if t.get_name() == "command start"))
        connection.call = call  # type: ignore[method-assign]

        [request] = await bot.runtime.store.requests.for_email("shopper@example.com")
        assert request.status is RequestStatus.IN_PROGRESS
        assert bot.parents()[0]["ts"] == request.thread_ts
        assert len(units) == START_ROUND_TRIPS, units


async def test_relayed_events_that_arrive_together_cross_to_the_database_together(tmp_path: Path) -> None:
    """Eight events relayed while the database's thread is busy cross to it in one or two units, not eight, and each is
    answered ``stored`` only once it is in the inbox."""
    async with running_bot(tmp_path) as bot:
        connection = bot.runtime.store._db
        entered, release = threading.Event(), threading.Event()

        def held(_: Any) -> None:
            entered.set()
            release.wait(10)

        holding = asyncio.create_task(connection.call(held))
        await asyncio.to_thread(entered.wait, 10)
        units: list[str] = []
        call, add = connection.call, bot.runtime.store.inbox.add
        arrived: list[str] = []

        async def counted(work: Callable[[Any], Any]) -> Any:
            task = asyncio.current_task()
            if task is None or task.get_name() not in LOOPS:
                units.append(getattr(work, "__qualname__", repr(work)))
            return await call(work)

        async def adding(**event: str) -> bool:
            arrived.append(event["event_id"])
            return await add(**event)

        connection.call = counted  # type: ignore[method-assign]
        bot.runtime.store.inbox.add = adding  # type: ignore[method-assign]
        events = [envelope(COMPLETED, f"task-nobody-knows-{n}", event_id=f"evt-{n}") for n in range(8)]
        answers = asyncio.gather(*(bot.relay(event) for event in events))
        while len(arrived) < len(events):  # noqa: ASYNC110 (each relay request is on its way to the store)
            await asyncio.sleep(0.005)
        release.set()
        responses = await answers
        await holding
        connection.call = call  # type: ignore[method-assign]

        assert [r.json() for r in responses] == [{"status": "stored"}] * len(events)
        assert 1 <= len(units) <= 2, units  # one each would be eight
        rows = await connection.execute("SELECT event_id FROM inbox ORDER BY event_id")
        assert [row["event_id"] for row in rows] == sorted(f"evt-{n}" for n in range(8))
