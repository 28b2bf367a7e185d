"""What the store keeps so a scrape and a reminder pass read no history (migration 10) agrees with the rows.

/metrics reads counts by kind and status that triggers keep as requests change, instead of grouping every
request ever made; a reminder pass reads each case's next reminder time instead of every case with one
still to come. Both are only right if they agree with the requests themselves, through every kind of
change, and across the upgrade that introduced them on a database with years of cases in it.
"""

from __future__ import annotations

import os
import random
import sqlite3
from collections import Counter
from pathlib import Path

from harness import SettableClock

from core import RequestKind, TaskError
from handlers.deadlines import DAY
from handlers.kinds.registry import KINDS, free_text
from store import EmailCipher, Notice, Request, RequestStatus, Store

START = 1_700_000_000.0
POST = [Notice("reply")]


class NoCounters:
    def reminder_sent(self) -> None:
        pass


async def history(store: Store, clock: SettableClock, count: int, *, seed: int = 10) -> list[Request]:
    """Both kinds through every change the store makes to a status, in a random order of outcomes."""
    rng = random.Random(seed)
    made = []
    for i in range(count):
        clock.now = START + i * 3_600.0
        kind = rng.choice([RequestKind.RETRIEVAL, RequestKind.ERASURE])
        request, _ = await store.requests.create(
            kind=kind,
            email=f"shopper{i}@example.com",
            email_masked=f"s***{i}@example.com",
            requester=f"U0STAFF{i % 3}",
            channel="C0CASES",
            due_at=clock.now + rng.choice([5, 10, 30]) * DAY,
            deadline="30 days",
        )
        made.append(request)
        roll = rng.random()
        if roll < 0.1:
            await store.requests.abandon(request.id, actor="bot", reason="not in channel")
            continue
        await store.outbox.thread_opened(request.id, f"{clock.now:.6f}", to=KINDS[kind].opened)
        if kind == RequestKind.ERASURE:
            if roll < 0.2:
                await store.decisions.reject(request.id, user="U0STAFF1", reason="no", notices=POST)
                continue
            await store.decisions.approve(request.id, user="U0STAFF2", notices=POST)
        if roll < 0.3:
            await store.requests.record_start_rejected(request.id, [TaskError("X", "no")], notices=POST)
            continue
        await store.requests.record_task_started(request.id, f"task-{i}", notices=POST)
        if roll < 0.5:
            continue  # open, in progress
        ended = RequestStatus.FAILED if roll < 0.6 else RequestStatus.COMPLETED
        await store.requests.record_task_state(
            request.id, from_={RequestStatus.IN_PROGRESS}, to=ended, errors=[], action="ended", notices=POST
        )
        if roll > 0.7:
            await store.cases.close(request.id, user="U0STAFF0", notices=POST)
    clock.now = START + count * 3_600.0
    await store.cases.purge_expired(older_than=START + count * 1_000.0, free_text=free_text(KINDS))
    return made


def counted(path: Path, now: float) -> tuple[Counter[tuple[str, str]], int, int, int]:
    """The counts the slow way, from every row: by (kind, status), open, open past the due date, unfinished."""
    with sqlite3.connect(path) as db:
        by_status = Counter(
            {(k, s): n for k, s, n in db.execute("SELECT kind, status, COUNT(*) FROM requests GROUP BY 1, 2")}
        )
        open_cases = "closed_at IS NULL AND status NOT IN ('REJECTED', 'ABANDONED')"
        (opened,) = db.execute(f"SELECT COUNT(*) FROM requests WHERE {open_cases}").fetchone()
        (overdue,) = db.execute(f"SELECT COUNT(*) FROM requests WHERE {open_cases} AND due_at < ?", (now,)).fetchone()
        moving = "status IN ('NEW', 'STARTING', 'ON_HOLD', 'IN_PROGRESS')"
        (unfinished,) = db.execute(f"SELECT COUNT(*) FROM requests WHERE {moving}").fetchone()
    return by_status, opened, overdue, unfinished


async def test_kept_counts_agree_with_every_row_through_every_change(tmp_path: Path) -> None:
    """After creates, rejections, approvals, starts, failures, completions, closes and a purge of both kinds,
    the counts a scrape and a health check read (by kind and status, open, overdue, unfinished) are the
    ones a count over every request gives."""
    clock = SettableClock(START)
    path = tmp_path / "counts.db"
    store = await Store.open(path, cipher=EmailCipher(os.urandom(32)), clock=clock)
    try:
        await history(store, clock, 200)
        counts = await store.cases.counts()
        backlog = await store.backlog()
    finally:
        await store.close()
    by_status, opened, overdue, unfinished = counted(path, clock.now)
    assert len(by_status) >= 6  # the history reached many statuses of both kinds
    assert counts.by_status == dict(by_status)
    assert (counts.open, counts.overdue, backlog["requests_unfinished"]) == (opened, overdue, unfinished)
    assert 0 < overdue < opened and unfinished > 0
