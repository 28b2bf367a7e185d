"""WAL checkpoints run beside the command connection, never on it, and keep the WAL bounded (issue 14).

SQLite's automatic checkpoint ran inside the commit of whichever command crossed 1,000 WAL pages: the
new request's p99 tail. While the bot serves, its one connection's autocheckpoint is off and a loop on
a second connection checkpoints (store/_checkpoints.py); without that loop SQLite's own stays on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from unittest import mock

import pytest
from harness import Harness, eventually, running_bot

from core import RequestKind
from store import EmailCipher, Store, open_verified
from store._checkpoints import Checkpoints
from store._database import AUTOCHECKPOINT_PAGES, WAL_LIMIT

SHOPPERS = itertools.count()


def wal_bytes(store: Store) -> int:
    wal = store.checkpoints.wal
    return wal.stat().st_size if wal.exists() else 0


async def autocheckpoint(store: Store) -> int:
    return int((await store._database.fetch("PRAGMA wal_autocheckpoint"))[0][0])


async def new_requests(store: Store, count: int, *, stop_above: int | None = None) -> int:
    """Store ``count`` new requests back to back (each a check, an insert and a commit, as /data-request does);
    the largest the WAL file was after any of them. ``stop_above``: stop early once it is that big."""
    largest = 0
    for _ in range(count):
        await store.requests.create(
            kind=RequestKind.RETRIEVAL,
            email=f"shopper{next(SHOPPERS)}@example.com",  # never seen: each one inserted and committed
            email_masked="s***@example.com",
            requester="U0ALICE",
            channel="C0PRIVACY",
            due_at=2_000_000_000.0,
            deadline="30 days",
            duplicate_window=30 * 86_400.0,
        )
        largest = max(largest, wal_bytes(store))
        if stop_above is not None and largest > stop_above:
            break
    return largest


@contextlib.asynccontextmanager
async def checkpointing(checkpoints: Checkpoints) -> AsyncIterator[asyncio.Task[None]]:
    """The checkpoint loop running (the command connection's own checkpoints off), then stopped."""
    task = asyncio.create_task(checkpoints.run())
    try:
        async with asyncio.timeout(5):
            await checkpoints.running.wait()
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "requests.db", cipher=EmailCipher(os.urandom(32)))
    try:
        yield opened
    finally:
        await opened.close()


async def led_loop(harness: Harness, name: str) -> asyncio.Task[None]:
    """The loop ``name``'s task, once the leader (on SQLite, the one copy, at once) has started it."""

    async def started() -> bool:
        return any(t.get_name() == name for t in harness.runtime.workers.tasks)

    await eventually(started)
    (task,) = [t for t in harness.runtime.workers.tasks if t.get_name() == name]
    return task


async def test_a_serving_bot_checkpoints_beside_its_connection_and_stops_doing_so_with_the_bot(tmp_path: Path) -> None:
    """``serve`` runs the checkpoint loop as a supervised worker: meanwhile the command connection's
    autocheckpoint is 0, and when the bot stops the loop has ended (its task done, its connection closed)."""
    async with running_bot(tmp_path) as harness:
        store = harness.runtime.store
        task = await led_loop(harness, "checkpoints")
        async with asyncio.timeout(5):
            await store.checkpoints.running.wait()
        assert await autocheckpoint(store) == 0
        assert not task.done()
    assert task.done()
    assert not store.checkpoints.running.is_set()


async def test_while_the_loop_runs_a_commit_never_folds_the_wal(store: Store) -> None:
    """With the loop started but not yet at its first tick, commits go on past SQLite's 1,000 pages and the
    WAL file grows past three times that: no commit on the command connection checkpointed. (With the
    automatic checkpoint on, the same writes keep it near 4 MB: the offline test below.) When the loop
    stops, the command connection checkpoints by itself again."""
    async with checkpointing(Checkpoints(store._database, interval=3600)):
        assert await autocheckpoint(store) == 0
        largest = await new_requests(store, 20_000, stop_above=3 * WAL_LIMIT)
        assert largest > 3 * WAL_LIMIT
    assert await autocheckpoint(store) == AUTOCHECKPOINT_PAGES


async def test_the_loop_keeps_the_wal_bounded_as_requests_keep_coming(store: Store) -> None:
    """3,000 new requests, 50 at a time with a tick of the loop between (about 150 MB of WAL when nothing
    checkpoints, as the test above shows it growing), leave the WAL file near SQLite's usual 4 MB: each
    passive checkpoint catches up, the next commit starts the WAL over and trims the file."""
    checkpoints = Checkpoints(store._database, interval=0.001)
    largest = 0
    async with checkpointing(checkpoints):
        for _ in range(60):
            largest = max(largest, await new_requests(store, 50))
            ticks = checkpoints.passes

            async def ticked(ticks: int = ticks) -> bool:
                return checkpoints.passes > ticks + 1  # a whole pass began after these writes

            await eventually(ticked)
    assert largest < 2 * WAL_LIMIT, f"the WAL reached {largest / 2**20:.1f} MB"
    assert checkpoints.failures == 0


