"""Years of history stay fast: every query a command, the Home tab or a timer runs reads an index, not the table.

Each test runs one operation through the store's API on a real database with a mix of cases, records every
statement as the store sent it (SQL and bound values, before SQLite expands them), and asks SQLite for its
plan with those same values: a full SCAN of requests or audit, or a sort of every open case, fails.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from harness import SettableClock

from core import RequestKind, TaskError
from handlers.kinds.registry import KINDS, free_text
from store import EmailCipher, Notice, Request, RequestStatus, Store
from store._schema import migrate

DAY = 86_400.0
START = 1_700_000_000.0


class Recording:
    """The sqlite3 connection, noting each statement and its values as the store hands them over."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self._real = real
        self.seen: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        self.seen.append((sql, tuple(params)))
        return self._real.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        rows = list(rows)
        if rows:
            self.seen.append((sql, tuple(rows[0])))
        return self._real.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


FREE_TEXT = free_text(KINDS)
ONE_POST = [Notice("reply")]  # a thread reply, as a change queues it


async def fill(store: Store, clock: SettableClock, count: int) -> list[Request]:
    """A history through the API: mostly closed, some open, some rejected or abandoned, with reminders sent."""
    made = []
    for i in range(count):
        clock.now = START + i * 3_600.0
        request, _ = await store.requests.create(
            kind=RequestKind.RETRIEVAL,
            email=f"shopper{i % 40}@example.com",
            email_masked=f"s***{i % 40}@example.com",
            requester=f"U0STAFF{i % 3}",
            channel="C0CASES",
            due_at=clock.now + 30 * DAY,
            deadline="30 days",
            outside_ref=f"ZD-{i}" if i % 2 else None,
        )
        if i % 10 == 9:
            await store.requests.abandon(request.id, actor="bot", reason="not in channel")
            continue
        await store.outbox.thread_opened(request.id, f"{clock.now:.6f}")
        if i % 10 == 8:
            await store.requests.record_start_rejected(request.id, [TaskError("X", "no")], notices=())
            continue
        await store.requests.record_task_started(request.id, f"task-{i}", notices=ONE_POST)
        if i % 10 == 7:
            made.append(request)
            continue  # open, in progress
        await store.requests.record_task_state(
            request.id,
            from_={RequestStatus.IN_PROGRESS},
            to=RequestStatus.COMPLETED,
            errors=[],
            action="completed",
            notices=ONE_POST,
        )
        if i % 10 != 6:
            await store.cases.close(request.id, user="U0STAFF0", notices=ONE_POST)
        made.append(request)
    await store._database.run(lambda db: db.execute("ANALYZE"))
    return made


@pytest.fixture
async def history(tmp_path: Path) -> AsyncIterator[tuple[Store, SettableClock]]:
    clock = SettableClock(START)
    store = await Store.open(tmp_path / "history.db", cipher=EmailCipher(os.urandom(32)), clock=clock)
    try:
        await fill(store, clock, 300)
        clock.now = START + 300 * 3_600.0
        yield store, clock
    finally:
        await store.close()


@contextmanager
def recording(store: Store) -> Iterator[Recording]:
    connection = store._database.connection
    real = connection.raw
    recorder = Recording(real)
    connection.raw = recorder  # type: ignore[assignment]  # every unit gets ``raw`` when it runs
    try:
        yield recorder
    finally:
        connection.raw = real


async def plans(store: Store, recorder: Recording) -> list[tuple[str, list[str]]]:
    """Each recorded statement (that reads or changes rows) with SQLite's plan for it, with its own values."""

    def explain(db: sqlite3.Connection) -> list[tuple[str, list[str]]]:
        out = []
        for sql, params in recorder.seen:
            if sql.lstrip().split(None, 1)[0].upper() in ("SELECT", "UPDATE", "DELETE"):
                cursor = db.execute(f"EXPLAIN QUERY PLAN {sql}", params)
                out.append((sql, [str(row[3]) for row in cursor.fetchall()]))
                cursor.close()
        return out

    return await store._database.connection.call(explain)


HISTORY = ("requests", "audit", "outbox")  # the tables that grow with every case ever made
# A range with only a lower bound (``IS NOT NULL`` is planned as ``x>?``) on an index of every row reads them all.
_OPEN_ENDED = re.compile(r"USING (?:COVERING )?INDEX (\w+) \(\w+>\?\)$")


def _partial_indexes() -> set[str]:
    """The indexes that hold a slice of their table (open cases, pending posts...), not every row of it."""
    db = sqlite3.connect(":memory:")
    db.isolation_level = None  # as the store's connection: the migrations say BEGIN themselves
    migrate(db)
    rows = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'").fetchall()
    db.close()
    return {name for name, sql in rows if sql and " WHERE " in sql}


