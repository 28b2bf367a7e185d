"""Compliance cases: due dates, reminders, closing and retention (``store.cases``).

A case is a request seen from staff's side: what they still owe a shopper, and by when.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from core import Outcome
from store._audit import ActorNames
from store._database import Database
from store._records import Notice, Request, TaskError
from store._rows import (
    CLOSABLE,
    NEVER_STARTED,
    OPEN_CASE,
    REQUEST_COLUMNS,
    UNFINISHED_SQL,
    append_audit,
    enqueue,
    errors_json,
    fetch_request,
    literals,
    marks,
    params_json,
    request_from_row,
)

__all__ = ["EXTENDED", "TOLD", "CaseCounts", "Cases", "Extension"]

EXTENDED = "deadline extended"  # the audit action; a second one needs --again
TOLD = "shopper told of extension"  # the audit action: staff told the shopper of the extension, and why


@dataclass(frozen=True, slots=True)
class CaseCounts:
    """How many cases there are, for the metrics: by (kind, status), open, and open past their due date."""

    by_status: dict[tuple[str, str], int]
    open: int
    overdue: int


@dataclass(frozen=True, slots=True)
class Extension:
    """What ``extend`` did: ``extended`` (or ``told``: only recorded that the shopper was told), or why not
    (``not started``, ``closed``, ``extended before``)."""

    outcome: Literal["extended", "told", "not started", "closed", "extended before"]
    request: Request | None
    before_at: float | None = None  # the earlier extension, when there was one
    before_by: str | None = None


class Cases:
    """``store.cases``: what staff owe shoppers, and the changes they make to it."""

    def __init__(self, *, database: Database, clock: Callable[[], float] = time.time, names: ActorNames) -> None:
        self._database = database
        self._clock = clock
        self._names = names

    async def open(
        self,
        *,
        requester: str | None = None,
        limit: int = 100,
        newest_first: bool = False,
        after: tuple[float, int] | None = None,
    ) -> list[Request]:
        """Cases staff still owe a shopper an answer on, soonest due (or newest) first; one requester's, or all.

        Soonest due first is overdue first, and it is a page: ``after`` is the (due_at, id) of the last case
        of the previous page, read from an index (requests_open_by_due, requests_open_by_requester), so a
        page costs the same with 100 open cases or 10,000. ``newest_first`` sorts every open case (tests).
        """
        where = OPEN_CASE
        params: list[Any] = []
        if requester is not None:
            where += " AND requester = ?"
            params.append(requester)
        if after is not None and not newest_first:
            where += " AND (due_at, id) > (?, ?)"
            params += [after[0], after[1]]
        order = "created_at DESC, id DESC" if newest_first else "due_at, id"
        rows = await self._database.fetch(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE {where} ORDER BY {order} LIMIT ?", (*params, limit)
        )
        return [request_from_row(row) for row in rows]

    async def answered(self, *, requester: str, limit: int = 5) -> list[Request]:
        """One requester's cases closed most recently, newest first (from requests_answered_by_requester)."""
        rows = await self._database.fetch(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE closed_at IS NOT NULL AND requester = ?"
            " ORDER BY closed_at DESC LIMIT ?",
            (requester, limit),
        )
        return [request_from_row(row) for row in rows]

    async def open_count(self, *, requester: str | None = None) -> int:
        """How many cases ``open`` would give without a limit (one requester's, or all)."""
        where = OPEN_CASE  # counted in the open-case indexes, not the table
        params: list[Any] = []
        if requester is not None:
            where += " AND requester = ?"
            params.append(requester)
        rows = await self._database.fetch(f"SELECT COUNT(*) AS open FROM requests WHERE {where}", params)
        return int(rows[0]["open"])

    async def counts(self) -> CaseCounts:
        """Counts for monitoring, in one read: no personal data, only statuses and numbers.

        The counts by kind, status and closed are kept as requests change (request_counts), and
        open cases are their sum; only the overdue ones (a matter of the clock) are counted, in the open-case
        index by due date. A scrape reads neither the history nor the open cases.
        """
        rows = await self._database.fetch(
            "SELECT kind, status, SUM(count) AS count, SUM(CASE WHEN closed = 0 AND status NOT IN"
            f" ({literals(NEVER_STARTED)}) THEN count ELSE 0 END) AS open FROM request_counts GROUP BY kind, status"
            # and a last row whose "open" is the overdue count, so the scrape is one round trip
            f" UNION ALL SELECT NULL, NULL, NULL, (SELECT COUNT(*) FROM requests WHERE {OPEN_CASE} AND due_at < ?)",
            (self._clock(),),
        )
        *by_status, overdue = rows
        return CaseCounts(
            by_status={(str(row["kind"]), str(row["status"])): int(row["count"]) for row in by_status if row["count"]},
            open=sum(int(row["open"]) for row in by_status),
            overdue=int(overdue["open"]),
        )

    async def close(
        self, request_id: int, *, user: str, notices: Sequence[Notice], outcome: str = Outcome.COMPLIED
    ) -> tuple[Request | None, bool]:
        """Record that the shopper was answered, and the nature of the answer (``outcome``, a ``core.Outcome``);
        (request, False) when it was closed already or cannot be."""
        now = self._clock()

        def close(db: sqlite3.Connection) -> tuple[Request | None, bool]:
            cursor = db.execute(
                "UPDATE requests SET closed_at = ?, closed_by = ?, outcome = ?, updated_at = ?"
                f" WHERE id = ? AND closed_at IS NULL AND status IN ({marks(CLOSABLE)})",
                (now, user, outcome, now, request_id, *CLOSABLE),
            )
            request = fetch_request(db, request_id)
            if cursor.rowcount != 1 or request is None:
                return request, False
            append_audit(
                db,
                at=now,
                request_id=request_id,
                actor=user,
                action="closed",
                detail=f"answer sent to shopper: {outcome}",
                actor_name=self._names.of(user),
            )
            enqueue(db, request_id, notices, now)
            return request, True

        return await self._database.run(close)

    async def extend_deadline(
        self,
        request_id: int,
        *,
        days: int | None,
        user: str,
        again: bool = False,
        told: bool = False,
        notices: Sequence[Notice],
    ) -> Extension:
        """Push an open, started case's due date back by ``days``; its reminders start over.

        Only a case with a thread that is past its start (``RequestStatus.started``) and not closed
        has a deadline to extend. CCPA allows one extension: a second needs ``again``, and says so in
        the audit log. ``told``: staff told the shopper of the extension (``extension_told_at``, audited);
        with ``days`` None that is all that is recorded. Check and change are one transaction.
        """
        now = self._clock()

        def extend(db: sqlite3.Connection) -> Extension:
            request = fetch_request(db, request_id)
            if request is None or not request.status.started or not request.thread_ts:
                return Extension("not started", request)
            if request.closed_at is not None:
                return Extension("closed", request)
            before = db.execute(
                "SELECT at, actor FROM audit WHERE request_id = ? AND action = ? ORDER BY id DESC LIMIT 1",
                (request_id, EXTENDED),
            ).fetchone()
            if days is not None and before is not None and not again:
                return Extension("extended before", request, before_at=before["at"], before_by=before["actor"])
            if told:
                db.execute(
                    "UPDATE requests SET extension_told_at = ?, updated_at = ? WHERE id = ?", (now, now, request_id)
                )
                append_audit(
                    db, at=now, request_id=request_id, actor=user, action=TOLD, actor_name=self._names.of(user)
                )
            if days is None:
                enqueue(db, request_id, notices, now)
                return Extension("told", fetch_request(db, request_id))
            db.execute(
                "UPDATE requests SET due_at = due_at + ?, deadline = deadline || ?, reminders_sent = '',"
                " remind_at = ?, updated_at = ? WHERE id = ?",  # the next pass reschedules
                (days * 86_400.0, f", extended by {days} days", now, now, request_id),
            )
            extended = fetch_request(db, request_id)
            assert extended is not None
            detail = f"+{days} days" + (" (a further extension, asked with --again)" if before is not None else "")
            append_audit(
                db,
                at=now,
                request_id=request_id,
                actor=user,
                action=EXTENDED,
                detail=detail,
                actor_name=self._names.of(user),
            )
            enqueue(db, request_id, notices, now)
            return Extension("extended", extended)

        return await self._database.run(extend)

    async def reminders_due(self, *, limit: int = 100) -> list[Request]:
        """Open cases whose next reminder may be due now (``remind_at`` passed), the longest waiting first.

        Read from requests_remind_at, which holds only open cases with a reminder still to send, by the
        time it comes: a pass reads the cases due now, however many more are open with reminders to come.
        Which reminders are due, and when the next one comes, is the schedule's to say (the caller's).
        """
        rows = await self._database.fetch(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE {OPEN_CASE} AND remind_at IS NOT NULL"
            " AND thread_ts IS NOT NULL AND remind_at <= ? ORDER BY remind_at LIMIT ?",
            (self._clock(), limit),
        )
        return [request_from_row(row) for row in rows]

    async def record_reminder(
        self, request: Request, kinds: Sequence[str], *, notices: Sequence[Notice], next_at: float | None
    ) -> bool:
        """Mark ``kinds`` sent and queue the reminder, once: False if another pass or a close came first.

        ``next_at``: when the next reminder is due; None when none is left (until an extension starts
        them over).
        """
        now = self._clock()
        sent = ",".join(sorted(request.reminders_sent | set(kinds)))

        def remind(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE requests SET reminders_sent = ?, remind_at = ?"
                " WHERE id = ? AND closed_at IS NULL AND reminders_sent = ?",
                (sent, next_at, request.id, ",".join(sorted(request.reminders_sent))),
            )
            fresh = fetch_request(db, request.id)
            if cursor.rowcount != 1 or fresh is None:
                return False
            append_audit(db, at=now, request_id=request.id, actor="bot", action="reminder sent", detail=kinds[-1])
            enqueue(db, request.id, notices, now)
            return True

        return await self._database.run(remind)

    async def remind_later(self, request: Request, *, at: float | None) -> bool:
        """Nothing is due for ``request`` yet: look again at ``at`` (None: never, its reminders are all sent).

        False when the case changed meanwhile (a reminder went out, it was extended): the change set its time.
        """
        changed = await self._database.write_once(
            "UPDATE requests SET remind_at = ? WHERE id = ? AND reminders_sent = ? AND due_at = ?",
            (at, request.id, ",".join(sorted(request.reminders_sent)), request.due_at),
        )
        return changed == 1

    async def purge_expired(
        self, *, older_than: float, free_text: Collection[str], batch: int = 200, pause: float = 0.0
    ) -> list[int]:
        """Erase the email of every request finished or closed before ``older_than``; return their ids.

        The skeleton stays for the audit trail: task id, dates, who did what, Amazon's error codes, and the
        compliance record's fields (received, via, verified by and how, outcome, denial reason).
        Staff's sealed notes on the verification and the outcome go with the email.
        Amazon's error messages go, and sent Slack payloads of those requests are emptied, since
        either may carry the shopper's (masked) email or name. The work goes in batches of ``batch``
        requests, each its own short transaction, with the event loop free between them (``pause``
        seconds), so commands wait for one batch at most, never for the whole purge. When anything
        was erased, the write-ahead log is folded into the database file, so the erased data leaves
        the WAL too.
        """
        now = self._clock()

        def purge(db: sqlite3.Connection) -> list[int]:
            rows = db.execute(
                "SELECT id, errors, params FROM requests WHERE purged_at IS NULL"
                f" AND COALESCE(closed_at, updated_at) < ? AND NOT ({UNFINISHED_SQL}) LIMIT ?",
                (older_than, batch),
            ).fetchall()
            ids = [int(row["id"]) for row in rows]
            # Amazon's error words go too (they may name the shopper); the codes stay for the audit trail.
            # The params staff typed freely (``free_text``: the kinds name them) may name the shopper too.
            db.executemany(
                "UPDATE requests SET email_hash = NULL, email_sealed = NULL, email_masked = NULL, errors = ?,"
                " params = ?, verified_note_sealed = NULL, outcome_note_sealed = NULL, purged_at = ? WHERE id = ?",
                [(_codes_only(row["errors"]), _kept_params(row["params"], free_text), now, row["id"]) for row in rows],
            )
            db.executemany(
                "UPDATE outbox SET payload = '{}' WHERE request_id = ?"
                " AND (sent_at IS NOT NULL OR gave_up_at IS NOT NULL) AND payload != '{}'",
                [(request_id,) for request_id in ids],
            )
            for request_id in ids:
                append_audit(db, at=now, request_id=request_id, actor="bot", action="purged", detail="email erased")
            return ids

        purged: list[int] = []
        while True:
            ids = await self._database.run(purge)
            purged += ids
            if len(ids) < batch:
                break
            await asyncio.sleep(pause)  # a command waiting on the database goes between two batches
        if purged:
            await self._database.checkpoint()
        return purged


def _kept_params(params: str | None, free_text: Collection[str]) -> str:
    """A request's params without those staff typed freely (``free_text``)."""
    stored = json.loads(params or "{}")
    return params_json({str(k): str(v) for k, v in stored.items() if k not in free_text})


def _codes_only(errors: str | None) -> str:
    """A request's stored errors with Amazon's codes kept and its messages dropped."""
    stored = json.loads(errors or "[]")
    return errors_json([TaskError(str(e["code"]) if e.get("code") is not None else None, "") for e in stored])
