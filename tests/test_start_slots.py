"""A burst of new requests starts at Amazon two at a time, whoever opened their threads.

The outbox's own loop opens most of a burst's threads (it sends every due first message while the
commands' starts wait for a slot); each thread it opens sets off that request's start. Those starts
take the same slots as the commands' own, so the work beside the foreground stays bounded.
"""

from __future__ import annotations

import asyncio

from harness import Harness, eventually

BURST = 6
SLOTS = 2  # handlers/context.py, StartGate


async def test_threads_opened_by_the_outbox_start_their_tasks_in_the_start_slots(bot: Harness) -> None:
    """Amazon holds every start: all six threads open, yet only two starts ever reach it until one returns."""
    gate = asyncio.Event()
    bot.prime.start_gate = gate
    for n in range(BURST):
        assert (await bot.slash(f"burst{n}@example.com")).status_code == 200
    await bot.slack.wait_for(lambda: len(bot.parents()) == BURST)
    await bot.prime.wait_for(lambda: bot.prime.holding >= SLOTS)

    async def outbox_empty() -> bool:
        return await bot.runtime.store.outbox.next_due() is None

    await eventually(outbox_empty)  # every thread is recorded as opened, and its start set off
    assert (len(bot.prime.tasks), bot.prime.holding) == (SLOTS, SLOTS)

    gate.set()
    await bot.prime.wait_for(lambda: len(bot.prime.tasks) == BURST)
    assert len({t.email for t in bot.prime.tasks.values()}) == BURST  # each request started once
