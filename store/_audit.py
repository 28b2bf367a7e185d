"""The append-only audit log: who did what to which request, and when; and the names that go with the ids.

``store.audit`` appends entries outside a change of state (a refusal, a link shown); a change of state
appends its own entry in its own transaction (``append_audit`` in store/_rows.py), so the two can never
disagree.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from store._chain import CHAIN_COLUMNS, ChainReport, walk
from store._database import Database
from store._key import EmailCipher
from store._records import AuditEntry
from store._rows import append_audit

__all__ = ["ActorNames", "Audit", "AuditRow"]

_NAME_UNSAFE = re.compile(r"[^\w.\- ]")  # a Slack name is letters, digits, dots, dashes; nothing that formats


class ActorNames:
    """The Slack name that came with each user's latest action, for the audit entries to record beside the id.

    Held in memory only (Slack sends it with every command and click, so no call is made for it).
    """

    def __init__(self, *, size: int = 10_000) -> None:
        self._names: dict[str, str] = {}
        self._size = size

    def know(self, user_id: str, name: str) -> None:
        name = _NAME_UNSAFE.sub("", name)[:80]
        if not name or self._names.get(user_id) == name:
            return
        if len(self._names) >= self._size:
            self._names.pop(next(iter(self._names)))
        self._names[user_id] = name

    def of(self, actor: str) -> str:
        """The name known for ``actor``, or "" (the bot, Amazon, the CLI, or a user not seen since start)."""
        return self._names.get(actor, "")


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit entry with what an auditor needs beside it: the task, and the shopper (masked or revealed)."""

    at: float
    request_id: int | None
    task_id: str | None
    actor: str
    actor_name: str
    action: str
    detail: str
    email_masked: str | None
    email: str | None  # only when revealed with the key; None once purged, or when it does not open
    unreadable: bool = False  # revealed, but this row's email does not open with the key (a damaged row)
    kind: str = ""  # the request's kind (retrieval, deletion); "" for an entry about no request


class Audit:
    """``store.audit``: append to the log, read it back, export it for an auditor."""

    def __init__(
        self, *, database: Database, clock: Callable[[], float] = time.time, cipher: EmailCipher, names: ActorNames
    ) -> None:
        self._database = database
        self._clock = clock
        self._cipher = cipher
        self._names = names

    async def append(self, *, request_id: int | None, actor: str, action: str, detail: str = "") -> None:
        """Append one entry to the audit log."""
        at, actor_name = self._clock(), self._names.of(actor)
        await self._database.run(
            partial(
                append_audit,
                at=at,
                request_id=request_id,
                actor=actor,
                action=action,
                detail=detail,
                actor_name=actor_name,
            )
        )

    async def verify(self, *, noted: int | None = None) -> ChainReport:
        """Walk the log's hash chain, oldest first, a row at a time, in one consistent snapshot; ``noted``: an
        entry whose hash the report should give (one written down earlier, to compare)."""
        return await self._database.read(partial(_walk_log, noted=noted))

    async def entries(self, *, request_id: int | None = None) -> list[AuditEntry]:
        """The audit log, oldest first, for one request or for all."""
        where, params = ("WHERE request_id = ?", (request_id,)) if request_id is not None else ("", ())
        rows = await self._database.fetch(
            f"SELECT id, at, request_id, actor, action, detail, actor_name, prev_hash, hash FROM audit {where}"
            " ORDER BY id",
            params,
        )
        return [
            AuditEntry(
                id=row["id"],
                at=row["at"],
                request_id=row["request_id"],
                actor=row["actor"],
                action=row["action"],
                detail=row["detail"],
                actor_name=row["actor_name"],
                prev_hash=row["prev_hash"],
                hash=row["hash"],
            )
            for row in rows
        ]

    async def export(self, *, since: float, reveal: bool = False) -> list[AuditRow]:
        """The audit log from ``since`` on, oldest first, with each request's task and shopper."""
        rows = await self._database.fetch(
            "SELECT a.at, a.request_id, r.task_id, a.actor, a.actor_name, a.action, a.detail, r.email_masked,"
            " r.email_sealed, r.kind"
            " FROM audit a LEFT JOIN requests r ON r.id = a.request_id WHERE a.at >= ? ORDER BY a.id",
            (since,),
        )
        out = []
        for row in rows:
            email, unreadable = None, False
            if reveal and row["email_sealed"] is not None:
                try:
                    email = self._cipher.decrypt(bytes(row["email_sealed"]))
                except ValueError:  # one damaged row must not cost the auditor the whole export
                    unreadable = True
            out.append(
                AuditRow(
                    at=row["at"],
                    request_id=row["request_id"],
                    task_id=row["task_id"],
                    actor=row["actor"],
                    actor_name=row["actor_name"],
                    action=row["action"],
                    detail=row["detail"],
                    email_masked=row["email_masked"],
                    email=email,
                    unreadable=unreadable,
                    kind=row["kind"] or "",
                )
            )
        return out


def _walk_log(db: sqlite3.Connection, *, noted: int | None) -> ChainReport:
    cursor = db.execute(f"SELECT {CHAIN_COLUMNS} FROM audit ORDER BY id")
    try:
        return walk(cursor, noted=noted)
    finally:
        cursor.close()
