"""A shopper's data request from stored to final (``store.requests``): one method per step, one way to move.

Each method is one unit of work on the database (see store/_database.py). A change of status and the
Slack posts it causes commit together (the outbox), and leaves an audit entry in the same transaction.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence

from core import EmailUnreadable
from store._audit import ActorNames
from store._creations import NewRequest, insert_new
from store._database import Database
from store._key import EmailCipher
from store._moves import Mover, error_codes
from store._records import Moved, Notice, Request, RequestStatus, TaskError
from store._rows import (
    MOVING_SQL,
    REQUEST_COLUMNS,
    AuditLine,
    append_audit,
    enqueue,
    errors_json,
    fetch_request,
    params_json,
    request_from_row,
    status_columns,
)

__all__ = ["Requests"]

REF_BYTES = 12  # a request's reference: 96 random bits, as hex


class Requests:
    """``store.requests``: create, read and move requests; the shopper's email sealed, found by its keyed hash."""

    def __init__(
        self, *, database: Database, clock: Callable[[], float] = time.time, cipher: EmailCipher, names: ActorNames
    ) -> None:
        self._database = database
        self._clock = clock
        self._cipher = cipher
        self._names = names
        self._mover = Mover(database=database, clock=clock, names=names)

    async def create(
        self,
        *,
        kind: str,
        email: str,
        email_masked: str,
        requester: str,
        channel: str,
        due_at: float,
        deadline: str,
        params: Mapping[str, str] | None = None,
        duplicate_window: float | None = None,
        first_check_after: float = 60.0,
        first_reminder_at: float | None = None,
        note: str = "",
        notices: Sequence[Notice] = (),
        received_on: str | None = None,
        received_via: str | None = None,
        outside_ref: str | None = None,
        verified_how: str | None = None,
    ) -> tuple[Request, bool]:
        """Store a new request with its clientToken, before anything is sent anywhere.

        With ``duplicate_window``, a request of the same kind for the same shopper that is unfinished,
        or was made within that many seconds, is returned instead, with False: check and insert are one
        transaction, so two commands at once cannot both start a task. Requests of another kind, and
        ones that never started, are no duplicates. ``first_reminder_at`` is when its first reminder is due
        (the schedule is the caller's); without it the next reminder pass looks at the case and sets it.

        The record's intake facts: ``received_on`` (YYYY-MM-DD, the day the shopper asked; today, UTC, when
        None), how (``received_via``), staff's ticket (``outside_ref``), and ``verified_how`` when the requester
        had verified the shopper's identity before typing the command (recorded as verified by them, now).
        """
        now = self._clock()
        received = received_on or time.strftime("%Y-%m-%d", time.gmtime(now))
        verified_by, verified_at = (requester, now) if verified_how else (None, None)
        lookup = self._cipher.lookup_hash(email)
        client_token = str(uuid.uuid4())
        ref = secrets.token_hex(REF_BYTES)
        sealed = self._cipher.encrypt(email)

        new = NewRequest(
            columns={
                "client_token": client_token,
                "email_hash": lookup,
                "email_sealed": sealed,
                "email_masked": email_masked,
                "requester": requester,
                "channel": channel,
                **status_columns(RequestStatus.NEW),
                "created_at": now,
                "updated_at": now,
                "next_check_at": now + first_check_after,
                "due_at": due_at,
                "deadline": deadline,
                "kind": kind,
                "params": params_json(params or {}),
                "remind_at": now if first_reminder_at is None else first_reminder_at,
                "ref": ref,
                "received_on": received,
                "received_via": received_via,
                "outside_ref": outside_ref,
                "verified_by": verified_by,
                "verified_how": verified_how,
                "verified_at": verified_at,
            },
            duplicate_since=None if duplicate_window is None else now - duplicate_window,
            audit=AuditLine(now, None, requester, "requested", note, self._names.of(requester)),
            notices=notices,  # the thread's first message, sent by the outbox like every other post
        )
        # The command is acknowledged once this commits: one round trip, with the burst it arrived in.
        outcome = await self._database.run_batched(insert_new, new)
        if isinstance(outcome, Request):
            return outcome, False
        request_id = outcome
        request = Request(
            id=request_id,
            client_token=client_token,
            email_masked=email_masked,
            requester=requester,
            channel=channel,
            thread_ts=None,
            task_id=None,
            status=RequestStatus.NEW,
            errors=(),
            created_at=now,
            updated_at=now,
            due_at=due_at,
            deadline=deadline,
            kind=kind,
            params=dict(params or {}),
            ref=ref,
            received_on=received,
            received_via=received_via,
            outside_ref=outside_ref,
            verified_by=verified_by,
            verified_how=verified_how,
            verified_at=verified_at,
        )
        return request, True

    async def get(self, request_id: int) -> Request | None:
        rows = await self._database.fetch(f"SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?", (request_id,))
        return request_from_row(rows[0]) if rows else None

    async def for_task(self, task_id: str) -> Request | None:
        rows = await self._database.fetch(f"SELECT {REQUEST_COLUMNS} FROM requests WHERE task_id = ?", (task_id,))
        return request_from_row(rows[0]) if rows else None

    async def for_outside_ref(self, outside_ref: str) -> Request | None:
        """The newest request staff gave this outside reference (``--ref``), read from requests_by_outside_ref."""
        rows = await self._database.fetch(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE outside_ref = ? ORDER BY id DESC LIMIT 1", (outside_ref,)
        )
        return request_from_row(rows[0]) if rows else None

    async def for_email(self, email: str, *, kind: str | None = None) -> list[Request]:
        """Every request for this shopper (of ``kind``, or of any kind), newest first, found by the keyed hash."""
        of_kind, params = (" AND kind = ?", (kind,)) if kind is not None else ("", ())
        rows = await self._database.fetch(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE email_hash = ?{of_kind} ORDER BY id DESC",
            (self._cipher.lookup_hash(email), *params),
        )
        return [request_from_row(row) for row in rows]

    async def unfinished(
        self, *, due_by: float | None = None, limit: int = 100, after: tuple[float, int] | None = None
    ) -> list[Request]:
        """Requests the bot or Amazon moves on (not ones waiting for a person) whose next check is due, oldest
        first: a page after ``after`` (created_at, id), read in the order of requests_unfinished_by_age, so a
        page costs the same however many are open.
        """
        due = self._clock() if due_by is None else due_by
        where, params = (" AND (created_at, id) > (?, ?)", after) if after is not None else ("", ())
        rows = await self._database.fetch(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE {MOVING_SQL} AND next_check_at <= ?{where}"
            " ORDER BY created_at, id LIMIT ?",
            (due, *params, limit),
        )
        return [request_from_row(row) for row in rows]

    async def reveal_email(self, request_id: int) -> str | None:
        """The shopper's email in the clear, for the call to Amazon; None once purged.

        EmailUnreadable when this row's email does not open with the key (the others may be fine).
        """
        rows = await self._database.fetch("SELECT email_sealed FROM requests WHERE id = ?", (request_id,))
        if not rows or rows[0]["email_sealed"] is None:
            return None
        try:
            return self._cipher.decrypt(bytes(rows[0]["email_sealed"]))
        except ValueError as error:
            raise EmailUnreadable(request_id) from error

    async def schedule_check(self, request_id: int, *, at: float, failed: bool = False) -> None:
        """When the reconciler should next look at this request; ``failed`` counts one more failure in a row
        (its backoff grows), else the count starts over."""
        failures = "check_failures + 1" if failed else "0"
        await self._database.write_once(
            f"UPDATE requests SET next_check_at = ?, check_failures = {failures} WHERE id = ?", (at, request_id)
        )

    async def mark_start_attempt(self, request_id: int) -> float | None:
        """Note, before calling, that a start may reach Amazon from now on; return the earlier mark, if any.

        Set before the call so that a crash during it still counts: the clientToken's 8-hour window
        runs from the first start that may have been carried out.
        """

        def mark(db: sqlite3.Connection) -> float | None:
            row = db.execute("SELECT start_sent_at FROM requests WHERE id = ?", (request_id,)).fetchone()
            db.execute(
                "UPDATE requests SET start_sent_at = COALESCE(start_sent_at, ?) WHERE id = ?",
                (self._clock(), request_id),
            )
            return float(row["start_sent_at"]) if row and row["start_sent_at"] is not None else None

        result: float | None = await self._database.run(mark)
        return result

    async def clear_start_attempt(self, request_id: int) -> None:
        """The start certainly did not reach Amazon (refused at the door): the window has not begun."""
        await self._database.write_once("UPDATE requests SET start_sent_at = NULL WHERE id = ?", (request_id,))

    async def record_start_waiting(self, request_id: int, *, at: float, reason: str, notices: Sequence[Notice]) -> bool:
        """Amazon could not be asked to start: back off until ``at``; the first time, tell the thread. True if told."""
        now = self._clock()

        def wait(db: sqlite3.Connection) -> bool:
            db.execute(
                "UPDATE requests SET next_check_at = ?, check_failures = check_failures + 1 WHERE id = ?",
                (at, request_id),
            )
            cursor = db.execute(
                "UPDATE requests SET waiting_since = ?, updated_at = ? WHERE id = ? AND waiting_since IS NULL"
                " AND status = ?",
                (now, now, request_id, RequestStatus.STARTING.value),
            )
            request = fetch_request(db, request_id)
            if cursor.rowcount != 1 or request is None:
                return False
            append_audit(
                db, at=now, request_id=request_id, actor="bot", action="waiting for Buy with Prime", detail=reason
            )
            enqueue(db, request_id, notices, now)
            return True

        told: bool = await self._database.run(wait)
        return told

    async def record_start_expired(self, request_id: int, *, notices: Sequence[Notice]) -> Request:
        """The clientToken's window passed before Amazon confirmed a start: stop, rather than risk a second task."""
        return await self._mover.move(
            request_id,
            from_={RequestStatus.STARTING},
            to=RequestStatus.ABANDONED,
            audit=("abandoned", "bot", "not started within the clientToken's 8-hour window"),
            notices=notices,
        )

    async def abandon(self, request_id: int, *, actor: str, reason: str) -> Request:
        """The request cannot go on (for instance the bot is not in the channel); nothing was started."""
        return await self._mover.move(
            request_id,
            from_={RequestStatus.NEW},
            to=RequestStatus.ABANDONED,
            audit=("abandoned", actor, reason),
        )

    async def record_task_started(
        self,
        request_id: int,
        task_id: str,
        *,
        to: RequestStatus = RequestStatus.IN_PROGRESS,
        hold_ends_at: float | None = None,
        next_check_at: float | None = None,
        note: str = "",
        notices: Sequence[Notice],
    ) -> Request:
        """Amazon accepted the task (the request moves ``to`` where its kind says); queue the thread's update.

        ``hold_ends_at``: Amazon holds the task until then (a deletion's holding period); ``next_check_at``:
        when the reconciler asks about it (in the same unit; else as it was); ``note`` adds to the audit
        entry (its hold).
        """
        checked = {} if next_check_at is None else {"next_check_at": next_check_at}
        return await self._mover.move(
            request_id,
            from_={RequestStatus.NEW, RequestStatus.STARTING},
            to=to,
            extra={
                "task_id": task_id,
                "waiting_since": None,
                "check_failures": 0,
                "hold_ends_at": hold_ends_at,
                **checked,
            },
            audit=("task started", "amazon", f"task {task_id}" + (f", {note}" if note else "")),
            notices=notices,
        )

    async def record_start_rejected(
        self,
        request_id: int,
        errors: Sequence[TaskError],
        *,
        notices: Sequence[Notice],
    ) -> Request:
        """Amazon refused to start the task; nothing will happen at Amazon for this request."""
        return await self._mover.move(
            request_id,
            from_={RequestStatus.NEW, RequestStatus.STARTING},
            to=RequestStatus.REJECTED,
            extra={"errors": errors_json(errors)},
            audit=("start rejected", "amazon", error_codes(errors)),
            notices=notices,
        )

    async def record_task_state(
        self,
        request_id: int,
        *,
        from_: Iterable[RequestStatus],
        to: RequestStatus,
        errors: Sequence[TaskError],
        action: str,
        passed: Sequence[str] = (),
        notices: Sequence[Notice],
    ) -> Moved:
        """Move a request to where Amazon's task state takes it, once (not moved: it was elsewhere already).

        Only from ``from_`` (which moves a status allows is the kind's decision); ``action`` is the audit
        log's word for it, after ``passed``, the words of steps Amazon took that the bot never saw (a hold
        that ended). The errors are stored (Amazon's reasons for a failure, or none).
        """
        return await self._mover.attempt(
            request_id,
            from_=set(from_),
            to=to,
            extra={"errors": errors_json(errors)},
            audit=(action, "amazon", error_codes(errors)),
            passed=passed,
            notices=notices,
        )