PARTIAL = _partial_indexes()


def assert_indexed(found: list[tuple[str, list[str]]], *, uses: str, sorted_ok: bool = False) -> None:
    """No statement reads a history table whole: no scan of its rows, nor of an index over all of them (a
    partial index holds a slice: open cases, pending posts); ``uses`` is read; no open-case list is sorted
    whole."""
    assert found, "the operation ran no query"
    every = [step for _, plan in found for step in plan]
    for sql, plan in found:
        for step in plan:
            for table in HISTORY:
                if step.startswith(f"SCAN {table}"):
                    index = step.rsplit(" ", 1)[-1]
                    assert "USING" in step and index in PARTIAL, (sql, plan)
            open_ended = _OPEN_ENDED.search(step)
            assert not (open_ended and open_ended.group(1) not in PARTIAL), (sql, plan)
            if not sorted_ok:
                assert "TEMP B-TREE" not in step, (sql, plan)
    assert any(uses in step for step in every), (uses, found)


async def test_status_by_email_reads_the_email_index(history: tuple[Store, SettableClock]) -> None:
    """``status <email>`` finds the shopper's requests by the keyed hash, through its index."""
    store, _ = history
    with recording(store) as recorder:
        assert await store.requests.for_email("shopper3@example.com")
    assert_indexed(await plans(store, recorder), uses="requests_by_email_kind", sorted_ok=True)


async def test_status_by_task_reads_the_task_index(history: tuple[Store, SettableClock]) -> None:
    """``status <task>`` finds the request by task id through the column's unique index."""
    store, _ = history
    with recording(store) as recorder:
        assert await store.requests.for_task("task-3") is not None
    assert_indexed(await plans(store, recorder), uses="(task_id=?)")


async def test_status_by_outside_ref_reads_the_ref_index(history: tuple[Store, SettableClock]) -> None:
    """``status <ref>`` finds the newest case with staff's ticket reference through its partial index."""
    store, _ = history
    with recording(store) as recorder:
        assert await store.requests.for_outside_ref("ZD-3") is not None
    assert_indexed(await plans(store, recorder), uses="requests_by_outside_ref")


async def test_list_reads_a_page_of_the_requesters_open_cases(history: tuple[Store, SettableClock]) -> None:
    """``list`` (and its **More**) reads one page of the asker's open cases in due order, not all of them."""
    store, _ = history
    with recording(store) as recorder:
        first = await store.cases.open(requester="U0STAFF1", limit=5)
        await store.cases.open(requester="U0STAFF1", limit=5, after=(first[-1].due_at, first[-1].id))
    assert_indexed(await plans(store, recorder), uses="requests_open_by_requester")


async def test_list_all_and_home_read_a_page_of_open_cases_in_due_order(history: tuple[Store, SettableClock]) -> None:
    """``list all`` and the Home tab's team listing read one page of open cases from the due-date index."""
    store, _ = history
    with recording(store) as recorder:
        first = await store.cases.open(limit=5)
        await store.cases.open(limit=5, after=(first[-1].due_at, first[-1].id))
    assert_indexed(await plans(store, recorder), uses="requests_open_by_due")


async def test_home_reads_the_viewers_last_answered_cases_from_the_closed_index(
    history: tuple[Store, SettableClock],
) -> None:
    """The Home tab's recently answered cases (with their outcome) are read newest first from an index of closed
    cases, not from the whole history, and not sorted."""
    store, _ = history
    with recording(store) as recorder:
        answered = await store.cases.answered(requester="U0STAFF1", limit=5)
    assert len(answered) == 5 and [r.closed_at for r in answered] == sorted(
        (r.closed_at for r in answered), reverse=True
    )
    assert_indexed(await plans(store, recorder), uses="requests_answered_by_requester")


async def test_home_and_list_totals_count_open_cases_in_their_indexes(history: tuple[Store, SettableClock]) -> None:
    """The "20 of N" under a long Home tab or list counts the open-case indexes, never the whole history."""
    store, _ = history
    with recording(store) as recorder:
        assert await store.cases.open_count() > 0
        await store.cases.open_count(requester="U0STAFF1")
    found = await plans(store, recorder)
    assert_indexed(found, uses="requests_open_by_due")
    assert_indexed(found, uses="requests_open_by_requester")


