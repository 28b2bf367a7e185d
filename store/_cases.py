"""Compliance cases: due dates, reminders, closing and retention (``store.cases``).

A case is a request seen from staff's side: what they still owe a shopper, and by when.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from store._audit import ActorNames
from store._database import Database
from store._records import FREE_TEXT_PARAMS, Notice, Request, TaskError
from store._rows import (
    CLOSABLE,
    NEVER_STARTED,
    REQUEST_COLUMNS,
    UNFINISHED,
    append_audit,
    enqueue,
    errors_json,
    fetch_request,
    marks,
    params_json,
    request_from_row,
)

__all__ = ["EXTENDED", "CaseCounts", "Cases", "Extension"]

EXTENDED = "deadline extended"  # the audit action; a second one needs --again


@dataclass(frozen=True, slots=True)
class CaseCounts:
    """How many cases there are, for the metrics: by (kind, status), open, and open past their due date."""

    by_status: dict[tuple[str, str], int]
    open: int
    overdue: int


@dataclass(frozen=True, slots=True)
class Extension:
    """What ``extend`` did: ``extended``, or why not (``not started``, ``closed``, ``extended before``)."""

    outcome: Literal["extended", "not started", "closed", "extended before"]
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
        self, *, requester: str | None = None, limit: int = 100, newest_first: bool = False
    ) -> list[Request]:
        """Cases staff still owe a shopper an answer on, soonest due (or newest) first; one requester's, or all."""
        where = f"closed_at IS NULL AND status NOT IN ({marks(NEVER_STARTED)})"
        params: list[Any] = list(NEVER_STARTED)
        if requester is not None:
            where += " AND requester = ?"
            params.append(requester)
        order = "created_at DESC, id DESC" if newest_first else "due_at, id"
        rows = await self._database.fetch(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE {where} ORDER BY {order} LIMIT ?", (*params, limit)
        )
        return [request_from_row(row) for row in rows]

    async def open_count(self, *, requester: str | None = None) -> int:
        """How many cases ``open`` would give without a limit (one requester's, or all)."""
        where = f"closed_at IS NULL AND status NOT IN ({marks(NEVER_STARTED)})"
        params: list[Any] = list(NEVER_STARTED)
        if requester is not None:
            where += " AND requester = ?"
            params.append(requester)
        rows = await self._database.fetch(f"SELECT COUNT(*) AS open FROM requests WHERE {where}", params)
        return int(rows[0]["open"])

    async def counts(self) -> CaseCounts:
        """Counts for monitoring, in one read: no personal data, only statuses and numbers."""
        never = marks(NEVER_STARTED)
        rows = await self._database.fetch(
            f"SELECT kind, status, COUNT(*) AS count, SUM(closed_at IS NULL AND status NOT IN ({never})) AS open,"
            f" SUM(closed_at IS NULL AND status NOT IN ({never}) AND due_at < ?) AS overdue"
            " FROM requests GROUP BY kind, status",
            (*NEVER_STARTED, *NEVER_STARTED, self._clock()),
        )
        return CaseCounts(
            by_status={(str(row["kind"]), str(row["status"])): int(row["count"]) for row in rows},
            open=sum(int(row["open"] or 0) for row in rows),
            overdue=sum(int(row["overdue"] or 0) for row in rows),
        )

    async def close(self, request_id: int, *, user: str, notices: Sequence[Notice]) -> tuple[Request | None, bool]:
        """Record that the shopper was answered; (request, False) when it was closed already or cannot be."""
        now = self._clock()

        def close(db: sqlite3.Connection) -> tuple[Request | None, bool]:
            cursor = db.execute(
                "UPDATE requests SET closed_at = ?, closed_by = ?, updated_at = ?"
                f" WHERE id = ? AND closed_at IS NULL AND status IN ({marks(CLOSABLE)})",
                (now, user, now, request_id, *CLOSABLE),
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
                detail="answer sent to shopper",
                actor_name=self._names.of(user),
            )
            enqueue(db, request_id, notices, now)
            return request, True

        return await self._database.run(close)

    async def extend_deadline(
        self,
        request_id: int,
        *,
        days: int,
        user: str,
        again: bool = False,
        notices: Sequence[Notice],
    ) -> Extension:
        """Push an open, started case's due date back by ``days``; its reminders start over.

        Only a case with a thread that is past its start (``RequestStatus.started``) and not closed
        has a deadline to extend. CCPA allows one extension: a second needs ``again``, and says so in
        the audit log. Check and change are one transaction.
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
            if before is not None and not again:
                return Extension("extended before", request, before_at=before["at"], before_by=before["actor"])
            db.execute(
                "UPDATE requests SET due_at = due_at + ?, deadline = deadline || ?, reminders_sent = '', updated_at = ?"
                " WHERE id = ?",
                (days * 86_400.0, f", extended by {days} days", now, request_id),
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

    async def reminders_due(self, schedule: Sequence[tuple[str, float]]) -> list[tuple[Request, list[str]]]:
        """Open cases with reminders now due: each with the kinds due (``schedule``: (kind, seconds before due))."""
        now = self._clock()
        earliest = max(before for _, before in schedule)
        rows = await self._database.fetch(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE closed_at IS NULL AND status NOT IN ({marks(NEVER_STARTED)})"
            " AND thread_ts IS NOT NULL AND due_at - ? <= ? ORDER BY due_at LIMIT 500",
            (*NEVER_STARTED, earliest, now),
        )
        due = []
        for request in map(request_from_row, rows):
            kinds = [k for k, before in schedule if now >= request.due_at - before and k not in request.reminders_sent]
            if kinds:
                due.append((request, kinds))
        return due

    async def record_reminder(self, request: Request, kinds: Sequence[str], *, notices: Sequence[Notice]) -> bool:
        """Mark ``kinds`` sent and queue the reminder, once: False if another pass or a close came first."""
        now = self._clock()
        sent = ",".join(sorted(request.reminders_sent | set(kinds)))

        def remind(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE requests SET reminders_sent = ? WHERE id = ? AND closed_at IS NULL AND reminders_sent = ?",
                (sent, request.id, ",".join(sorted(request.reminders_sent))),
            )
            fresh = fetch_request(db, request.id)
            if cursor.rowcount != 1 or fresh is None:
                return False
            append_audit(db, at=now, request_id=request.id, actor="bot", action="reminder sent", detail=kinds[-1])
            enqueue(db, request.id, notices, now)
            return True

        return await self._database.run(remind)

    async def purge_expired(self, *, older_than: float) -> list[int]:
        """Erase the email of every request finished or closed before ``older_than``; return their ids.

        The skeleton stays for the audit trail: task id, dates, who did what, Amazon's error codes.
        Amazon's error messages go, and sent Slack payloads of those requests are emptied, since
        either may carry the shopper's (masked) email or name. When anything was erased, the
        write-ahead log is folded into the database file, so the erased data leaves the WAL too.
        """
        now = self._clock()

        def purge(db: sqlite3.Connection) -> list[int]:
            ids = [
                int(row["id"])
                for row in db.execute(
                    f"SELECT id FROM requests WHERE purged_at IS NULL AND status NOT IN ({marks(UNFINISHED)})"
                    " AND COALESCE(closed_at, updated_at) < ?",
                    (*UNFINISHED, older_than),
                )
            ]
            for request_id in ids:
                # Amazon's error words go too (they may name the shopper); the codes stay for the audit trail.
                stored = fetch_request(db, request_id)
                codes_only = errors_json([TaskError(e.code, "") for e in stored.errors]) if stored else "[]"
                # What staff typed freely (an erasure's reason) may name the shopper too; the rest stays.
                kept = {k: v for k, v in (stored.params if stored else {}).items() if k not in FREE_TEXT_PARAMS}
                db.execute(
                    "UPDATE requests SET email_hash = NULL, email_sealed = NULL, email_masked = NULL, errors = ?,"
                    " params = ?, purged_at = ? WHERE id = ?",
                    (codes_only, params_json(kept), now, request_id),
                )
                db.execute(
                    "UPDATE outbox SET payload = '{}' WHERE request_id = ?"
                    " AND (sent_at IS NOT NULL OR gave_up_at IS NOT NULL)",
                    (request_id,),
                )
                append_audit(db, at=now, request_id=request_id, actor="bot", action="purged", detail="email erased")
            return ids

        purged = await self._database.run(purge)
        if purged:
            await self._database.checkpoint()
        return purged
