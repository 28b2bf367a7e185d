"""The single way a request changes status (``Mover.move``), shared by ``store.requests`` and ``store.decisions``.

A move is conditional on where the request stands, and commits with its audit entry and the notices it
queues for Slack, or not at all.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from store._audit import ActorNames
from store._database import Database
from store._records import Notice, Request, RequestStatus, TaskError
from store._rows import append_audit, enqueue, fetch_request, params_json, status_columns

__all__ = ["Mover", "NotMoved", "error_codes"]


class Mover:
    """Moves requests from one status to another, one transaction each."""

    def __init__(self, *, database: Database, clock: Callable[[], float] = time.time, names: ActorNames) -> None:
        self._database = database
        self._clock = clock
        self._names = names

    async def move(
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
    ) -> Request:
        """The single way a request changes status: conditional on where it stands, with its side effects.

        ``params`` are merged into the kind's params; ``open_only`` moves it only if its case is not closed;
        ``audit_task`` names the task in the audit entry's detail (then ``audit_note``); ``passed`` are the
        audit actions, by the same actor, of steps the request went through unseen (written before ``audit``'s).
        """
        now = self._clock()
        columns = {**status_columns(to), "updated_at": now, **(extra or {})}
        assignments = ", ".join(f"{name} = ?" for name in columns)
        values: list[Any] = list(columns.values())
        if params:
            assignments += ", params = json_patch(params, ?)"
            values.append(params_json(params))
        marks = ", ".join("?" for _ in from_)
        still_open = " AND closed_at IS NULL" if open_only else ""

        def move(db: sqlite3.Connection) -> Request:
            before = fetch_request(db, request_id) if audit_task else None
            cursor = db.execute(
                f"UPDATE requests SET {assignments} WHERE id = ? AND status IN ({marks}){still_open}",
                (*values, request_id, *(s.value for s in from_)),
            )
            request = fetch_request(db, request_id)
            if cursor.rowcount != 1 or request is None:
                raise NotMoved(request_id)
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
            return request

        result: Request = await self._database.run(move)
        return result


def error_codes(errors: Sequence[TaskError]) -> str:
    """Amazon's error codes for the audit log, never its messages: the log is append-only, never purged."""
    return "; ".join(str(e.code or "no code") for e in errors)


class NotMoved(LookupError):
    """The request was not in a state the change applies to (already moved, or unknown)."""
