"""The Slack outbox: every post a change causes, queued in that change's transaction and sent once, in order.

``store.outbox``: the sender takes the head entry of each request when it is due, with the request as it
stands then (the entry is a ``Notice``, put into words at that moment), claims it and records the attempt
before making it (a crash after it may have sent it), and marks it sent, retried or given up.

Several copies of the bot may share the database (PostgreSQL): the claim is a lease taken by one conditional
UPDATE, so of two copies that saw the same entry due, one sends it and the other leaves it; a copy that dies
mid-send leaves its claim to lapse, and the next attempt looks for the post before posting again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable

from store._audit import ActorNames
from store._database import CLAIM_LEASE, Database
from store._moves import Mover
from store._records import OPENS_THREAD, Moved, Notice, OutboxEntry, RequestStatus
from store._rows import REQUEST_COLUMNS, append_audit, enqueue, fetch_request, request_from_row

__all__ = ["OPENER_GRACE", "Outbox"]

OPENER_GRACE = 5.0  # seconds the worker leaves a new thread's first message to the command that queued it
_DUE_FOR_WORKER = f"(o.purpose != '{OPENS_THREAD}' OR o.attempts > 0 OR o.created_at <= ?)"
_REQUEST = ", ".join(f"r.{column.strip()}" for column in REQUEST_COLUMNS.split(","))  # read by name, as ever


class Outbox:
    """``store.outbox``: the queue of Slack calls, one head entry per request at a time."""

    def __init__(self, *, database: Database, clock: Callable[[], float] = time.time, names: ActorNames) -> None:
        self._database = database
        self._clock = clock
        self._mover = Mover(database=database, clock=clock, names=names)

    async def due(self, *, limit: int = 50, request_id: int | None = None) -> list[OutboxEntry]:
        """The oldest unsent entry of each request (or of ``request_id`` alone), if due: posts for one
        request stay in order.

        A new thread's first message is the command's to send (it tells the person who typed it how
        that went): the worker takes it only after that first attempt, or ``OPENER_GRACE`` later.
        """
        now = self._clock()
        if request_id is None:  # the worker's round: entries another copy has claimed are that copy's
            scope = f" AND {_DUE_FOR_WORKER} AND (o.claimed_until IS NULL OR o.claimed_until <= ?)"
            params: tuple[float | int, ...] = (now - OPENER_GRACE, now)
        else:
            scope, params = " AND o.request_id = ?", (request_id,)
        rows = await self._database.fetch(
            "SELECT o.id AS entry_id, o.request_id, o.method, o.payload, o.attempts, o.purpose, o.last_error,"
            f" {_REQUEST} FROM outbox o LEFT JOIN requests r ON r.id = o.request_id"
            f" WHERE o.sent_at IS NULL AND o.gave_up_at IS NULL AND o.next_attempt_at <= ?{scope}"
            " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.request_id = o.request_id AND p.id < o.id"
            "                 AND p.sent_at IS NULL AND p.gave_up_at IS NULL)"
            " ORDER BY o.id LIMIT ?",
            (now, *params, limit),
        )
        return [
            OutboxEntry(
                id=row["entry_id"],
                request_id=row["request_id"],
                method=row["method"],
                payload=json.loads(row["payload"]),
                attempts=row["attempts"],
                purpose=row["purpose"],
                last_error=row["last_error"],
                request=request_from_row(row) if row["id"] is not None else None,
            )
            for row in rows
        ]

    async def thread_opened(
        self, request_id: int, thread_ts: str, *, to: RequestStatus = RequestStatus.STARTING, sent: int | None = None
    ) -> Moved:
        """The thread's first message is posted (outbox entry ``sent``): mark it sent and move the request on
        from NEW, in one transaction; say where the request stands now.

        It goes ``to`` where its kind says: on to its start, or to wait for an approval.
        """
        now = self._clock()

        def mark_sent(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE outbox SET sent_at = ?, last_error = NULL, claimed_until = NULL WHERE id = ?", (now, sent)
            )

        return await self._mover.attempt(
            request_id,
            from_={RequestStatus.NEW},
            to=to,
            extra={"thread_ts": thread_ts},
            also=mark_sent if sent is not None else None,
        )

    async def queue_notice(self, request_id: int, notice: Notice) -> None:
        """Queue a message for the requester (a direct message), after the request's other posts."""
        now = self._clock()

        def queue(db: sqlite3.Connection) -> None:
            if fetch_request(db, request_id) is not None:
                enqueue(db, request_id, [notice], now)

        await self._database.run(queue)

    async def waiting_on(self, error: str) -> int:
        """How many unsent posts last failed with ``error``: an outage lasts while any does."""
        rows = await self._database.fetch(
            "SELECT COUNT(*) AS waiting FROM outbox WHERE sent_at IS NULL AND gave_up_at IS NULL AND last_error = ?",
            (error,),
        )
        return int(rows[0]["waiting"])

    async def last_error(self, request_id: int) -> str | None:
        """Why the request's next unsent post failed last, if it was tried and is waiting for its retry."""
        rows = await self._database.fetch(
            "SELECT last_error FROM outbox WHERE request_id = ? AND sent_at IS NULL AND gave_up_at IS NULL"
            " ORDER BY id LIMIT 1",
            (request_id,),
        )
        return str(rows[0]["last_error"]) if rows and rows[0]["last_error"] is not None else None

    async def next_due(self) -> float | None:
        """When the earliest head entry (the next one of its request) is due, or None if none is waiting."""
        rows = await self._database.fetch(
            "SELECT MIN(CASE WHEN o.claimed_until > o.next_attempt_at THEN o.claimed_until"
            " WHEN o.purpose = ? AND o.attempts = 0 AND o.created_at + ? > o.next_attempt_at"
            " THEN o.created_at + ? ELSE o.next_attempt_at END) AS due FROM outbox o"
            " WHERE o.sent_at IS NULL AND o.gave_up_at IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.request_id = o.request_id AND p.id < o.id"
            "                 AND p.sent_at IS NULL AND p.gave_up_at IS NULL)",
            (OPENS_THREAD, OPENER_GRACE, OPENER_GRACE),
        )
        return float(rows[0]["due"]) if rows and rows[0]["due"] is not None else None

    async def attempting(self, entry_id: int, *, lease: float = CLAIM_LEASE) -> bool:
        """Claim the entry for ``lease`` seconds and record, before the call, that it is being made (a crash
        after this may have sent it). False: it is sent, given up, or claimed by another copy of the bot."""
        now = self._clock()
        return (
            await self._database.write_once(
                "UPDATE outbox SET attempts = attempts + 1, claimed_until = ? WHERE id = ? AND sent_at IS NULL"
                " AND gave_up_at IS NULL AND (claimed_until IS NULL OR claimed_until <= ?)",
                (now + lease, entry_id, now),
            )
            == 1
        )

    async def sent(self, entry_id: int) -> None:
        await self._database.write_once(
            "UPDATE outbox SET sent_at = ?, last_error = NULL, claimed_until = NULL WHERE id = ?",
            (self._clock(), entry_id),
        )

    async def retry(self, entry_id: int, *, at: float, error: str) -> None:
        await self._database.write_once(
            "UPDATE outbox SET next_attempt_at = ?, last_error = ?, claimed_until = NULL WHERE id = ?",
            (at, error, entry_id),
        )

    async def give_up(self, entry: OutboxEntry, *, error: str, method: str | None = None) -> None:
        """Slack refused the call (``method``, as it was made) for good; keep the reason in the audit log."""
        now = self._clock()

        def give_up(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE outbox SET gave_up_at = ?, last_error = ?, claimed_until = NULL WHERE id = ?",
                (now, error, entry.id),
            )
            detail = f"{method or entry.method}: {error}"
            append_audit(
                db, at=now, request_id=entry.request_id, actor="bot", action="slack post abandoned", detail=detail
            )

        await self._database.run(give_up)
