"""``data-request-bot audit``, ``purge`` and ``backup``: the audit trail out, expired data gone, a safe copy.

Both work on the database alone (no Slack, no Amazon), so a compliance officer
or an operator can run them from a shell or a cron job.
"""

from __future__ import annotations

import csv
import getpass
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.errors import ConfigError
from bot.settings import StorageSettings, load_storage_settings
from store.backup import backup_database
from store.crypto import EmailCipher
from store.store import Store

__all__ = ["parse_since", "run_audit", "run_backup", "run_purge"]

COLUMNS = ("time", "request", "task", "actor", "actor_name", "action", "detail", "shopper")


def parse_since(text: str) -> float:
    """``2026-11-01`` or an ISO date-time (UTC unless it says otherwise) → epoch seconds."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise ConfigError(f"--since takes a date like 2026-11-01 or 2026-11-01T09:00 (not {text!r})") from error
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


async def _open(settings: StorageSettings, *, need_key: bool) -> Store:
    path = settings.database_path
    if not path.exists():
        raise ConfigError(f"there is no database at {path}: set DATABASE_PATH to the bot's database")
    key = settings.encryption_key
    key_file = path.with_name(path.name + ".key")
    if key is None and key_file.exists():
        from store.crypto import load_or_create_key

        key = load_or_create_key(None, key_file)
    if key is None and need_key:
        raise ConfigError(f"--reveal needs the key: set ENCRYPTION_KEY (there is no key file at {key_file})")
    # Without --reveal nothing is decrypted; a throwaway key keeps the store's shape.
    return await Store.open(path, cipher=EmailCipher(key or bytes(32)))


async def run_audit(env: Mapping[str, str], *, since: float, fmt: str, reveal: bool, out: TextIO) -> int:
    """Write the audit log from ``since`` on as CSV or JSON lines; emails masked unless ``reveal``."""
    store = await _open(load_storage_settings(env), need_key=reveal)
    try:
        rows = await store.audit_export(since=since, reveal=reveal)
        if reveal:  # seeing shoppers' emails is itself an access to their data
            await store.audit(
                request_id=None,
                actor=f"cli:{getpass.getuser()}",
                action="audit exported",
                detail=f"emails revealed, {len(rows)} entries since {_iso(since)}",
            )
    finally:
        await store.close()
    records = [
        dict(
            zip(
                COLUMNS,
                (
                    _iso(r.at),
                    r.request_id or "",
                    r.task_id or "",
                    r.actor,
                    r.actor_name,
                    r.action,
                    r.detail,
                    (r.email if reveal else r.email_masked) or ("(erased)" if r.request_id else ""),
                ),
                strict=True,
            )
        )
        for r in rows
    ]
    if fmt == "jsonl":
        for record in records:
            out.write(json.dumps(record) + "\n")
    else:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(records)
    return 0


async def run_purge(env: Mapping[str, str], *, out: TextIO) -> int:
    """Erase the emails of requests closed or finished more than RETENTION_DAYS ago, now."""
    settings = load_storage_settings(env)
    store = await _open(settings, need_key=False)
    try:
        purged = await store.purge_expired(older_than=time.time() - settings.retention_days * 86_400)
        await store.database.checkpoint()
    finally:
        await store.close()
    print(
        f"erased the shopper email of {len(purged)} request(s) older than {settings.retention_days} days"
        + (f": {', '.join(map(str, purged))}" if purged else ""),
        file=out,
    )
    return 0


def run_backup(env: Mapping[str, str], *, target: Path, out: TextIO) -> int:
    """Copy the database to ``target`` while the bot runs, verify the copy, and say what it holds."""
    settings = load_storage_settings(env)
    report = backup_database(settings.database_path, target)
    key_file = settings.database_path.with_name(settings.database_path.name + ".key")
    key_source = "ENCRYPTION_KEY" if settings.encryption_key is not None else f"the key file {key_file}"
    print(
        f"backup written to {report.path} (owner-only): {_size(report.size)}, {report.cases} cases "
        f"({report.open_cases} open), {report.audit_entries} audit entries, schema version "
        f"{report.schema_version}, integrity ok\n"
        f"the key is not in the backup: keep {key_source} as safely; a restore needs the same key",
        file=out,
    )
    return 0


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
