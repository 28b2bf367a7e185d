"""``data-request-bot audit``, ``purge`` and ``backup``: the audit trail out or checked, expired data gone, a copy.

All of them work on the database alone (no Slack, no Amazon), after checking that
the key opens it, so a compliance officer or an operator can run them from a
shell or a cron job, beside the running bot.
"""

from __future__ import annotations

import csv
import getpass
import json
import sqlite3
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.settings import StorageSettings, load_storage_settings
from core import ConfigError
from handlers.kinds.registry import KINDS, free_text
from store import (
    AuditRow,
    ChainBreak,
    EmailCipher,
    Store,
    Tamper,
    backup_database,
    inspect_key,
    key_file_for,
    open_verified,
    read_key_file,
)

__all__ = [
    "describe_break",
    "iso_utc",
    "open_store",
    "parse_noted",
    "parse_since",
    "run_audit",
    "run_backup",
    "run_purge",
    "run_verify",
]

COLUMNS = ("time", "request", "task", "actor", "actor_name", "action", "detail", "shopper", "kind")


def parse_since(text: str) -> float:
    """``2026-11-01`` or an ISO date-time (UTC unless it says otherwise) → epoch seconds."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise ConfigError(f"--since takes a date like 2026-11-01 or 2026-11-01T09:00 (not {text!r})") from error
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


async def open_store(settings: StorageSettings, *, need_key: bool, keyless: bool = False) -> Store:
    """Open an existing database with its verified key; ``need_key`` when emails will be decrypted.

    ``keyless``: the command reads no email and writes nothing (the record, its figures), so the key is
    neither needed nor checked: a compliance officer runs it without holding the shoppers' key.
    """
    where = settings.database
    if isinstance(where, Path) and not where.exists():
        raise ConfigError(
            (f"DATABASE_PATH {where} does not exist", "point DATABASE_PATH at the bot's database (serve creates it)")
        )
    if keyless:
        return await Store.open(where, cipher=EmailCipher(bytes(32)))  # never used: nothing is sealed or opened
    store = await open_verified(where, configured=settings.encryption_key, create_key=False)
    path = settings.database_path
    if need_key and settings.encryption_key is None and (isinstance(where, str) or not key_file_for(path).exists()):
        await store.close()
        raise ConfigError(
            (
                f"--reveal needs the key, and ENCRYPTION_KEY is unset with no key file at {key_file_for(path)}",
                "set ENCRYPTION_KEY to the bot's key",
            )
        )
    return store


def _shopper(row: AuditRow, *, reveal: bool) -> str:
    """The shopper column: the email (revealed or masked), or why there is none."""
    if row.unreadable:
        return f"(cannot be decrypted; masked {row.email_masked})"
    return (row.email if reveal else row.email_masked) or ("(erased)" if row.request_id else "")


async def run_audit(env: Mapping[str, str], *, since: float, fmt: str, reveal: bool, out: TextIO) -> int:
    """Write the audit log from ``since`` on as CSV or JSON lines; emails masked unless ``reveal``."""
    store = await open_store(load_storage_settings(env), need_key=reveal)
    try:
        rows = await store.audit.export(since=since, reveal=reveal)
        if reveal:  # seeing shoppers' emails is itself an access to their data
            await store.audit.append(
                request_id=None,
                actor=f"cli:{getpass.getuser()}",
                action="audit exported",
                detail=f"emails revealed, {len(rows)} entries since {iso_utc(since)}",
            )
    finally:
        await store.close()
    records = [
        dict(
            zip(
                COLUMNS,
                (
                    iso_utc(r.at),
                    r.request_id or "",
                    r.task_id or "",
                    r.actor,
                    r.actor_name,
                    r.action,
                    r.detail,
                    _shopper(r, reveal=reveal),
                    r.kind,
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


def parse_noted(text: str) -> tuple[int, str]:
    """``ENTRY:HASH`` (the newest entry and its hash, as an earlier ``audit --verify`` printed them)."""
    entry, _, digest = text.partition(":")
    if not entry.strip().isdigit() or len(digest.strip()) != 64:
        raise ConfigError(
            f"--expect takes the entry and hash an earlier audit --verify printed, like 1284:4ce21def… (not {text!r})"
        )
    return int(entry), digest.strip().lower()


async def run_verify(env: Mapping[str, str], *, out: TextIO, noted: tuple[int, str] | None = None) -> int:
    """Check the audit log's hash chain: 0 when every entry fits, 1 naming the first that does not.

    ``noted``: an entry and the hash it had when someone wrote them down; it must still be there with it.
    """
    store = await open_store(load_storage_settings(env), need_key=False, keyless=True)  # hashes, no email
    try:
        report = await store.audit.verify(noted=noted[0] if noted else None)
    finally:
        await store.close()
    if report.broken is not None:
        print(describe_break(report.broken), file=out)
        print(f"{report.entries} entries before it are intact", file=out)
        return 1
    if noted is not None and report.noted_hash != noted[1]:
        entry = noted[0]
        if report.noted_hash is None:
            print(
                f"chain broken after entry {report.last_id or 0}: entry {entry}, noted earlier, is no longer in the "
                "log (entries were removed from its end)",
                file=out,
            )
        else:
            print(
                f"chain broken at entry {entry}: it no longer has the hash noted for it (the log was rewritten "
                "from there or before)",
                file=out,
            )
        print(f"{report.entries} entries fit together, but not with what was noted", file=out)
        return 1
    print(f"{report.entries} entries, chain intact", file=out)
    if report.last_id is not None and report.last_at is not None:
        print(f"newest: entry {report.last_id} at {iso_utc(report.last_at)}, hash {report.last_hash}", file=out)
    return 0


def describe_break(found: ChainBreak) -> str:
    """The first break in the chain, in words: which entry, and what was done to it."""
    if found.tamper is Tamper.CHANGED:
        how = (
            f"its hash was recomputed, but entry {found.names} still names the old one"
            if found.names is not None
            else "its content no longer matches its hash"
        )
        return f"chain broken at entry {found.entry}: it was changed after it was written ({how})"
    if found.tamper is Tamper.REMOVED:
        if found.removed_before:
            return (
                f"chain broken before entry {found.entry}: the entries before it were removed "
                "(it names an entry that is no longer in the log)"
            )
        return (
            f"chain broken at entry {found.entry}: it was removed "
            f"(entry {found.names} names an entry that is no longer in the log)"
        )
    if found.names is None:
        why = "it carries no hash: it was written past the bot"
    else:
        before = f"entry {found.after}" if found.after is not None else "no entry"
        why = f"entry {found.names} names {before} as the one before it"
    return f"chain broken at entry {found.entry}: it was inserted afterwards ({why})"


async def run_purge(env: Mapping[str, str], *, out: TextIO) -> int:
    """Erase the emails of requests closed or finished more than RETENTION_DAYS ago, now."""
    settings = load_storage_settings(env)
    store = await open_store(settings, need_key=False)
    try:
        purged = await store.cases.purge_expired(
            older_than=time.time() - settings.retention_days * 86_400, free_text=free_text(KINDS)
        )
    finally:
        await store.close()
    print(
        f"erased the shopper email of {len(purged)} request(s) older than {settings.retention_days} days"
        + (f": {', '.join(map(str, purged))}" if purged else ""),
        file=out,
    )
    return 0


def run_backup(env: Mapping[str, str], *, target: Path, folder: bool = False, out: TextIO) -> int:
    """Copy the database to ``target`` while the bot runs, verify the copy, say what it holds and which key opens it.

    ``folder``: ``target`` names a folder even if it does not exist yet (the PATH ended in a slash).
    """
    settings = load_storage_settings(env)
    if settings.database_url is not None:
        raise ConfigError(
            (
                "backup copies the SQLite file DATABASE_PATH names, and DATABASE_URL keeps the state in PostgreSQL",
                "back up with PostgreSQL's own pg_dump --format=custom, and keep ENCRYPTION_KEY apart from the dump "
                "(docs/operating.md, Several copies on PostgreSQL)",
            )
        )
    _verify_key(settings)
    report = backup_database(settings.database_path, target, folder=folder)
    key_file = key_file_for(settings.database_path)
    key_source = "ENCRYPTION_KEY" if settings.encryption_key is not None else f"the key file {key_file}"
    fingerprint = report.key_fingerprint or _fingerprint(settings.encryption_key or read_key_file(key_file))
    print(
        f"backup written to {report.path} (owner-only): {_size(report.size)}, {report.cases} cases "
        f"({report.open_cases} open), {report.audit_entries} audit entries, schema version "
        f"{report.schema_version}, integrity ok",
        file=out,
    )
    if fingerprint is None:
        print("no shopper email is sealed in it yet: it opens with any key", file=out)
    else:
        print(
            f"the key is not in the backup: keep {key_source} (key {fingerprint}) as safely; "
            "the backup opens with that key only",
            file=out,
        )
    return 0


def _fingerprint(key: bytes | None) -> str | None:
    return None if key is None else EmailCipher(key).fingerprint


def _verify_key(settings: StorageSettings) -> None:
    """The key must open the data before a copy is made: a backup whose key is unknown restores nothing."""
    try:
        problem = inspect_key(settings.database_path, configured=settings.encryption_key)
    except sqlite3.DatabaseError:
        return  # not a database at all: backup_database says so in its own words
    if problem is not None:
        raise ConfigError(problem)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def iso_utc(epoch: float) -> str:
    """Epoch seconds as the CLI writes times: ISO 8601, UTC, to the second."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
