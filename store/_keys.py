"""What the database holds about its key: a constant sealed under it, and how every email moves to a new one.

Plain sqlite3 code, run inside the caller's transaction (``Database.run``), so the key check and the
re-sealing commit with the rest of their unit of work or not at all.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from core import ConfigError
from store._crypto import EmailCipher
from store._rows import append_audit

__all__ = ["KeyState", "read_key_state", "record_key_check", "rotate"]

_CHECK_TEXT = "data-request-bot key check"


@dataclass(frozen=True, slots=True)
class KeyState:
    """What a database says about its key: its stored check, or else one email sealed under it."""

    sealed: bytes | None = None
    fingerprint: str | None = None
    sample: bytes | None = None

    @property
    def has_data(self) -> bool:
        """Something in the database was sealed under a key, so only that key will do."""
        return self.sealed is not None or self.sample is not None

    def opens(self, cipher: EmailCipher) -> bool:
        """``cipher`` opens what the database holds (trivially so when it holds nothing)."""
        sealed = self.sealed if self.sealed is not None else self.sample
        if sealed is None:
            return True
        try:
            opened = cipher.decrypt(sealed)
        except ValueError:
            return False
        return self.sealed is None or opened == _CHECK_TEXT


def read_key_state(db: sqlite3.Connection) -> KeyState:
    """Read the key check (or, without one, the oldest sealed email); works on an unmigrated file too."""
    try:
        row = db.execute("SELECT sealed, fingerprint FROM key_check WHERE id = 1").fetchone()
    except sqlite3.OperationalError:  # no such table: a database from before the check, or an empty file
        row = None
    if row is not None:
        return KeyState(sealed=bytes(row[0]), fingerprint=str(row[1]))
    try:
        sample = db.execute(
            "SELECT email_sealed FROM requests WHERE email_sealed IS NOT NULL ORDER BY id LIMIT 1"
        ).fetchone()
    except sqlite3.OperationalError:
        sample = None
    return KeyState(sample=bytes(sample[0]) if sample else None)


def record_key_check(db: sqlite3.Connection, *, cipher: EmailCipher, at: float) -> None:
    """Store (or replace) the check: ``_CHECK_TEXT`` sealed under ``cipher``, and its fingerprint."""
    db.execute(
        "INSERT OR REPLACE INTO key_check (id, sealed, fingerprint, recorded_at) VALUES (1, ?, ?, ?)",
        (cipher.encrypt(_CHECK_TEXT), cipher.fingerprint, at),
    )


def rotate(db: sqlite3.Connection, *, old: EmailCipher, new: EmailCipher, actor: str, at: float) -> int:
    """Re-seal every email and recompute every lookup hash under ``new``, update the check, audit it.

    Runs inside one transaction (``Database.run``): it all commits, or none of it does.
    Returns how many emails were re-sealed.
    """
    rows = db.execute("SELECT id, email_sealed FROM requests WHERE email_sealed IS NOT NULL ORDER BY id").fetchall()
    for row in rows:
        request_id = row["id"]
        try:
            email = old.decrypt(bytes(row["email_sealed"]))
        except ValueError as error:  # the key check passed, so this one row is damaged: stop, roll all back
            raise ConfigError(
                (
                    f"request {request_id}'s stored email does not open with ENCRYPTION_KEY (the row is damaged); "
                    "nothing was rotated",
                    "restore the database from a backup made before the damage, then run rotate-key again",
                )
            ) from error
        db.execute(
            "UPDATE requests SET email_sealed = ?, email_hash = ? WHERE id = ?",
            (new.encrypt(email), new.lookup_hash(email), request_id),
        )
    record_key_check(db, cipher=new, at=at)
    append_audit(
        db,
        at=at,
        request_id=None,
        actor=actor,
        action="encryption key rotated",
        detail=f"{len(rows)} shopper emails re-encrypted; key {old.fingerprint} replaced by {new.fingerprint}",
    )
    return len(rows)
