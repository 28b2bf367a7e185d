"""The key: field encryption for shopper emails, the key file, and what the database holds about its key.

One 32-byte master key (``ENCRYPTION_KEY`` or a generated key file) is split by
HKDF into an encryption key and a lookup key, so that the lookup hash, which
must be deterministic, never shares a key with the cipher.

The key check: a constant sealed under the key (and the key's fingerprint) is
stored on first start. Every start, and ``check``, ``audit``, ``purge``,
``backup`` and ``rotate-key``, open it again first: a wrong key, or no key for a
database that holds data, is refused in one line rather than found later as "no
such request", a missed duplicate or a traceback. When the key that does open
the data waits in the file ``rotate-key`` writes before it commits, the refusal
names that file. The database side (key state, the check, re-sealing every
email) is plain sqlite3 code run inside the caller's transaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core import ConfigError
from store._files import PRIVATE_FILE, fsync_path
from store._rows import append_audit

__all__ = [
    "EmailCipher",
    "KeyState",
    "create_key_file",
    "inspect_key",
    "key_file_for",
    "key_file_or_none",
    "key_problem",
    "normalise_email",
    "pending_key_file_for",
    "read_key_file",
    "read_key_state",
    "record_key_check",
    "rotate",
    "stored_key_state",
    "write_key_file",
]

logger = logging.getLogger(__name__)
_NONCE_BYTES = 12
_VERSION = b"\x01"


def normalise_email(email: str) -> str:
    """The form an email is matched in: trimmed and lower-cased."""
    return email.strip().lower()


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"data-request-bot " + purpose).derive(master)


class EmailCipher:
    """Encrypts, decrypts and indexes shopper emails under one master key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._aead = AESGCM(_derive(master_key, b"email encryption"))
        self._lookup_key = _derive(master_key, b"email lookup")
        self._fingerprint = _derive(master_key, b"key fingerprint")[:6].hex()

    @property
    def fingerprint(self) -> str:
        """A short name for the key, safe to show: operators compare keys by it, it reveals nothing of the key."""
        return self._fingerprint

    def encrypt(self, email: str) -> bytes:
        """Seal the email as typed (Amazon gets it so); a fresh nonce each time, so equal emails differ at rest."""
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, email.strip().encode(), _VERSION)

    def decrypt(self, sealed: bytes) -> str:
        """Open what ``encrypt`` sealed; ValueError if it was sealed under another key or altered."""
        if sealed[:1] != _VERSION:
            raise ValueError("unknown encryption version")
        nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, ciphertext, _VERSION).decode()
        except InvalidTag as error:
            raise ValueError("the email cannot be decrypted with this key") from error

    def lookup_hash(self, email: str) -> bytes:
        """A keyed hash of the normalised email: equal emails, equal hashes, nothing to reverse."""
        return hmac.new(self._lookup_key, normalise_email(email).encode(), hashlib.sha256).digest()


def read_key_file(key_path: Path) -> bytes | None:
    """The key in the key file beside the database, None when there is no file; ConfigError if it is damaged."""
    try:
        encoded = key_path.read_bytes().strip()
    except FileNotFoundError:
        return None
    try:
        key = base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(
            (
                f"ENCRYPTION_KEY is unset and the key file {key_path} is damaged",
                "restore the key file from backup, or set ENCRYPTION_KEY to the key the database was created with",
            )
        )
    return key


def create_key_file(key_path: Path) -> bytes:
    """Make a new key and write it to ``key_path`` (mode 0600); another process's file, if it won the race."""
    key = os.urandom(32)
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:  # another process created it between our read and our write
        existing = read_key_file(key_path)
        assert existing is not None
        return existing
    with os.fdopen(fd, "wb") as file:
        _write_durably(file.fileno(), key)
    fsync_path(key_path.parent)  # data is sealed under this key next: its file must outlive a crash
    logger.warning(
        "ENCRYPTION_KEY is not set: created a key file at %s (mode 0600). Copy its contents into ENCRYPTION_KEY "
        "and keep a copy apart from the database: the stored shopper emails open with this key only "
        "(a newly made key will not open them).",
        key_path,
    )
    return key


