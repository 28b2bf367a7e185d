"""A consistent, verified, owner-only copy of the live database (``data-request-bot backup``).

Copying the file is not a backup: in WAL mode the newest changes live in the
``-wal`` file until a checkpoint, and a copy taken mid-write may be torn.
SQLite's online backup API copies the pages one read transaction sees, while
the bot keeps writing (WAL readers never block the writer). The copy is made
beside its destination under a temporary name, switched to a rollback journal
so it is one self-contained file, checked with ``PRAGMA integrity_check``, and
only then renamed into place: a failed backup never replaces a good one.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from prime import BackupFailed, ConfigError
from store._rows import NEVER_STARTED, marks

__all__ = ["BackupReport", "backup_database"]


@dataclass(frozen=True, slots=True)
class BackupReport:
    """What was written, and what it holds."""

    path: Path
    size: int
    cases: int
    open_cases: int
    audit_entries: int
    schema_version: int


def backup_database(source: Path, target: Path) -> BackupReport:
    """Copy the database at ``source`` to ``target`` (a file, or a folder for a time-stamped name) and verify it.

    Raises ConfigError for what the operator must fix (no database, no such folder, the target is the
    database itself) and BackupFailed when the copy does not verify; nothing is left at ``target`` then.
    """
    if not source.is_file():
        raise ConfigError(f"there is no database at {source}: set DATABASE_PATH to the bot's database")
    if target.is_dir():
        target = target / f"{source.stem}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}{source.suffix or '.db'}"
    if not target.parent.is_dir():
        raise ConfigError(f"backup: {target.parent} is not a folder: create it, or give another PATH")
    live = source.resolve()
    if target.resolve() in (live, live.with_name(live.name + "-wal"), live.with_name(live.name + "-shm")):
        raise ConfigError(f"backup: {target} is the live database; give a PATH outside it")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # owner-only before any byte
    try:
        report = _copy_and_verify(source, partial)
        _fsync(partial)
        os.replace(partial, target)
        _fsync(target.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupReport(path=target, size=target.stat().st_size, **report)


def _copy_and_verify(source: Path, copy: Path) -> dict[str, int]:
    try:
        with closing(sqlite3.connect(source)) as live, closing(sqlite3.connect(copy)) as out:
            live.execute("PRAGMA busy_timeout = 5000")
            live.backup(out)  # one step: one read transaction, so one consistent moment
            out.execute("PRAGMA journal_mode = DELETE")  # a single file, whatever the original's mode
            checked = [str(row[0]) for row in out.execute("PRAGMA integrity_check")]
            if checked != ["ok"]:
                raise BackupFailed(f"the copy failed SQLite's integrity check: {'; '.join(checked[:3])}")
            version = int(out.execute("PRAGMA user_version").fetchone()[0])
            if version == 0:
                raise ConfigError(f"{source} is not the bot's database (it has no schema): check DATABASE_PATH")
            cases, open_cases = out.execute(
                f"SELECT COUNT(*), COALESCE(SUM(closed_at IS NULL AND status NOT IN ({marks(NEVER_STARTED)})), 0)"
                " FROM requests",
                NEVER_STARTED,
            ).fetchone()
            audit = int(out.execute("SELECT COUNT(*) FROM audit").fetchone()[0])
    except sqlite3.DatabaseError as error:
        if "not a database" in str(error):
            raise ConfigError(f"{source} is not a SQLite database: check DATABASE_PATH") from error
        raise BackupFailed(
            f"the database or its copy is damaged ({error}); the last backup is what to restore"
        ) from error
    return {"cases": int(cases), "open_cases": int(open_cases), "audit_entries": audit, "schema_version": version}


def _fsync(path: Path) -> None:
    """Make the copy (or its folder entry) durable before saying it is done."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
