"""What a person or Amazon waits on never queues behind background work on the store's one connection."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from store._database import Database, behind


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "lanes.db")
    await database.run(lambda db: db.execute("CREATE TABLE seen (name TEXT)"))
    try:
        yield database
    finally:
        await database.close()


def noting(order: list[str], name: str) -> Callable[[sqlite3.Connection], None]:
    """A unit that records, on the database's thread, when it ran."""

    def work(db: sqlite3.Connection) -> None:
        order.append(name)
        db.execute("INSERT INTO seen (name) VALUES (?)", (name,))

    return work


async def hold_the_thread(database: Database, order: list[str]) -> tuple[asyncio.Task[None], threading.Event]:
    """A background unit that holds the database's thread until released; returns once it is running there."""
    entered, release = threading.Event(), threading.Event()

    def held(db: sqlite3.Connection) -> None:
        entered.set()
        release.wait(10)
        order.append("background 0")

    task = asyncio.create_task(behind(database.run(held)))
    await asyncio.to_thread(entered.wait, 10)
    return task, release


async def test_a_foreground_unit_waits_behind_one_background_unit_not_the_queue_of_them(database: Database) -> None:
    """Five background units are waiting when a command's write, a relayed event's insert and a click's read
    arrive: each of those runs as soon as the one background unit on the thread is done, before the other four."""
    order: list[str] = []
    first, release = await hold_the_thread(database, order)
    waiting = [asyncio.create_task(behind(database.run(noting(order, f"background {n}")))) for n in range(1, 5)]
    await asyncio.sleep(0)  # every background unit has asked for its turn
    foreground = [
        asyncio.create_task(database.run(noting(order, "command"))),
        asyncio.create_task(database.write_once("INSERT INTO seen (name) VALUES ('relay')")),
        asyncio.create_task(database.fetch("SELECT COUNT(*) FROM seen")),
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *waiting, *foreground)
    rows = [row["name"] for row in await database.fetch("SELECT name FROM seen ORDER BY rowid")]
    assert order[:2] == ["background 0", "command"]
    assert rows[:2] == ["command", "relay"], rows  # the relay insert committed before any waiting background unit
    assert order[2:] == [f"background {n}" for n in range(1, 5)]


async def test_a_group_commit_started_from_background_work_is_still_in_the_foreground(database: Database) -> None:
    """Acknowledgements wait on the group commit, so it never takes a background turn, whoever started it."""
    order: list[str] = []
    first, release = await hold_the_thread(database, order)
    waiting = [asyncio.create_task(behind(database.run(noting(order, f"background {n}")))) for n in range(1, 3)]
    await asyncio.sleep(0)
    grouped = asyncio.create_task(behind(database.run_grouped(noting(order, "acknowledged"))))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *waiting, grouped)
    assert order == ["background 0", "acknowledged", "background 1", "background 2"]


async def test_behind_ends_with_the_work_it_wraps(database: Database) -> None:
    """Awaiting ``behind(...)`` inline leaves the caller in the foreground afterwards."""
    order: list[str] = []
    await behind(database.run(noting(order, "background")))
    first, release = await hold_the_thread(database, order)
    later = asyncio.create_task(behind(database.run(noting(order, "background later"))))
    await asyncio.sleep(0)
    mine = asyncio.create_task(database.run(noting(order, "mine")))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, later, mine)
    assert order[1:] == ["background 0", "mine", "background later"]
