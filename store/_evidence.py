"""Everything the database holds about one case, read in one snapshot: what an evidence file is made of.

The request, its audit entries (with their hashes), the events Amazon sent for each of its tasks and
the Slack posts it queued, as records: the bot puts them into words (bot/evidence.py). Posts are
listed by what they said (the notice's name) and when, never with their payload, and the shopper's
email only when revealed with the key.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from functools import partial

from store._database import Database
from store._key import EmailCipher
from store._records import AuditEntry, Request
from store._rows import REQUEST_COLUMNS, marks, request_from_row

__all__ = ["CaseFile", "Evidence", "PostRow", "ReceivedEvent", "started_task"]

_STARTED = re.compile(r"task (\S+?)(?:,|$)")  # the detail of a "task started" entry (store/_requests.py)


def started_task(entry: AuditEntry) -> str | None:
    """The task a "task started" entry names; None for any other entry."""
    match = _STARTED.match(entry.detail) if entry.action == "task started" else None
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """An event Amazon sent about one of the case's tasks, as the inbox holds it (until it is forgotten)."""

    event_id: str
    event_type: str
    task_id: str
    received_at: float
    processed_at: float | None
    attempts: int


@dataclass(frozen=True, slots=True)
class PostRow:
    """A Slack post the case queued: which notice, when queued, and when sent or given up."""

    id: int
    notice: str
    purpose: str
    created_at: float
    sent_at: float | None
    gave_up_at: float | None
    attempts: int


@dataclass(frozen=True, slots=True)
class CaseFile:
    """One case as the database knows it, all read at the same moment."""

    request: Request
    audit: tuple[AuditEntry, ...]
    tasks: tuple[str, ...]  # every task it had at Amazon, oldest first (a retry starts a new one)
    events: tuple[ReceivedEvent, ...]
    posts: tuple[PostRow, ...]
    email: str | None = None  # the shopper's email, only when revealed (None once erased)
    unreadable: bool = False  # revealed, but the stored email does not open with the key


class Evidence:
    """``store.evidence``: one case's file, found by its request id or by any of its task ids."""

    def __init__(self, *, database: Database, cipher: EmailCipher) -> None:
        self._database = database
        self._cipher = cipher

    async def find(self, ref: str) -> int | None:
        """The id of the case ``ref`` names: its task id, a task it had before a retry, or its request id."""
        return await self._database.read(partial(_find, ref=ref.strip()))

    async def case(self, request_id: int, *, reveal: bool = False) -> CaseFile | None:
        """The case ``request_id``, with the shopper's email when ``reveal``; None when there is none."""
        return await self._database.read(partial(_read, request_id=request_id, reveal=reveal, cipher=self._cipher))


def _find(db: sqlite3.Connection, *, ref: str) -> int | None:
    row = db.execute("SELECT id FROM requests WHERE task_id = ?", (ref,)).fetchone()
    if row is None and ref.isdigit():
        row = db.execute("SELECT id FROM requests WHERE id = ?", (int(ref),)).fetchone()
    if row is None:  # a task an erasure had before it was retried: only its "task started" entry names it
        row = db.execute(
            "SELECT request_id AS id FROM audit WHERE action = 'task started' AND (detail = ? OR detail LIKE ?)"
            " AND request_id IS NOT NULL ORDER BY id LIMIT 1",
            (f"task {ref}", f"task {ref},%"),
        ).fetchone()
    return int(row["id"]) if row is not None else None


def _read(db: sqlite3.Connection, *, request_id: int, reveal: bool, cipher: EmailCipher) -> CaseFile | None:
    row = db.execute(f"SELECT {REQUEST_COLUMNS}, email_sealed FROM requests WHERE id = ?", (request_id,)).fetchone()
    if row is None:
        return None
    request = request_from_row(row)
    audit = tuple(
        AuditEntry(
            id=a["id"],
            at=a["at"],
            request_id=a["request_id"],
            actor=a["actor"],
            action=a["action"],
            detail=a["detail"],
            actor_name=a["actor_name"],
            prev_hash=a["prev_hash"],
            hash=a["hash"],
        )
        for a in db.execute(
            "SELECT id, at, request_id, actor, action, detail, actor_name, prev_hash, hash FROM audit"
            " WHERE request_id = ? ORDER BY id",
            (request_id,),
        )
    )
    tasks = tuple(t for t in dict.fromkeys([*(started_task(a) for a in audit), request.task_id]) if t)
    events = tuple(
        ReceivedEvent(e["event_id"], e["event_type"], e["task_id"], e["received_at"], e["processed_at"], e["attempts"])
        for e in db.execute(
            "SELECT event_id, event_type, task_id, received_at, processed_at, attempts FROM inbox"
            f" WHERE task_id IN ({marks(tasks)}) ORDER BY received_at, event_id",
            tasks,
        )
    )
    posts = tuple(
        PostRow(p["id"], p["method"], p["purpose"], p["created_at"], p["sent_at"], p["gave_up_at"], p["attempts"])
        for p in db.execute(
            "SELECT id, method, purpose, created_at, sent_at, gave_up_at, attempts FROM outbox"
            " WHERE request_id = ? ORDER BY id",
            (request_id,),
        )
    )
    email, unreadable = None, False
    if reveal and row["email_sealed"] is not None:
        try:
            email = cipher.decrypt(bytes(row["email_sealed"]))
        except ValueError:  # a damaged row: the file says so rather than failing whole
            unreadable = True
    return CaseFile(request, audit, tasks, events, posts, email, unreadable)
