"""How a request row becomes a ``Request`` record: one column list, read by name, for every query."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from store._chain import entry_hash, next_link
from store._records import Notice, Request, RequestStatus, TaskError

__all__ = [
    "CLOSABLE",
    "MOVING",
    "MOVING_SQL",
    "NEVER_STARTED",
    "OPEN_CASE",
    "REQUEST_COLUMNS",
    "ROWS_AT_ONCE",
    "UNFINISHED",
    "UNFINISHED_SQL",
    "AuditLine",
    "append_audit",
    "append_audits",
    "enqueue",
    "enqueue_all",
    "errors_json",
    "fetch_request",
    "literals",
    "marks",
    "params_json",
    "request_from_row",
    "rows_of",
    "status_columns",
]

REQUEST_COLUMNS = (
    "id, client_token, email_masked, requester, channel, thread_ts, task_id, status, errors, created_at,"
    " updated_at, due_at, deadline, reminders_sent, closed_at, closed_by, purged_at,"
    " check_failures, waiting_since, start_sent_at, kind, params,"
    " approved_by, approved_at, hold_ends_at, cancelled_by, cancelled_at, ref, cancel_sent_at,"
    " received_on, received_via, outside_ref, verified_by, verified_how, verified_at, outcome, denial_reason,"
    " extension_told_at"
)
ROWS_AT_ONCE = 100  # rows one INSERT writes at most: well under either database's limit of bound values
# The statuses each shared rule is about, as the queries bind them (RequestStatus says which are which).
UNFINISHED = tuple(s.value for s in RequestStatus if s.unfinished)
MOVING = tuple(s.value for s in RequestStatus if s.moving)
NEVER_STARTED = tuple(s.value for s in RequestStatus if s.never_started)
CLOSABLE = tuple(s.value for s in RequestStatus if s.closable)


def literals(values: Sequence[str]) -> str:
    """The statuses written into the SQL itself (the enum's constants, never input)."""
    return ", ".join(f"'{value}'" for value in values)


def status_columns(status: RequestStatus) -> dict[str, object]:
    """The columns written whenever ``status`` is: the status and what it means, for the partial indexes."""
    return {"status": status.value, "moving": int(status.moving), "never_started": int(status.never_started)}


# The partial indexes' WHERE clauses (store/_schema.py), said once: a query that wants the index says this.
# SQLite uses a partial index only when the query's WHERE says the index's own terms.
OPEN_CASE = "closed_at IS NULL AND never_started = 0"
MOVING_SQL = "moving = 1"  # what the reconciler polls (requests_unfinished, _by_age)
UNFINISHED_SQL = f"status IN ({literals(UNFINISHED)})"


def marks(values: Sequence[object]) -> str:
    """One ``?`` per value, for an ``IN (...)`` the values are bound to."""
    return ", ".join("?" for _ in values)


def rows_of(count: int, width: int) -> str:
    """``count`` rows of ``width`` bound values, for an INSERT of many rows in one statement."""
    row = f"({', '.join('?' * width)})"
    return ", ".join(row for _ in range(count))


def params_json(params: Mapping[str, str]) -> str:
    return json.dumps(dict(params), sort_keys=True)


def errors_json(errors: Sequence[TaskError]) -> str:
    return json.dumps([{"code": e.code, "message": e.message} for e in errors])


def request_from_row(row: sqlite3.Row) -> Request:
    """The record for one row selected with ``REQUEST_COLUMNS``, read column by column."""
    errors = tuple(
        TaskError(str(e["code"]) if e.get("code") is not None else None, str(e.get("message") or ""))
        for e in json.loads(row["errors"] or "[]")
    )
    return Request(
        id=row["id"],
        client_token=row["client_token"],
        email_masked=row["email_masked"],
        requester=row["requester"],
        channel=row["channel"],
        thread_ts=row["thread_ts"],
        task_id=row["task_id"],
        status=RequestStatus(row["status"]),
        errors=errors,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        due_at=row["due_at"],
        deadline=row["deadline"] or "",
        reminders_sent=frozenset(filter(None, (row["reminders_sent"] or "").split(","))),
        closed_at=row["closed_at"],
        closed_by=row["closed_by"],
        purged_at=row["purged_at"],
        check_failures=row["check_failures"],
        waiting_since=row["waiting_since"],
        start_sent_at=row["start_sent_at"],
        kind=row["kind"],
        params={str(k): str(v) for k, v in json.loads(row["params"] or "{}").items()},
        approved_by=row["approved_by"],
        approved_at=row["approved_at"],
        hold_ends_at=row["hold_ends_at"],
        cancelled_by=row["cancelled_by"],
        cancelled_at=row["cancelled_at"],
        ref=row["ref"],
        cancel_sent_at=row["cancel_sent_at"],
        received_on=row["received_on"] or "",
        received_via=row["received_via"],
        outside_ref=row["outside_ref"],
        verified_by=row["verified_by"],
        verified_how=row["verified_how"],
        verified_at=row["verified_at"],
        outcome=row["outcome"],
        denial_reason=row["denial_reason"],
        extension_told_at=row["extension_told_at"],
    )


def fetch_request(db: sqlite3.Connection, request_id: int) -> Request | None:
    """The request as the current transaction sees it."""
    row = db.execute(f"SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?", (request_id,)).fetchone()
    return request_from_row(row) if row is not None else None


@dataclass(frozen=True, slots=True)
class AuditLine:
    """One audit entry to append, before the chain gives it an id and a hash."""

    at: float
    request_id: int | None
    actor: str
    action: str
    detail: str = ""
    actor_name: str = ""


def append_audit(
    db: sqlite3.Connection,
    *,
    at: float,
    request_id: int | None,
    actor: str,
    action: str,
    detail: str = "",
    actor_name: str = "",
) -> None:
    """One audit entry, inside the caller's transaction (the table refuses updates and deletes)."""
    append_audits(db, [AuditLine(at, request_id, actor, action, detail, actor_name)])


def append_audits(db: sqlite3.Connection, lines: Sequence[AuditLine]) -> None:
    """Audit entries in order, inside the caller's transaction, in one statement.

    They take the next ids and chain from the entry before them in that transaction, so two appends, from
    this process or another, can never name the same predecessor.
    """
    if not lines:
        return
    entry_id, prev_hash = next_link(db)
    rows: list[tuple[object, ...]] = []
    for line in lines:
        at, request_id, actor, action, detail, name = (
            line.at,
            line.request_id,
            line.actor,
            line.action,
            line.detail,
            line.actor_name,
        )
        hashed = entry_hash(entry_id, at, request_id, actor, name, action, detail, prev_hash)
        rows.append((entry_id, at, request_id, actor, action, detail, name, prev_hash, hashed))
        entry_id, prev_hash = entry_id + 1, hashed
    db.executemany(
        "INSERT INTO audit (id, at, request_id, actor, action, detail, actor_name, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def enqueue(db: sqlite3.Connection, request_id: int, notices: Iterable[Notice], now: float) -> None:
    """Queue what a change tells Slack, in the transaction of that change (put into words when sent)."""
    enqueue_all(db, [(request_id, notices, now)])


def enqueue_all(db: sqlite3.Connection, changes: Iterable[tuple[int, Iterable[Notice], float]]) -> None:
    """``enqueue`` for several changes of one transaction, in one statement."""
    db.executemany(
        "INSERT INTO outbox (request_id, method, payload, created_at, next_attempt_at, purpose)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (request_id, n.name, json.dumps(dict(n.args)), now, now, n.purpose)
            for request_id, notices, now in changes
            for n in notices
        ],
    )
