"""Files the bot creates are its owner's alone (the database, its WAL and SHM, the key, the lock), and durable.

SQLite gives the WAL and SHM files the permissions of the database file, so
creating the database file 0600 before SQLite opens it makes all three
private, whatever the umask.

One ``serve`` per database: an OS lock on a file beside it, held for the process's life
(``InstanceLock``). Two bots on one database each poll and each post, so every reply would appear
twice. ``fcntl.flock`` is released by the kernel when the holder dies, even by kill -9, so there is
no stale PID to guess about; the PID written in the file only tells the operator whom to stop. The
lock lives beside the database's real file, so every name that leads to it through symbolic links
shares it. A second hard link is refused outright: under another name SQLite keeps another
write-ahead log beside it, so two names are two databases' worth of recovery in one file, and each
name would get its own lock.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from core import ConfigError

__all__ = [
    "PRIVATE_FILE",
    "PRIVATE_FOLDER",
    "InstanceLock",
    "create_private",
    "fsync_path",
    "lock_path_for",
    "others_can_read",
    "private_folder",
]

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700


def private_folder(folder: Path) -> None:
    """Create ``folder`` (and missing parents) as 0700; an existing folder is left as the operator made it."""
    missing = [folder, *folder.parents]
    missing = [p for p in missing if not p.exists()]
    for created in reversed(missing):
        try:
            created.mkdir(mode=PRIVATE_FOLDER)
        except FileExistsError:  # made meanwhile by someone else: theirs to keep as it is
            continue
        os.chmod(created, PRIVATE_FOLDER)  # mkdir's mode passes through the umask; this one should not


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (an existing file keeps its mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def others_can_read(path: Path) -> bool:
    """Someone other than the owner may read ``path`` (group or world read bit set)."""
    return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))


def fsync_path(path: Path) -> None:
    """Flush ``path`` (a file, or a folder's entries after a create or rename) to disk before relying on it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lock_path_for(database: Path) -> Path:
    """The lock file that belongs to ``database``: beside its real file, whichever symbolic link leads there."""
    real = database.resolve()
    return real.with_name(real.name + ".lock")


class InstanceLock:
    """An exclusive lock on a database; ``release`` (or the process ending) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, database: Path, *, command: str = "serve") -> InstanceLock:
        """Take the lock at once or raise ConfigError naming the database and the holder's PID."""
        path = lock_path_for(database)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, _, holder = os.pread(fd, 64, 0).decode(errors="replace").strip().partition(" ")
            os.close(fd)
            raise ConfigError(
                (
                    f"DATABASE_PATH {database} is in use by data-request-bot {holder or 'serve'} (PID {pid or '?'})",
                    f"stop that one before {command}: one instance per database, "
                    "since two would each poll Amazon and post every reply twice",
                )
            ) from None
        except BaseException:
            os.close(fd)
            raise
        lock = cls(path, fd)
        links = _hard_links(database)
        if links > 1:
            lock.release()
            raise ConfigError(
                (
                    f"DATABASE_PATH {database} is one of {links} names (hard links) for the same file",
                    f"keep one and remove the others (find them with: find / -xdev -samefile {database}); "
                    "a symbolic link is fine: under two names SQLite keeps two write-ahead logs, "
                    "and two bots would take two locks",
                )
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
        return lock

    def release(self) -> None:
        """Let the next process have the database (the file stays: deleting it would race a new holder)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _hard_links(database: Path) -> int:
    """How many names the database file has (0 before its first start)."""
    try:
        return database.stat().st_nlink
    except FileNotFoundError:
        return 0
