"""The single way a request changes status (``Mover.move``), and people's decisions made of it.

``Mover.move`` is shared by ``store.requests`` and ``store.decisions``.

A move is conditional on where the request stands, and commits with its audit entry and the notices it
queues for Slack, or not at all.

People's decisions on a request (``store.decisions``): approve, reject, cancel, try again.

A kind that needs a second person's approval (an erasure) waits in AWAITING_APPROVAL until one of these
moves it; a held task can be cancelled; a failed or timed-out start can be tried again as a new task.
Each is one move: guarded by where the request stands, audited with who decided,
with the thread's notices, so two clicks at once decide once. Staff's free text (a reject reason) goes
to the request's params, never to the append-only audit log.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core import DenialReason, Outcome
from store._audit import ActorNames
from store._database import Database
from store._records import Moved, Notice, Request, RequestStatus, TaskError
from store._rows import append_audit, enqueue, fetch_request, params_json, status_columns

__all__ = ["Decisions", "Mover", "NotMoved", "error_codes"]


# The kind's params with new keys merged in (a JSON object, kept as text), by backend (postgres?).
_MERGED_PARAMS = {False: "json_patch(params, ?)", True: "CAST(CAST(params AS jsonb) || CAST(? AS jsonb) AS TEXT)"}


class Mover:
    """Moves requests from one status to another, one transaction each."""

    def __init__(self, *, database: Database, clock: Callable[[], float] = time.time, names: ActorNames) -> None:
        self._database = database
        self._clock = clock
        self._names = names

    async def move(self, request_id: int, **how: Any) -> Request:
        """The single way a request changes status (``attempt``'s arguments); NotMoved if it did not move."""
        done = await self.attempt(request_id, **how)
        if not done.moved or done.request is None:
            raise NotMoved(request_id, current=done.request)
        return done.request

    async def attempt(
        self,
        request_id: int,
        *,
        from_: set[RequestStatus],
        to: RequestStatus,
        extra: dict[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        open_only: bool = False,
        audit: tuple[str, str, str] | None = None,
        audit_task: bool = False,
        audit_note: str = "",
        passed: Sequence[str] = (),
        notices: Sequence[Notice] = (),
        also: Callable[[sqlite3.Connection], object] | None = None,
    ) -> Moved:
        """Move a request, conditional on where it stands, with its side effects; say whether it moved and
        where it stands now (read in the same unit, moved or not).

        ``params`` are merged into the kind's params; ``open_only`` moves it only if its case is not closed;
        ``audit_task`` names the task in the audit entry's detail (then ``audit_note``); ``passed`` are the
        audit actions, by the same actor, of steps the request went through unseen (written before ``audit``'s).
        ``also`` is written in the same transaction whether the request moves or not (the post that moved it).
        """
        now = self._clock()
        columns = {**status_columns(to), "updated_at": now, **(extra or {})}
        assignments = ", ".join(f"{name} = ?" for name in columns)
        values: list[Any] = list(columns.values())
        if params:
            assignments += f", params = {_MERGED_PARAMS[self._database.postgres]}"
            values.append(params_json(params))
        marks = ", ".join("?" for _ in from_)
        still_open = " AND closed_at IS NULL" if open_only else ""

        def move(db: sqlite3.Connection) -> Moved:
            if also is not None:
                also(db)
            before = fetch_request(db, request_id) if audit_task else None
            cursor = db.execute(
                f"UPDATE requests SET {assignments} WHERE id = ? AND status IN ({marks}){still_open}",
                (*values, request_id, *(s.value for s in from_)),
            )
            request = fetch_request(db, request_id)
            if cursor.rowcount != 1 or request is None:
                return Moved(moved=False, request=request)
            if audit is not None:
                action, actor, detail = audit
                if audit_task and before is not None and before.task_id:
                    detail = f"task {before.task_id}" + (f" ({audit_note})" if audit_note else "")
                for step, step_detail in [*((step, "") for step in passed), (action, detail)]:
                    append_audit(
                        db,
                        request_id=request_id,
                        actor=actor,
                        action=step,
                        detail=step_detail,
                        at=now,
                        actor_name=self._names.of(actor),
                    )
            enqueue(db, request_id, notices, now)
            return Moved(moved=True, request=request)

        result: Moved = await self._database.run(move)
        return result


def error_codes(errors: Sequence[TaskError]) -> str:
    """Amazon's error codes for the audit log, never its messages: the log is append-only, never purged."""
    return "; ".join(str(e.code or "no code") for e in errors)


class NotMoved(LookupError):
    """The request was not in a state the change applies to (already moved, or unknown): ``current`` is
    where it stands (None if unknown), read in the move's own unit."""

    def __init__(self, request_id: int, *, current: Request | None = None) -> None:
        super().__init__(request_id)
        self.current = current


class Decisions:
    """``store.decisions``: what staff decide about a request, each one a guarded, audited move."""

    def __init__(self, *, database: Database, clock: Callable[[], float] = time.time, names: ActorNames) -> None:
        self._database = database
        self._clock = clock
        self._names = names
        self._mover = Mover(database=database, clock=clock, names=names)

    async def approve(self, request_id: int, *, user: str, notices: Sequence[Notice]) -> Moved:
        """A second person approved a request that waits for it: it may start now (not moved: it no longer waits).

        Recorded before the start is called, with the request due for the reconciler at once, so a crash
        right after still starts it (with its stored clientToken) without asking anyone again.
        """
        return await self._mover.attempt(
            request_id,
            from_={RequestStatus.AWAITING_APPROVAL},
            to=RequestStatus.STARTING,
            extra={"approved_by": user, "approved_at": self._clock(), "next_check_at": self._clock()},
            audit=("approved", user, ""),
            notices=notices,
        )

    async def reject(self, request_id: int, *, user: str, reason: str, notices: Sequence[Notice]) -> Moved:
        """Staff refused (or the requester withdrew) a request that waits for approval: it ends, closed.

        The reason is kept with the request (erased at retention), never in the append-only audit log. The
        compliance record counts it as denied, for a reason of staff's own (``other``, its words the reason).
        """
        now = self._clock()
        return await self._mover.attempt(
            request_id,
            from_={RequestStatus.AWAITING_APPROVAL},
            to=RequestStatus.REJECTED,
            extra={
                "closed_at": now,
                "closed_by": user,
                "outcome": Outcome.DENIED.value,
                "denial_reason": DenialReason.OTHER.value,
            },
            params={"reject_reason": reason},
            audit=("rejected", user, ""),
            notices=notices,
        )

    async def retry(self, request_id: int, *, user: str, detail: str, notices: Sequence[Notice]) -> Moved:
        """Start an ended, unclosed request again as a new task: a new clientToken, nothing of the old task kept.

        From FAILED (a deletion refused for open orders) or ABANDONED (not started within the clientToken's
        window); not moved when it is in neither (someone clicked first, or it was closed).
        """
        now = self._clock()
        return await self._mover.attempt(
            request_id,
            from_={RequestStatus.FAILED, RequestStatus.ABANDONED},
            to=RequestStatus.STARTING,
            extra={
                "client_token": str(uuid.uuid4()),
                "task_id": None,
                "errors": "[]",
                "start_sent_at": None,
                "waiting_since": None,
                "check_failures": 0,
                "hold_ends_at": None,
                "cancelled_by": None,
                "cancelled_at": None,
                "cancel_sent_at": None,
                "next_check_at": now,
            },
            open_only=True,
            audit=("retried", user, detail),
            notices=notices,
        )

    async def mark_cancel_sent(self, request_id: int) -> float | None:
        """Note, before calling, that a cancel may reach Amazon from now on; return the earlier mark, if any.

        Amazon forgets a cancelled task: "not found" to a cancel means "an earlier cancel took" only if an
        earlier one may have reached it, and this mark, set before the call, is how the bot knows.
        """

        def mark(db: sqlite3.Connection) -> float | None:
            row = db.execute("SELECT cancel_sent_at FROM requests WHERE id = ?", (request_id,)).fetchone()
            db.execute(
                "UPDATE requests SET cancel_sent_at = COALESCE(cancel_sent_at, ?) WHERE id = ?",
                (self._clock(), request_id),
            )
            return float(row["cancel_sent_at"]) if row and row["cancel_sent_at"] is not None else None

        result: float | None = await self._database.run(mark)
        return result

    async def clear_cancel_sent(self, request_id: int) -> None:
        """Amazon's answer shows the cancel was not carried out (refused, or it never reached Amazon)."""
        await self._database.write_once("UPDATE requests SET cancel_sent_at = NULL WHERE id = ?", (request_id,))

    async def record_cancel_unconfirmed(self, request_id: int, *, user: str, detail: str) -> None:
        """Amazon did not confirm ``user``'s cancel (and no earlier one may have taken): audited, still on hold."""

        def record(db: sqlite3.Connection) -> None:
            db.execute("UPDATE requests SET cancel_sent_at = NULL WHERE id = ?", (request_id,))
            append_audit(
                db,
                at=self._clock(),
                request_id=request_id,
                actor=user,
                action="cancel not confirmed",
                detail=detail,
                actor_name=self._names.of(user),
            )

        await self._database.run(record)

    async def record_cancelled(self, request_id: int, *, user: str, note: str = "", notices: Sequence[Notice]) -> Moved:
        """Amazon cancelled the held task at ``user``'s click: nothing will happen to the shopper's data."""
        return await self._mover.attempt(
            request_id,
            from_={RequestStatus.ON_HOLD},
            to=RequestStatus.CANCELLED,
            extra={"cancelled_by": user, "cancelled_at": self._clock()},
            audit=("cancelled", user, ""),
            audit_task=True,
            audit_note=note,
            notices=notices,
        )

    async def record_cancel_too_late(self, request_id: int, *, user: str, notices: Sequence[Notice]) -> Request | None:
        """Amazon refused ``user``'s cancel: the hold is over and the task runs. Audited even if already moved."""
        try:
            return await self._mover.move(
                request_id,
                from_={RequestStatus.ON_HOLD},
                to=RequestStatus.IN_PROGRESS,
                audit=("cancel too late", user, ""),
                audit_task=True,
                notices=notices,
            )
        except NotMoved as lost:
            current = lost.current
            detail = f"task {current.task_id}" if current is not None and current.task_id else ""
            await self._database.run(
                lambda db: append_audit(
                    db,
                    at=self._clock(),
                    request_id=request_id,
                    actor=user,
                    action="cancel too late",
                    detail=detail,
                    actor_name=self._names.of(user),
                )
            )
            return None
