"""Keeping: the database (a SQLite file, or PostgreSQL for several copies of the bot), its schema, field
encryption and the append-only audit log.

Every module here is private (``store/_x.py``); this is the only way in from outside, as httpx keeps
its own. The import-linter contract in ``pyproject.toml`` fails CI when another package imports a
private module. Tests that check the internals (the foreground lane, migrations) import them by name.
"""

from __future__ import annotations

from store._audit import AuditRow
from store._backup import BackupReport, backup_database
from store._cases import CaseCounts, Extension
from store._chain import ChainBreak, ChainReport, Tamper
from store._database import CLAIM_LEASE, WriteHealth, behind, cannot_open, cannot_reach
from store._evidence import CaseFile, PostRow, ReceivedEvent, started_task
from store._files import PRIVATE_FILE, InstanceLock, lock_path_for, others_can_read, private_folder
from store._key import (
    EmailCipher,
    KeyState,
    create_key_file,
    inspect_key,
    key_file_for,
    key_problem,
    normalise_email,
    pending_key_file_for,
    read_key_file,
    read_key_state,
    stored_key_state,
    write_key_file,
)
from store._leader import Leadership, no_copy_serving
from store._postgres_url import is_postgres_url, where_shown
from store._records import (
    NOTICE,
    OPENS_THREAD,
    AuditEntry,
    InboxEvent,
    Moved,
    Notice,
    OutboxEntry,
    Request,
    RequestStatus,
    TaskError,
)
from store._reports import CaseRecord, Tally
from store._signal import Commit
from store._store import Store, open_verified
from store._verdicts import IDENTITY_VERIFIED, Notes

__all__ = [
    "CLAIM_LEASE",
    "IDENTITY_VERIFIED",
    "NOTICE",
    "OPENS_THREAD",
    "PRIVATE_FILE",
    "AuditEntry",
    "AuditRow",
    "BackupReport",
    "CaseCounts",
    "CaseFile",
    "CaseRecord",
    "ChainBreak",
    "ChainReport",
    "Commit",
    "EmailCipher",
    "Extension",
    "InboxEvent",
    "InstanceLock",
    "KeyState",
    "Leadership",
    "Moved",
    "Notes",
    "Notice",
    "OutboxEntry",
    "PostRow",
    "ReceivedEvent",
    "Request",
    "RequestStatus",
    "Store",
    "Tally",
    "Tamper",
    "TaskError",
    "WriteHealth",
    "backup_database",
    "behind",
    "cannot_open",
    "cannot_reach",
    "create_key_file",
    "inspect_key",
    "is_postgres_url",
    "key_file_for",
    "key_problem",
    "lock_path_for",
    "no_copy_serving",
    "normalise_email",
    "open_verified",
    "others_can_read",
    "pending_key_file_for",
    "private_folder",
    "read_key_file",
    "read_key_state",
    "started_task",
    "stored_key_state",
    "where_shown",
    "write_key_file",
]
