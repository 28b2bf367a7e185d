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

from bot.errors import ConfigError

__all__ = ["EmailCipher", "load_or_create_key", "normalise_email"]

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


def load_or_create_key(configured: bytes | None, key_path: Path) -> bytes:
    """The configured key, else the key file beside the database, created (mode 0600) on first start."""
    if configured is not None:
        return configured
    try:
        encoded = key_path.read_bytes().strip()
    except FileNotFoundError:
        key = os.urandom(32)
        key_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it between our read and our write
            return load_or_create_key(None, key_path)
        with os.fdopen(fd, "wb") as file:
            file.write(base64.urlsafe_b64encode(key) + b"\n")
        logger.warning(
            "ENCRYPTION_KEY is not set: created a key file at %s (mode 0600). Back it up: "
            "without it the stored shopper emails cannot be read. Set ENCRYPTION_KEY to silence this.",
            key_path,
        )
        return key
    try:
        key = base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"the key file {key_path} is damaged: restore it from backup, or set ENCRYPTION_KEY")
    return key
