"""Files the bot creates are its owner's alone (the database, its WAL and SHM, the key, the lock), and durable.

SQLite gives the WAL and SHM files the permissions of the database file, so
creating the database file 0600 before SQLite opens it makes all three
private, whatever the umask.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["PRIVATE_FILE", "PRIVATE_FOLDER", "create_private", "fsync_path", "others_can_read", "private_folder"]

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
