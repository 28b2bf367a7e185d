"""New requests stored a burst at a time: what a command's acknowledgement waits on.

Commands acknowledged at once arrive in one group commit (``Database.run_batched``); this stores them with
one statement per step for the lot (look for duplicates, insert, audit, queue the threads' first posts)
rather than a statement per step for each. On SQLite that saves little; on PostgreSQL every statement is a
round trip to the server and the driver's work, and a burst's separate units were what kept it waiting
(benchmarks/README.md, "PostgreSQL").

Each request decides as it would alone, in order: a command for a shopper already asked about in the same
burst is stored in a later pass of the same transaction, so it finds the first as its duplicate.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from store._records import Notice, Request
from store._rows import (
    NEVER_STARTED,
    REQUEST_COLUMNS,
    ROWS_AT_ONCE,
    UNFINISHED,
    AuditLine,
    append_audits,
    enqueue_all,
    literals,
    marks,
    request_from_row,
    rows_of,
)

__all__ = ["NEW_COLUMNS", "NewRequest", "insert_new"]

NEW_COLUMNS = (
    "client_token",
    "email_hash",
    "email_sealed",
    "email_masked",
    "requester",
    "channel",
    "status",
    "moving",
    "never_started",
    "created_at",
    "updated_at",
    "next_check_at",
    "due_at",
    "deadline",
    "kind",
    "params",
    "remind_at",
    "ref",
    "received_on",
    "received_via",
    "outside_ref",
    "verified_by",
    "verified_how",
    "verified_at",
)

# For each (position, shopper's hash, kind, since): the newest request that makes it a duplicate, if any.
_DUPLICATES = (
    "SELECT v.column1, (SELECT r.id FROM requests r WHERE r.email_hash = v.column2 AND r.kind = v.column3"
    f" AND r.status NOT IN ({literals(NEVER_STARTED)})"
    f" AND (r.status IN ({literals(UNFINISHED)}) OR r.created_at >= v.column4) ORDER BY r.id DESC LIMIT 1)"
    " FROM (VALUES {values}) AS v"
)


@dataclass(frozen=True, slots=True)
class NewRequest:
    """A request to store: its row, and what it says and sets off once stored."""

    columns: Mapping[str, object]  # a value for each of NEW_COLUMNS
    duplicate_since: float | None  # one of its kind for the shopper, unfinished or made since, is returned instead
    audit: AuditLine  # its request_id is the new row's, once it has one
    notices: Sequence[Notice]

    @property
    def key(self) -> tuple[object, object]:
        """What makes two requests candidates to be each other's duplicates."""
        return self.columns["email_hash"], self.columns["kind"]


def insert_new(db: sqlite3.Connection, new: list[NewRequest]) -> list[Request | int]:
    """Each new request's id once stored, or the request it duplicates (stored nothing), in ``new``'s order."""
    outcomes: dict[int, Request | int] = {}
    waiting = list(range(len(new)))
    while waiting:
        this_pass: list[int] = []
        later: list[int] = []
        keys: set[tuple[object, object]] = set()
        for index in waiting:
            (later if new[index].key in keys else this_pass).append(index)
            keys.add(new[index].key)
        outcomes.update(_insert_pass(db, {index: new[index] for index in this_pass}))
        waiting = later
    return [outcomes[index] for index in range(len(new))]


def _insert_pass(db: sqlite3.Connection, new: dict[int, NewRequest]) -> dict[int, Request | int]:
    """Requests for different shoppers (or kinds), which cannot be each other's duplicates."""
    duplicates = _duplicates(db, new)
    stored = [index for index in new if index not in duplicates]
    ids: dict[int, int] = {}
    for start in range(0, len(stored), ROWS_AT_ONCE):
        chunk = stored[start : start + ROWS_AT_ONCE]
        rows = db.execute(
            f"INSERT INTO requests ({', '.join(NEW_COLUMNS)}) VALUES {rows_of(len(chunk), len(NEW_COLUMNS))}"
            " RETURNING id, client_token",
            [new[index].columns[column] for index in chunk for column in NEW_COLUMNS],
        ).fetchall()
        by_token = {row[1]: int(row[0]) for row in rows}
        ids.update({index: by_token[new[index].columns["client_token"]] for index in chunk})
    append_audits(db, [replace(new[index].audit, request_id=ids[index]) for index in stored])
    enqueue_all(db, [(ids[index], new[index].notices, new[index].audit.at) for index in stored])
    return {**duplicates, **ids}


def _duplicates(db: sqlite3.Connection, new: dict[int, NewRequest]) -> dict[int, Request]:
    asked = [
        (index, *request.key, request.duplicate_since)
        for index, request in new.items()
        if request.duplicate_since is not None
    ]
    if not asked:
        return {}
    found = {
        int(row[0]): int(row[1])
        for row in db.execute(
            _DUPLICATES.format(values=rows_of(len(asked), 4)),
            [value for values in asked for value in values],
        ).fetchall()
        if row[1] is not None
    }
    if not found:
        return {}
    ids = sorted(set(found.values()))
    rows = db.execute(f"SELECT {REQUEST_COLUMNS} FROM requests WHERE id IN ({marks(ids)})", ids).fetchall()
    requests = {int(row["id"]): request_from_row(row) for row in rows}
    return {index: requests[request_id] for index, request_id in found.items()}
