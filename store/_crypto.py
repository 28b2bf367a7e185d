"""Field encryption for shopper emails: AES-GCM to read them back, HMAC-SHA256 to find them.

One 32-byte master key (``ENCRYPTION_KEY`` or a generated key file) is split by
HKDF into an encryption key and a lookup key, so that the lookup hash, which
must be deterministic, never shares a key with the cipher.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core import ConfigError
from store._files import PRIVATE_FILE, fsync_path

__all__ = ["EmailCipher", "create_key_file", "normalise_email", "read_key_file", "write_key_file"]

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
