"""A consistent, verified, owner-only copy of the live database (``data-request-bot backup``).

Copying the file is not a backup: in WAL mode the newest changes live in the
``-wal`` file until a checkpoint, and a copy taken mid-write may be torn.
SQLite's online backup API copies the pages one read transaction sees, while
the bot keeps writing (WAL readers never block the writer). The copy is made
beside its destination under a temporary name, switched to a rollback journal
so it is one self-contained file, checked with ``PRAGMA integrity_check``, and
only then given its name. A backup never replaces a file: not an earlier backup
(a second backup in the same second gets a suffix), and never the bot's own
files (the database, its WAL and SHM, its lock, its key), whose loss would let
a second bot start or lose the key.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

from core import BackupFailed, ConfigError
from store._files import PRIVATE_FILE, fsync_path, lock_path_for, private_folder
from store._key import key_file_for, pending_key_file_for, read_key_state
from store._rows import NEVER_STARTED, marks

__all__ = ["BackupReport", "backup_database"]

_NAMES_PER_SECOND = 1000  # backups that may share one time stamp: -2, -3, … before giving up
_ANOTHER_NAME = "give a file name that does not exist yet, or a folder for a time-stamped one"


@dataclass(frozen=True, slots=True)
class BackupReport:
    """What was written, and what it holds (``key_fingerprint``: the key it opens with, when it says)."""

    path: Path
    size: int
    cases: int
    open_cases: int
    audit_entries: int
    schema_version: int
    key_fingerprint: str | None = None


def backup_database(source: Path, target: Path, *, folder: bool = False) -> BackupReport:
    """Copy the database at ``source`` to ``target`` and verify it; never over an existing file.

    ``target`` is a new file, or a folder (one that exists, or any with ``folder``, which is then
    created owner-only) for a time-stamped name in it. Raises ConfigError for what the operator must
    fix (no database, a target that exists or is one of the bot's files, a folder it cannot write) and
    BackupFailed when the copy does not verify; nothing is left behind then.
    """
    if not source.is_file():
        raise ConfigError(f"there is no database at {source}: set DATABASE_PATH to the bot's database")
    if folder or target.is_dir():
        into, name = target, None
        if not target.is_dir():
            _create_folder(target)
    else:
        into, name = target.parent, target.name
        if not into.is_dir():
            raise ConfigError(f"backup: {into} is not a folder: create it, or give another PATH")
        _refuse_to_overwrite(source, target)
    partial = _reserve(into / f".{source.stem}-backup.partial-{os.getpid()}")
    try:
        copied = _copy_and_verify(source, partial)
        try:
            fsync_path(partial)
            placed = _place(partial, into / name) if name else _place_stamped(partial, into, source)
            fsync_path(into)
        except OSError as error:
            raise BackupFailed(f"the copy could not be saved in {into} ({error.strerror or error})") from error
    finally:
        partial.unlink(missing_ok=True)
    return replace(copied, path=placed, size=placed.stat().st_size)


def _create_folder(folder: Path) -> None:
    """A PATH ending in a slash names a folder: make it (owner-only), or say why not."""
    if folder.exists():
        raise ConfigError(f"backup: {folder} is a file, not a folder: {_ANOTHER_NAME}")
    try:
        private_folder(folder)
    except OSError as error:
        raise ConfigError(
            f"backup: cannot create the folder {folder} ({error.strerror or error}): create it, or give another PATH"
        ) from error


def _refuse_to_overwrite(source: Path, target: Path) -> None:
    """Refuse the bot's own files by name (some may not exist right now), then anything that exists."""
    live = source.resolve()
    own = {live: "is the live database"}
    for suffix, what in (("-wal", "write-ahead log"), ("-shm", "shared memory file"), ("-journal", "journal")):
        own[live.with_name(live.name + suffix)] = f"is the live database's {what}"
    own[lock_path_for(source)] = "is the bot's lock file (without it a second bot could start beside the first)"
    for key_file in (where(name) for name in (source, live) for where in (key_file_for, pending_key_file_for)):
        own[key_file.resolve()] = "is the database's key file (overwriting it would lose the key)"
    why = own.get(target.resolve())
    if why is not None:
        raise ConfigError(f"backup: {target} {why}: {_ANOTHER_NAME} outside the bot's own files")
    if target.exists() or target.is_symlink():
        raise ConfigError(f"backup: {target} exists, and a backup never replaces a file: {_ANOTHER_NAME}")


def _reserve(partial: Path) -> Path:
    """Create the copy's temporary file owner-only before any byte is in it; exit 2 when the folder is unwritable."""
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except OSError as error:
        raise ConfigError(
            f"backup: cannot write in {partial.parent} ({error.strerror or error}): "
            "give a PATH in a folder this user can write to"
        ) from error
    return partial


def _place(partial: Path, target: Path) -> Path:
    """Give the verified copy its name only if nothing has it: a file that appeared meanwhile stays as it is."""
    if not _link(partial, target):
        raise ConfigError(f"backup: {target} exists, and a backup never replaces a file: {_ANOTHER_NAME}")
    return target


def _place_stamped(partial: Path, folder: Path, source: Path) -> Path:
    """``<name>-<UTC time>.db`` in ``folder``; ``-2``, ``-3``, … when a backup in the same second has that name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    suffix = source.suffix or ".db"
    for n in range(1, _NAMES_PER_SECOND + 1):
        target = folder / f"{source.stem}-{stamp}{'' if n == 1 else f'-{n}'}{suffix}"
        if _link(partial, target):
            return target
    raise BackupFailed(f"{_NAMES_PER_SECOND} backups in {folder} already carry the time stamp {stamp}")


def _link(partial: Path, target: Path) -> bool:
    """Name ``partial`` ``target`` too, unless that name is taken (False): unlike a rename, never replacing."""
    try:
        os.link(partial, target)
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        # A file system without hard links (some network shares): look, then rename.
        if target.exists() or target.is_symlink():
            return False
        os.rename(partial, target)
    return True


def _copy_and_verify(source: Path, copy: Path) -> BackupReport:
    """Copy ``source`` into ``copy`` in one read transaction, check it, and say what it holds (path: the copy)."""
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
            fingerprint = read_key_state(out).fingerprint
    except sqlite3.DatabaseError as error:
        if "not a database" in str(error):
            raise ConfigError(f"{source} is not a SQLite database: check DATABASE_PATH") from error
        raise BackupFailed(
            f"the database or its copy is damaged ({error}); the last backup is what to restore"
        ) from error
    return BackupReport(
        path=copy,
        size=0,
        cases=int(cases),
        open_cases=int(open_cases),
        audit_entries=audit,
        schema_version=version,
        key_fingerprint=fingerprint,
    )
