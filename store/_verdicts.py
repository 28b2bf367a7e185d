"""What staff record about a case for the compliance record (``store.verdicts``): identity verified, denied.

Each is one transaction with its audit entry and the thread's notices, like every other change. Staff's
notes are free text that may describe the shopper, so they are sealed with the store's cipher (as emails
are), never written to the append-only audit log (it holds the method or the reason, a word from
``core``), and erased with the email by retention. ``notes`` opens them for whoever asks about the case.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core import Outcome
from store._audit import ActorNames
from store._database import Database
from store._key import EmailCipher
from store._moves import Mover
from store._records import Moved, Notice, RequestStatus
from store._rows import append_audit, enqueue, fetch_request

__all__ = ["IDENTITY_VERIFIED", "Notes", "Verdicts"]

IDENTITY_VERIFIED = "identity verified"  # the audit action
DENIED = "denied"


@dataclass(frozen=True, slots=True)
class Notes:
    """Staff's notes on a case, opened: on the verification, and on the outcome (None: none kept, or erased)."""

    verified: str | None = None
    outcome: str | None = None


class Verdicts:
    """``store.verdicts``: the shopper's identity recorded as verified, a case denied; their notes sealed."""

    def __init__(
        self, *, database: Database, clock: Callable[[], float] = time.time, cipher: EmailCipher, names: ActorNames
    ) -> None:
        self._database = database
        self._clock = clock
        self._cipher = cipher
        self._names = names
        self._mover = Mover(database=database, clock=clock, names=names)

    def _seal(self, note: str) -> bytes | None:
        return self._cipher.encrypt(note) if note.strip() else None

    async def verify(
        self, request_id: int, *, user: str, method: str, note: str = "", notices: Sequence[Notice]
    ) -> Moved:
        """Record that ``user`` verified the shopper's identity by ``method`` (a ``VerificationMethod``), now.

        Once per case, while it is open: not recorded (``moved`` False) when it was verified before, is
        closed, or never started; the request as it stands says which.
        """
        now = self._clock()
        sealed = self._seal(note)

        def verify(db: sqlite3.Connection) -> Moved:
            cursor = db.execute(
                "UPDATE requests SET verified_by = ?, verified_how = ?, verified_at = ?, verified_note_sealed = ?,"
                " updated_at = ? WHERE id = ? AND verified_at IS NULL AND closed_at IS NULL AND never_started = 0",
                (user, method, now, sealed, now, request_id),
            )
            request = fetch_request(db, request_id)
            if cursor.rowcount != 1 or request is None:
                return Moved(moved=False, request=request)
            append_audit(
                db,
                at=now,
                request_id=request_id,
                actor=user,
                action=IDENTITY_VERIFIED,
                detail=method,
                actor_name=self._names.of(user),
            )
            enqueue(db, request_id, notices, now)
            return Moved(moved=True, request=request)

        result: Moved = await self._database.run(verify)
        return result

    async def deny(
        self,
        request_id: int,
        *,
        user: str,
        reason: str,
        note: str = "",
        from_: RequestStatus,
        to: RequestStatus,
        notices: Sequence[Notice],
    ) -> Moved:
        """Close an open case as denied for ``reason`` (a ``DenialReason``): one move, from where it stood.

        ``to`` is where the request goes (a request still waiting for approval ends there, so nothing
        reaches Amazon; any other stays where it is). Not moved when it no longer stands at ``from_``,
        or was closed meanwhile.
        """
        now = self._clock()
        return await self._mover.attempt(
            request_id,
            from_={from_},
            to=to,
            extra={
                "closed_at": now,
                "closed_by": user,
                "outcome": Outcome.DENIED.value,
                "denial_reason": reason,
                "outcome_note_sealed": self._seal(note),
            },
            open_only=True,
            audit=(DENIED, user, reason),
            notices=notices,
        )

    async def notes(self, request_id: int) -> Notes:
        """The case's notes, opened (a note that does not open with the key reads as None)."""
        rows = await self._database.fetch(
            "SELECT verified_note_sealed, outcome_note_sealed FROM requests WHERE id = ?", (request_id,)
        )
        if not rows:
            return Notes()
        return Notes(
            verified=self._open(rows[0]["verified_note_sealed"]), outcome=self._open(rows[0]["outcome_note_sealed"])
        )

    def _open(self, sealed: bytes | None) -> str | None:
        if sealed is None:
            return None
        try:
            return self._cipher.decrypt(bytes(sealed))
        except ValueError:
            return None
