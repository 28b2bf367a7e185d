"""The event inbox: Amazon's relayed events, stored before they are acknowledged, applied once each.

``store.inbox``: the relay adds, the inbox worker takes what is pending and marks it processed (or
backs it off), and retention prunes what no sender will retry.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from store._database import CLAIM_LEASE, Database
from store._records import InboxEvent
from store._rows import ROWS_AT_ONCE, append_audit, rows_of

__all__ = ["Inbox"]


class Inbox:
    """``store.inbox``: Amazon's events, durable from the moment the relay answered."""

    def __init__(self, *, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._clock = clock

    async def add(self, *, event_id: str, event_type: str, task_id: str) -> bool:
        """Store a relayed event durably; False when this event id was stored before.

        EventBridge waits for the answer, 32 at a time in a burst: events that arrive together are stored
        together (``run_batched``), one statement for the lot, each still kept or refused as if alone: one
        crossing to the connection's thread, and on PostgreSQL one round trip, not one each
        (benchmarks/README.md, "CPU per operation" and "PostgreSQL").
        """
        return await self._database.run_batched(_store_events, (event_id, event_type, task_id, self._clock()))

    async def pending(self, *, limit: int = 100, lease: float = CLAIM_LEASE) -> list[InboxEvent]:
        """Claim for ``lease`` seconds the unprocessed events whose task the bot knows, that are due (not backing
        off) and that no other copy of the bot has claimed; return them oldest first.

        On PostgreSQL the rows are taken ``FOR UPDATE SKIP LOCKED`` and the claim does not wait for the
        writers' turn: two copies asking at once each get rows the other did not.
        """
        now = self._clock()
        skip_locked = " FOR UPDATE OF i SKIP LOCKED" if self._database.postgres else ""

        def claim(db: sqlite3.Connection) -> list[sqlite3.Row]:
            return db.execute(
                "UPDATE inbox SET claimed_until = ? WHERE event_id IN (SELECT i.event_id FROM inbox i"
                " JOIN requests r ON r.task_id = i.task_id WHERE i.processed_at IS NULL AND i.next_attempt_at <= ?"
                f" AND (i.claimed_until IS NULL OR i.claimed_until <= ?) ORDER BY i.received_at LIMIT ?{skip_locked})"
                " RETURNING event_id, event_type, task_id, received_at, attempts",
                (now + lease, now, now, limit),
            ).fetchall()

        rows = sorted(await self._database.claim(claim), key=lambda row: (row["received_at"], row["event_id"]))
        return [
            InboxEvent(
                event_id=row["event_id"],
                event_type=row["event_type"],
                task_id=row["task_id"],
                received_at=row["received_at"],
                attempts=row["attempts"],
            )
            for row in rows
        ]

    async def next_due(self) -> tuple[float, bool] | None:
        """When the earliest pending event of a known task is due, and whether that is when another copy's claim
        on it lapses (rather than the end of its own backoff); None if none waits."""
        rows = await self._database.fetch(
            "SELECT due, claimed FROM (SELECT CASE WHEN i.claimed_until > i.next_attempt_at THEN i.claimed_until"
            " ELSE i.next_attempt_at END AS due, COALESCE(i.claimed_until > i.next_attempt_at, 0 = 1) AS claimed"
            " FROM inbox i JOIN requests r ON r.task_id = i.task_id WHERE i.processed_at IS NULL) AS pending"
            " ORDER BY due LIMIT 1"
        )
        return (float(rows[0]["due"]), bool(rows[0]["claimed"])) if rows else None

    async def retry(self, task_id: str, *, at: float) -> None:
        """Acting on this task's events failed: they wait until ``at`` (their own backoff), the others do not."""
        await self._database.write_once(
            "UPDATE inbox SET attempts = attempts + 1, next_attempt_at = ?, claimed_until = NULL"
            " WHERE task_id = ? AND processed_at IS NULL",
            (at, task_id),
        )

    async def mark_processed(self, task_id: str, *, request_id: int | None) -> None:
        """Every pending event of this task has been acted on; each is noted in the audit log."""
        now = self._clock()

        def mark(db: sqlite3.Connection) -> None:
            events = db.execute(
                "SELECT event_id, event_type FROM inbox WHERE task_id = ? AND processed_at IS NULL", (task_id,)
            ).fetchall()
            db.execute("UPDATE inbox SET processed_at = ? WHERE task_id = ? AND processed_at IS NULL", (now, task_id))
            for event in events:
                detail = f"{event['event_type']} ({event['event_id']})"
                append_audit(db, at=now, request_id=request_id, actor="amazon", action="event received", detail=detail)

        await self._database.run(mark)

    async def prune(self, *, older_than: float) -> int:
        """Forget events received before ``older_than``: processed ones, and ones naming a task never ours.

        Their ids only matter while a sender may still retry (EventBridge: 24 hours); an event for a
        task the bot never learns of would otherwise wait for it forever.
        """
        return await self._database.write_once(
            "DELETE FROM inbox WHERE received_at < ? AND (processed_at IS NOT NULL"
            " OR task_id NOT IN (SELECT task_id FROM requests WHERE task_id IS NOT NULL))",
            (older_than,),
        )


def _store_events(db: sqlite3.Connection, events: list[tuple[str, str, str, float]]) -> list[bool]:
    """Whether each event was stored; an event id seen before (earlier in ``events`` too) is not stored again."""
    stored: set[str] = set()
    for start in range(0, len(events), ROWS_AT_ONCE):
        chunk = events[start : start + ROWS_AT_ONCE]
        stored.update(
            row[0]
            for row in db.execute(
                f"INSERT INTO inbox (event_id, event_type, task_id, received_at) VALUES {rows_of(len(chunk), 4)}"
                " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                [value for event in chunk for value in event],
            ).fetchall()
        )
    outcomes = []
    for event_id, *_ in events:
        outcomes.append(event_id in stored)
        stored.discard(event_id)  # the same event twice in one burst: the first is the one stored
    return outcomes
