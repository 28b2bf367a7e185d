"""The reconciler keeps Amazon's pace with many open tasks: oldest first, at most 5 polls a second, spread out.

A pass reads its requests a page at a time and spaces its polls ``interval / due`` apart (never closer
than 0.2 s): a few hundred tasks take the interval, not its first seconds; more than the interval can
hold go at 5 a second. The bot runs against the loopback fake Amazon on a settable clock; the pass's
sleeps move that clock instead of waiting, and each poll the fake Amazon records is counted in the
one-second window of the clock it arrived in.
"""

from __future__ import annotations

import random
from collections import Counter
from itertools import pairwise
from pathlib import Path

from fakes import Task
from harness import SettableClock, running_bot

from bot.tuning import Tuning
from core import RequestKind, mask_email
from handlers.workers.reconcile import Reconciler

START = 1_800_000_000.0
TASKS = 250  # five pages of 50


Pass = tuple[list[str], list[float]]  # the task ids as polled, and the clock at each poll


async def pace(tmp_path: Path, *, interval: float) -> tuple[list[str], Pass, Pass]:
    """Two passes over TASKS open tasks made in shuffled order: (task ids by age, the first pass, the second).

    The first pass has no pass before it to go by; the second comes after the checks the first one set
    (the bot's RECONCILE_INTERVAL, an hour in the tests) and knows how many the first one saw.
    """
    clock = SettableClock(START)
    async with running_bot(tmp_path, clock=clock, tuning=Tuning.fast()) as bot:
        store, prime = bot.runtime.store, bot.prime
        ages = list(range(TASKS))
        random.Random(14).shuffle(ages)  # ids and ages disagree: the order must come from the age
        by_age: dict[int, str] = {}
        for age in ages:
            clock.now = START - 86_400.0 + age * 60.0
            email = f"shopper{age}@example.com"
            request, _ = await store.requests.create(
                kind=RequestKind.RETRIEVAL,
                email=email,
                email_masked=mask_email(email),
                requester="U0ALICE",
                channel="C0CASES",
                due_at=clock.now + 30 * 86_400.0,
                deadline="30 days",
            )
            task_id = f"{age:08d}-0000-4000-8000-000000000000"
            prime.tasks[task_id] = Task(task_id, email, request.client_token)
            await store.outbox.thread_opened(request.id, f"{clock.now:.6f}")
            await store.requests.record_task_started(request.id, task_id, notices=())
            by_age[age] = task_id
        times: list[float] = []
        polls_before = 0

        async def sleep(seconds: float) -> None:
            times.extend([clock.now] * (len(prime.queries()) - polls_before - len(times)))
            clock.advance(seconds)

        flow = bot.runtime.workers.reconciler._deps  # the running bot's own Flow, with passes of our making
        reconciler = Reconciler(flow, interval=interval, spacing=0.2, batch=50, spread=True, sleep=sleep)
        passes: list[Pass] = []
        for begins in (START, START + 2 * 86_400.0):
            clock.now = begins
            times, polls_before = [], len(prime.queries())
            assert await reconciler.reconcile() == TASKS
            passes.append(([q["variables"]["taskId"] for q in prime.queries()[polls_before:]], times))
        return [by_age[age] for age in sorted(by_age)], passes[0], passes[1]


async def test_a_pass_spreads_its_polls_over_the_interval_oldest_first(tmp_path: Path) -> None:
    """250 open tasks and a 25-minute interval: the first pass, with nothing to go by, polls at Amazon's pace;
    the next knows from it that 250 are ahead and polls every task once, oldest first, 6 s apart, so the last
    poll comes near the end of the interval rather than in its first minute. Nothing is counted to know it."""
    oldest_first, (first, first_times), (polled, times) = await pace(tmp_path, interval=1_500.0)
    assert first == oldest_first and {round(b - a, 6) for a, b in pairwise(first_times)} == {0.2}
    assert polled == oldest_first
    gaps = {round(b - a, 6) for a, b in pairwise(times)}
    assert gaps == {6.0}
    assert times[-1] - times[0] >= 1_400.0


async def test_more_tasks_than_the_interval_holds_go_at_amazons_pace(tmp_path: Path) -> None:
    """250 open tasks and a 10 s interval (the 10,000-task case in small): in both passes never more than 5 polls
    in any second of the clock, oldest first, and a pass takes the 50 s that pace needs rather than bursting."""
    oldest_first, *passes = await pace(tmp_path, interval=10.0)
    for polled, times in passes:
        assert polled == oldest_first
        per_second = Counter(int(t - times[0]) for t in times)
        assert max(per_second.values()) <= 5
        assert times[-1] - times[0] >= 49.0
