"""The event inbox, the Slack outbox and the readiness backlog: the bot's two durable queues.

A mixin of ``Store``: the same connection and transactions, kept in its own
module so that each file stays about one job.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from store._database import Database
from store._records import OPENS_THREAD, InboxEvent, OutboxEntry, OutboxMessage, Request, RequestStatus
from store._rows import UNFINISHED, append_audit, enqueue, fetch_request

__all__ = ["OPENER_GRACE", "QueueQueries"]

OPENER_GRACE = 5.0  # seconds the worker leaves a new thread's first message to the command that queued it
_DUE_FOR_WORKER = f"(o.purpose != '{OPENS_THREAD}' OR o.attempts > 0 OR o.created_at <= ?)"


class QueueQueries:
    """Queries and changes on the inbox and outbox; mixed into ``Store``, which provides the attributes below."""

    _clock: Callable[[], float]
    database: Database
    _fetch: Callable[..., Awaitable[list[Any]]]

    # ----------------------------------------------------------------- inbox

    async def add_event(self, *, event_id: str, event_type: str, task_id: str) -> bool:
        """Store a relayed event durably; False when this event id was stored before.

        One statement in one round trip, ahead of background work: EventBridge waits for the answer.
        """
        changed = await self.database.write_once(
            "INSERT OR IGNORE INTO inbox (event_id, event_type, task_id, received_at) VALUES (?, ?, ?, ?)",
            (event_id, event_type, task_id, self._clock()),
            urgent=True,
        )
        return changed == 1

    async def pending_events(self, *, limit: int = 100) -> list[InboxEvent]:
        """Unprocessed events whose task the bot knows and that are due (not backing off), oldest first."""
        rows = await self._fetch(
            "SELECT i.event_id, i.event_type, i.task_id, i.received_at, i.attempts FROM inbox i"
            " JOIN requests r ON r.task_id = i.task_id"
            " WHERE i.processed_at IS NULL AND i.next_attempt_at <= ? ORDER BY i.received_at LIMIT ?",
            (self._clock(), limit),
        )
        return [InboxEvent(row[0], row[1], row[2], row[3], row[4]) for row in rows]

    async def next_event_due(self) -> float | None:
        """When the earliest pending event of a known task is due, or None if none waits."""
        rows = await self._fetch(
            "SELECT MIN(i.next_attempt_at) FROM inbox i JOIN requests r ON r.task_id = i.task_id"
            " WHERE i.processed_at IS NULL"
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    async def events_retry(self, task_id: str, *, at: float) -> None:
        """Acting on this task's events failed: they wait until ``at`` (their own backoff), the others do not."""
        await self.database.write_once(
            "UPDATE inbox SET attempts = attempts + 1, next_attempt_at = ? WHERE task_id = ? AND processed_at IS NULL",
            (at, task_id),
        )

    async def mark_events_processed(self, task_id: str, *, request_id: int | None) -> None:
        """Every pending event of this task has been acted on; each is noted in the audit log."""
        now = self._clock()

        def mark(db: sqlite3.Connection) -> None:
            events = db.execute(
                "SELECT event_id, event_type FROM inbox WHERE task_id = ? AND processed_at IS NULL", (task_id,)
            ).fetchall()
            db.execute("UPDATE inbox SET processed_at = ? WHERE task_id = ? AND processed_at IS NULL", (now, task_id))
            for event_id, event_type in events:
                detail = f"{event_type} ({event_id})"
                append_audit(db, at=now, request_id=request_id, actor="amazon", action="event received", detail=detail)

        await self.database.run(mark)

    async def prune_inbox(self, *, older_than: float) -> int:
        """Forget events received before ``older_than``: processed ones, and ones naming a task never ours.

        Their ids only matter while a sender may still retry (EventBridge: 24 hours); an event for a
        task the bot never learns of would otherwise wait for it forever.
        """
        return await self.database.write_once(
            "DELETE FROM inbox WHERE received_at < ? AND (processed_at IS NOT NULL"
            " OR task_id NOT IN (SELECT task_id FROM requests WHERE task_id IS NOT NULL))",
            (older_than,),
        )

    # ----------------------------------------------------------------- outbox

    async def due_outbox(self, *, limit: int = 50, request_id: int | None = None) -> list[OutboxEntry]:
        """The oldest unsent entry of each request (or of ``request_id`` alone), if due: posts for one
        request stay in order.

        A new thread's first message is the command's to send (it tells the person who typed it how
        that went): the worker takes it only after that first attempt, or ``OPENER_GRACE`` later.
        """
        now = self._clock()
        if request_id is None:
            scope, params = f" AND {_DUE_FOR_WORKER}", (now - OPENER_GRACE,)
        else:
            scope, params = " AND o.request_id = ?", (request_id,)
        rows = await self._fetch(
            "SELECT o.id, o.request_id, o.method, o.payload, o.attempts, o.purpose, o.last_error FROM outbox o"
            f" WHERE o.sent_at IS NULL AND o.gave_up_at IS NULL AND o.next_attempt_at <= ?{scope}"
            " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.request_id = o.request_id AND p.id < o.id"
            "                 AND p.sent_at IS NULL AND p.gave_up_at IS NULL)"
            " ORDER BY o.id LIMIT ?",
            (now, *params, limit),
        )
        return [OutboxEntry(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6]) for r in rows]

    async def outbox_thread_opened(self, entry: OutboxEntry, thread_ts: str) -> None:
        """The thread's first message is posted: mark it sent and let the request start, in one transaction."""
        now = self._clock()

        def opened(db: sqlite3.Connection) -> None:
            db.execute("UPDATE outbox SET sent_at = ?, last_error = NULL WHERE id = ?", (now, entry.id))
            db.execute(
                "UPDATE requests SET status = ?, thread_ts = ?, updated_at = ? WHERE id = ? AND status = ?",
                (RequestStatus.STARTING.value, thread_ts, now, entry.request_id, RequestStatus.NEW.value),
            )

        await self.database.run(opened)

    async def ensure_opener(self, request_id: int, *, render: Callable[[Request], Iterable[OutboxMessage]]) -> bool:
        """Queue the thread's first message of a NEW request that has none waiting (one stored by an older
        version of the bot); True if one was queued."""
        now = self._clock()

        def ensure(db: sqlite3.Connection) -> bool:
            waiting = db.execute(
                "SELECT 1 FROM outbox WHERE request_id = ? AND purpose = ? AND sent_at IS NULL AND gave_up_at IS NULL",
                (request_id, OPENS_THREAD),
            ).fetchone()
            request = fetch_request(db, request_id)
            if waiting is not None or request is None or request.status is not RequestStatus.NEW:
                return False
            enqueue(db, request, render, now)
            return True

        queued: bool = await self.database.run(ensure)
        return queued

    async def queue_notice(self, request_id: int, message: OutboxMessage) -> None:
        """Queue a message for the requester (a direct message), after the request's other posts."""
        now = self._clock()

        def queue(db: sqlite3.Connection) -> None:
            request = fetch_request(db, request_id)
            if request is not None:
                enqueue(db, request, lambda _: [message], now)

        await self.database.run(queue)

    async def outbox_waiting_on(self, error: str) -> int:
        """How many unsent posts last failed with ``error``: an outage lasts while any does."""
        rows = await self._fetch(
            "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND gave_up_at IS NULL AND last_error = ?", (error,)
        )
        return int(rows[0][0])

    async def next_outbox_due(self) -> float | None:
        """When the earliest head entry (the next one of its request) is due, or None if none is waiting."""
        rows = await self._fetch(
            "SELECT MIN(CASE WHEN o.purpose = ? AND o.attempts = 0 THEN MAX(o.next_attempt_at, o.created_at + ?)"
            " ELSE o.next_attempt_at END) FROM outbox o WHERE o.sent_at IS NULL AND o.gave_up_at IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.request_id = o.request_id AND p.id < o.id"
            "                 AND p.sent_at IS NULL AND p.gave_up_at IS NULL)",
            (OPENS_THREAD, OPENER_GRACE),
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    async def outbox_attempting(self, entry_id: int) -> None:
        """Record, before the call, that it is being made: a crash after this may have sent it."""
        await self.database.write_once("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (entry_id,))

    async def outbox_sent(self, entry_id: int) -> None:
        await self.database.write_once(
            "UPDATE outbox SET sent_at = ?, last_error = NULL WHERE id = ?", (self._clock(), entry_id)
        )

    async def outbox_retry(self, entry_id: int, *, at: float, error: str) -> None:
        await self.database.write_once(
            "UPDATE outbox SET next_attempt_at = ?, last_error = ? WHERE id = ?", (at, error, entry_id)
        )

    async def outbox_give_up(self, entry: OutboxEntry, *, error: str) -> None:
        """Slack refused the call for good; keep the reason in the audit log."""
        now = self._clock()

        def give_up(db: sqlite3.Connection) -> None:
            db.execute("UPDATE outbox SET gave_up_at = ?, last_error = ? WHERE id = ?", (now, error, entry.id))
            detail = f"{entry.method}: {error}"
            append_audit(
                db, at=now, request_id=entry.request_id, actor="bot", action="slack post abandoned", detail=detail
            )

        await self.database.run(give_up)

    # ----------------------------------------------------------------- readiness

    async def backlog(self) -> dict[str, float | int | None]:
        """What is waiting, and for how long: for an operator's alarms, not for users."""
        now = self._clock()
        marks = ", ".join("?" for _ in UNFINISHED)
        rows = await self._fetch(
            "SELECT"
            " (SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL),"
            " (SELECT MIN(received_at) FROM inbox WHERE processed_at IS NULL"
            "    AND task_id IN (SELECT task_id FROM requests WHERE task_id IS NOT NULL)),"
            " (SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND gave_up_at IS NULL),"
            " (SELECT MIN(created_at) FROM outbox WHERE sent_at IS NULL AND gave_up_at IS NULL),"
            " (SELECT COUNT(*) FROM outbox WHERE gave_up_at IS NOT NULL),"
            f" (SELECT COUNT(*) FROM requests WHERE status IN ({marks})),"
            f" (SELECT MIN(created_at) FROM requests WHERE status IN ({marks}))",
            (*UNFINISHED, *UNFINISHED),
        )
        inbox, inbox_oldest, outbox, outbox_oldest, gave_up, unfinished, unfinished_oldest = rows[0]

        def age(since: float | None) -> float | None:
            return round(now - since, 3) if since is not None else None

        return {
            "inbox_pending": inbox,
            "inbox_oldest_age_seconds": age(inbox_oldest),
            "outbox_pending": outbox,
            "outbox_oldest_age_seconds": age(outbox_oldest),
            "outbox_abandoned": gave_up,
            "requests_unfinished": unfinished,
            "requests_oldest_unfinished_age_seconds": age(unfinished_oldest),
        }