def write_key_file(key_path: Path, key: bytes) -> None:
    """Put ``key`` at ``key_path`` whole, owner-only and on disk (file and folder entry fsynced); OSError if not.

    Callers seal data under the key only after this returns, so no crash leaves data under a key that
    no file holds. The key is written beside its place and renamed in, so the file is never half written.
    """
    temporary = key_path.with_name(f".{key_path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        try:
            _write_durably(fd, key)
        finally:
            os.close(fd)
        os.replace(temporary, key_path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_path(key_path.parent)


def _write_durably(fd: int, key: bytes) -> None:
    """The key file's one format (urlsafe base64, a newline, as ENCRYPTION_KEY takes it), flushed to disk."""
    os.write(fd, base64.urlsafe_b64encode(key) + b"\n")
    os.fsync(fd)


# ----------------------------------------------------------------- what the database holds about its key


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
        "INSERT INTO key_check (id, sealed, fingerprint, recorded_at) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE"
        " SET sealed = excluded.sealed, fingerprint = excluded.fingerprint, recorded_at = excluded.recorded_at",
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
    notes = _reseal_notes(db, old=old, new=new)
    record_key_check(db, cipher=new, at=at)
    append_audit(
        db,
        at=at,
        request_id=None,
        actor=actor,
        action="encryption key rotated",
        detail=f"{len(rows)} shopper emails and {notes} staff notes re-encrypted; key {old.fingerprint} replaced"
        f" by {new.fingerprint}",
    )
    return len(rows)


_NOTES = ("verified_note_sealed", "outcome_note_sealed")  # staff's free text on a case, sealed like its email


def _reseal_notes(db: sqlite3.Connection, *, old: EmailCipher, new: EmailCipher) -> int:
    """Re-seal staff's notes under ``new``, inside ``rotate``'s transaction; how many there were."""
    count = 0
    for column in _NOTES:
        rows = db.execute(f"SELECT id, {column} FROM requests WHERE {column} IS NOT NULL").fetchall()
        for row in rows:
            try:
                note = old.decrypt(bytes(row[column]))
            except ValueError as error:
                raise ConfigError(
                    (
                        f"request {row['id']}'s stored note does not open with ENCRYPTION_KEY (the row is damaged); "
                        "nothing was rotated",
                        "restore the database from a backup made before the damage, then run rotate-key again",
                    )
                ) from error
            db.execute(f"UPDATE requests SET {column} = ? WHERE id = ?", (new.encrypt(note), row["id"]))
        count += len(rows)
    return count


# ----------------------------------------------------------------- the key check


def key_file_for(database: Path) -> Path:
    """The key file that belongs to ``database`` (used when ENCRYPTION_KEY is unset)."""
    return database.with_name(database.name + ".key")


def pending_key_file_for(database: Path) -> Path:
    """Where ``rotate-key`` keeps the new key, durably, before it commits the data under it."""
    key_file = key_file_for(database)
    return key_file.with_name(key_file.name + ".new")


def stored_key_state(database: Path) -> KeyState:
    """What ``database`` says about its key, read-only (nothing when there is no file); sqlite3.Error if unreadable."""
    if not database.exists():
        return KeyState()
    with closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as db:
        return read_key_state(db)


def key_problem(
    state: KeyState,
    *,
    configured: bytes | None,
    file_key: bytes | None,
    key_file: Path,
    database: Path,
    pending_key: bytes | None = None,
) -> tuple[str, str] | None:
    """What is wrong with the key for ``state`` (one problem: what, fix), or None when the key opens the data.

    ``pending_key`` is what ``pending_key_file_for(database)`` holds: named as the fix when it alone opens the data.
    """
    problem = _key_problem(state, configured=configured, file_key=file_key, key_file=key_file, database=database)
    if problem is None or pending_key is None or not state.has_data or not state.opens(EmailCipher(pending_key)):
        return problem
    pending = pending_key_file_for(database)
    if configured is not None:
        return (
            f"ENCRYPTION_KEY does not open the data in {database}: rotate-key moved it to the key in {pending}",
            f"set ENCRYPTION_KEY to the contents of {pending}",
        )
    return (
        f"the key file {key_file} does not open the data in {database}: "
        f"rotate-key moved it to the key in {pending} and stopped before putting that file in place",
        f"run rotate-key again with the same NEW_ENCRYPTION_KEY, or move {pending} to {key_file}",
    )


def _key_problem(
    state: KeyState, *, configured: bytes | None, file_key: bytes | None, key_file: Path, database: Path
) -> tuple[str, str] | None:
    held = f" (key {state.fingerprint})" if state.fingerprint else ""
    if configured is None and file_key is None:
        if not state.has_data:
            return None
        return (
            f"ENCRYPTION_KEY is not set and there is no key file at {key_file}, "
            f"but {database} holds data sealed under a key{held}",
            "set ENCRYPTION_KEY to that key, or restore the key file from backup (a new key cannot open the data)",
        )
    if configured is not None:
        if state.opens(EmailCipher(configured)):
            return None
        if file_key is not None and state.opens(EmailCipher(file_key)):
            return (
                f"ENCRYPTION_KEY does not open the data in {database}",
                f"copy the contents of {key_file} into ENCRYPTION_KEY: that file holds the database's key",
            )
        return (
            f"ENCRYPTION_KEY (key {EmailCipher(configured).fingerprint}) does not open the data in {database}{held}",
            "set ENCRYPTION_KEY to the key this database was created with "
            "(or point DATABASE_PATH at the database this key belongs to)",
        )
    assert file_key is not None
    if state.opens(EmailCipher(file_key)):
        return None
    return (
        f"ENCRYPTION_KEY is unset and the key file {key_file} does not open the data in {database}{held}",
        "set ENCRYPTION_KEY to the key this database was created with, or restore the key file from backup",
    )


def inspect_key(database: Path, *, configured: bytes | None) -> tuple[str, str] | None:
    """What is wrong with the key for ``database``, read-only (``check`` changes nothing), or None."""
    key_file = key_file_for(database)
    try:
        file_key = read_key_file(key_file)
    except ConfigError as error:
        if configured is None:
            return error.problems[0]
        file_key = None
    state = stored_key_state(database)
    return key_problem(
        state,
        configured=configured,
        file_key=file_key,
        key_file=key_file,
        database=database,
        pending_key=key_file_or_none(pending_key_file_for(database)),
    )


def key_file_or_none(key_file: Path) -> bytes | None:
    """A key file's key for a better message; a damaged or unreadable one does not matter here."""
    try:
        return read_key_file(key_file)
    except (ConfigError, OSError):
        return None
