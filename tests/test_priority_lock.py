"""The store's lock lets work someone waits on go before background work, and survives cancellation."""

from __future__ import annotations

import asyncio

from store._priority import PriorityLock


async def test_urgent_waiters_go_before_ordinary_ones_and_each_lane_is_first_come_first_served() -> None:
    """With the lock held, later urgent waiters still enter before earlier ordinary ones."""
    lock = PriorityLock()
    order: list[str] = []
    gate = asyncio.Event()

    async def holder() -> None:
        async with lock.hold():
            await gate.wait()

    async def waiter(name: str, urgent: bool) -> None:
        async with lock.hold(urgent=urgent):
            order.append(name)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)  # let it take the lock
    tasks = [asyncio.create_task(waiter(n, u)) for n, u in (("o1", False), ("o2", False), ("u1", True), ("u2", True))]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *tasks)
    assert order == ["u1", "u2", "o1", "o2"]


async def test_a_waiter_cancelled_as_the_lock_is_handed_to_it_passes_the_lock_on() -> None:
    """The release hands the lock to a waiter that is cancelled before it runs: the next waiter still gets it."""
    lock = PriorityLock()
    gate = asyncio.Event()
    entered: list[str] = []
    tasks: dict[str, asyncio.Task[None]] = {}

    async def holder() -> None:
        async with lock.hold():
            await gate.wait()
        tasks["doomed"].cancel()  # same tick as the hand-over: "doomed" owns the lock but has not run

    async def waiter(name: str) -> None:
        async with lock.hold(urgent=True):
            entered.append(name)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    tasks["doomed"] = asyncio.create_task(waiter("doomed"))
    later = asyncio.create_task(waiter("later"))
    await asyncio.sleep(0)
    gate.set()
    await first
    async with asyncio.timeout(1):
        await later
    assert entered == ["later"] and tasks["doomed"].cancelled()


async def test_a_waiter_cancelled_while_waiting_is_skipped() -> None:
    """A cancelled waiter leaves its lane; the lock goes to the next one."""
    lock = PriorityLock()
    gate = asyncio.Event()

    async def holder() -> None:
        async with lock.hold():
            await gate.wait()

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    doomed = asyncio.create_task(lock.hold().__aenter__())
    await asyncio.sleep(0)
    doomed.cancel()
    await asyncio.gather(doomed, return_exceptions=True)
    gate.set()
    await first
    async with asyncio.timeout(1), lock.hold():
        pass