async def test_a_wal_past_the_cap_is_emptied_even_though_writes_never_paused(store: Store) -> None:
    """Writes that never pause keep a passive checkpoint from ever letting the WAL start over; once the
    file is past the cap, the loop's next pass empties it with a truncating checkpoint."""
    checkpoints = Checkpoints(store._database, interval=3600, cap=WAL_LIMIT)
    async with checkpointing(checkpoints):
        assert await new_requests(store, 20_000, stop_above=2 * WAL_LIMIT) > 2 * WAL_LIMIT
        connection = await checkpoints.connect()
        try:
            await checkpoints.once(connection)
        finally:
            await connection.close()
    assert wal_bytes(store) == 0
    assert (checkpoints.truncations, checkpoints.failures) == (1, 0)


async def test_a_truncating_checkpoint_kept_waiting_is_no_failure_and_is_tried_again(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A reader holding its snapshot beside the bot (a backup, an audit export) keeps the truncating
    checkpoint out: it gives up after its short wait (while it waits, new writes wait too), logs nothing and
    counts nothing as failed; the next tick after the reader is done empties the WAL."""
    checkpoints = Checkpoints(store._database, interval=3600, cap=WAL_LIMIT)
    async with checkpointing(checkpoints):
        assert await new_requests(store, 20_000, stop_above=2 * WAL_LIMIT) > 2 * WAL_LIMIT
        reader = sqlite3.connect(store._database.path)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM requests").fetchone()  # a snapshot the WAL must keep
        connection = await checkpoints.connect()
        try:
            with caplog.at_level(logging.INFO, logger="store._checkpoints"):
                await checkpoints.once(connection)
            assert wal_bytes(store) > WAL_LIMIT
            assert (checkpoints.deferred, checkpoints.failures, checkpoints.failing) == (1, 0, False)
            assert not caplog.records
            reader.rollback()
            reader.close()
            await checkpoints.once(connection)
        finally:
            await connection.close()
    assert wal_bytes(store) == 0
    assert (checkpoints.truncations, checkpoints.deferred, checkpoints.failures) == (2, 1, 0)


async def test_an_offline_store_keeps_sqlite_s_own_checkpoints(tmp_path: Path) -> None:
    """``audit``, ``purge`` and ``rotate-key`` open the store without the loop (``open_verified``): its
    commits checkpoint as SQLite's do, so a long run keeps the WAL near 1,000 pages (trimmed back to that
    by ``journal_size_limit``), never growing without bound."""
    store = await open_verified(tmp_path / "requests.db", configured=None, create_key=True)
    try:
        assert await autocheckpoint(store) == AUTOCHECKPOINT_PAGES
        largest = await new_requests(store, 2000)
    finally:
        await store.close()
    assert largest < 2 * WAL_LIMIT, f"the WAL reached {largest / 2**20:.1f} MB"


async def test_a_failing_checkpoint_is_logged_once_and_readyz_still_tells_the_truth(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Checkpoints refused (SQLITE_BUSY, a disk error) are logged once for the episode, not at every tick;
    the loop keeps going, /readyz stays 200 (writes still work) and says nothing about writes failing, while
    /metrics says the checkpoints fail (the alert in docs/operating.md) and how big the WAL is; when checkpoints work
    again the log says so once and the gauge goes back to 0."""
    refused = sqlite3.OperationalError("database is locked")
    async with running_bot(tmp_path) as harness:
        checkpoints = harness.runtime.store.checkpoints
        task = await led_loop(harness, "checkpoints")
        caplog.set_level(logging.INFO, logger="store._checkpoints")
        with mock.patch("store._checkpoints._checkpoint", side_effect=refused):

            async def refused_thrice() -> bool:
                return checkpoints.failures >= 3

            await eventually(refused_thrice)
            response = await harness.http.get(harness.url + "/readyz")
            assert response.status_code == 200, response.text
            assert response.json()["database_writes_failing"] is False
            assert not task.done()
            metrics = (await harness.http.get(harness.url + "/metrics")).text
            assert "data_request_bot_database_checkpoints_failing 1.0" in metrics
            (wal,) = re.findall(r"^data_request_bot_database_wal_bytes (\S+)$", metrics, re.MULTILINE)
            assert float(wal) > 0  # the start wrote to it, and a passive checkpoint leaves the file in place

        async def recovered() -> bool:
            return not checkpoints.failing

        await eventually(recovered)
        metrics = (await harness.http.get(harness.url + "/metrics")).text
        assert "data_request_bot_database_checkpoints_failing 0.0" in metrics
    said = [r.getMessage() for r in caplog.records if r.name == "store._checkpoints"]
    assert said == [
        "database: WAL checkpoint failed (database is locked); the WAL grows until one works",
        "database: WAL checkpoints work again",
    ]