async def test_duplicate_check_reads_the_shoppers_requests_by_index(history: tuple[Store, SettableClock]) -> None:
    """The duplicate check of a new request looks among that shopper's requests of that kind only."""
    store, _ = history
    with recording(store) as recorder:
        await store.requests.create(
            kind=RequestKind.RETRIEVAL,
            email="shopper5@example.com",
            email_masked="s***5@example.com",
            requester="U0STAFF0",
            channel="C0CASES",
            due_at=START + 400 * DAY,
            deadline="30 days",
            duplicate_window=DAY,
        )
    assert_indexed(await plans(store, recorder), uses="requests_by_email_kind", sorted_ok=True)


async def test_reconciler_selection_reads_unfinished_oldest_first_by_index(
    history: tuple[Store, SettableClock],
) -> None:
    """A reconciler pass pages through unfinished requests oldest first, from their own index."""
    store, clock = history
    with recording(store) as recorder:
        page = await store.requests.unfinished(due_by=clock.now, limit=5)
        await store.requests.unfinished(due_by=clock.now, limit=5, after=(page[-1].created_at, page[-1].id))
    found = await plans(store, recorder)
    assert_indexed(found, uses="requests_unfinished_by_age")


async def test_reminder_pass_reads_only_cases_whose_next_reminder_is_due(history: tuple[Store, SettableClock]) -> None:
    """A reminder pass reads the cases whose next reminder time has come, from requests_remind_at: a case
    reminded, or one whose next reminder is days away, is not read."""
    store, clock = history
    clock.now = START + 30 * DAY  # the first cases' reminders are due
    first = await store.cases.reminders_due()
    for request in first[:3]:
        await store.cases.record_reminder(request, ["overdue"], notices=(), next_at=None)
    for request in first[3:6]:
        await store.cases.remind_later(request, at=clock.now + 5 * DAY)
    with recording(store) as recorder:
        due = await store.cases.reminders_due()
    assert due and not {r.id for r in due} & {r.id for r in first[:6]}
    assert_indexed(await plans(store, recorder), uses="requests_remind_at")


async def test_a_metrics_scrape_and_a_health_check_read_no_history(history: tuple[Store, SettableClock]) -> None:
    """/metrics and /readyz (counts and backlog) read kept counts and partial indexes: no scan of requests,
    audit or outbox, and no GROUP BY over every request ever made."""
    store, _ = history
    with recording(store) as recorder:
        counts = await store.cases.counts()
        await store.backlog()
    found = await plans(store, recorder)
    assert_indexed(found, uses="request_counts")
    assert_indexed(found, uses="outbox_gave_up")
    assert_indexed(found, uses="requests_open_by_due")
    assert counts.open > 0 and sum(counts.by_status.values()) == 300


async def test_purge_reads_candidates_and_their_posts_by_index(history: tuple[Store, SettableClock]) -> None:
    """Retention finds what to purge by when it ended, and empties those requests' posts by request."""
    store, _ = history
    with recording(store) as recorder:
        assert await store.cases.purge_expired(older_than=START + 100 * 3_600.0, free_text=FREE_TEXT, batch=10)
    found = await plans(store, recorder)
    assert_indexed(found, uses="requests_to_purge")
    assert_indexed(found, uses="outbox_by_request")


async def test_purge_goes_in_bounded_batches_and_lets_commands_in_between(history: tuple[Store, SettableClock]) -> None:
    """Purging goes in short transactions of at most ``batch`` requests, and a command waiting on the
    database is served between two of them, not after the whole purge."""
    store, _ = history
    older_than = START + 200 * 3_600.0
    with recording(store) as recorder:
        purge = asyncio.create_task(store.cases.purge_expired(older_than=older_than, free_text=FREE_TEXT, batch=20))
        await asyncio.sleep(0)  # the purge holds the database for its first batch
        assert await store.requests.for_task("task-250") is not None  # a status command meanwhile
        purged = await purge
    statements = [sql for sql, _ in recorder.seen]
    batches = [i for i, sql in enumerate(statements) if sql.startswith("SELECT id, errors, params FROM requests")]
    status = next(i for i, sql in enumerate(statements) if "WHERE task_id = ?" in sql)
    assert len(purged) > 100 and len(batches) == len(purged) // 20 + 1
    assert batches[0] < status < batches[1], "the command waited for more than one batch"
    transactions = [i for i, sql in enumerate(statements) if sql == "BEGIN IMMEDIATE"]
    assert len(transactions) == len(batches)
    for begin, end in zip(transactions, [*transactions[1:], len(statements)], strict=True):
        marked = [p for sql, p in recorder.seen[begin:end] if sql.startswith("UPDATE requests SET email_hash")]
        assert len(marked) <= 1  # one executemany per batch, of at most 20 rows (below)
    async with asyncio.timeout(5):
        rows = await store._database.fetch("SELECT COUNT(*) AS n FROM requests WHERE purged_at IS NOT NULL")
    assert rows[0]["n"] == len(purged)
