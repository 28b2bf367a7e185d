"""The audit log's hash chain: each entry's hash covers its content and the hash of the entry before it.

An entry changed, removed or inserted after it was written no longer fits between its neighbours, so
``walk`` finds it by reading the log once, oldest first, holding a few recent hashes and never the log.
Ids are handed out one after the other (``next_link``), so a gap in them, where the chain breaks,
says an entry was removed rather than changed.

The encoding is part of the log's format: every entry ever written was hashed with it, so it never
changes. An auditor can recompute a hash without the bot: SHA-256, in hex, of the UTF-8 bytes of the
JSON array ``[id, at, request_id, actor, actor_name, action, detail, prev_hash]`` written compactly
(no spaces) with non-ASCII characters escaped, as Python's ``json.dumps`` does.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CHAIN_COLUMNS",
    "GENESIS",
    "ChainBreak",
    "ChainReport",
    "Tamper",
    "entry_hash",
    "next_link",
    "walk",
]

GENESIS = ""  # what the first entry names as the hash before it
CHAIN_COLUMNS = "id, at, request_id, actor, actor_name, action, detail, prev_hash, hash"
_RECENT = 1_000  # hashes kept while walking: an insertion of up to this many entries in a row is named as such


def entry_hash(
    id: int,  # the columns in the order SQLite passes them (store/_schema.py)
    at: float,
    request_id: int | None,
    actor: str,
    actor_name: str,
    action: str,
    detail: str,
    prev_hash: str,
) -> str:
    """The hash of one entry: its content and the hash of the entry before it (the module says how)."""
    encoded = json.dumps(
        [int(id), float(at), request_id, actor, actor_name, action, detail, prev_hash],
        ensure_ascii=True,
        separators=(",", ":"),
        allow_nan=False,
    )
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def next_link(db: sqlite3.Connection) -> tuple[int, str]:
    """The id the next entry takes and the hash it names, read inside the appending transaction."""
    last = db.execute("SELECT id, hash FROM audit WHERE id = (SELECT MAX(id) FROM audit)").fetchone()
    return (1, GENESIS) if last is None else (int(last[0]) + 1, str(last[1]))


class Tamper(StrEnum):
    """What happened to the first entry that does not fit."""

    CHANGED = "changed"
    REMOVED = "removed"
    INSERTED = "inserted"


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place the chain does not hold.

    ``entry``: the entry changed or inserted, or the first one removed (for a removal whose id is
    unknown, the entry it was removed before). ``after``: the last entry that still fits (None: none);
    ``names``: for a removal or an insertion, the entry the chain goes on from.
    """

    tamper: Tamper
    entry: int
    after: int | None
    names: int | None = None
    removed_before: bool = False  # a removal whose id is unknown: ``entry`` is the one it was removed before


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What a walk of the log found: how many entries fit, the newest of them, and the first break."""

    entries: int
    last_id: int | None
    last_at: float | None
    last_hash: str
    broken: ChainBreak | None
    noted_hash: str | None = None  # the hash the ``noted`` entry has now; None: not in the log (or past a break)


@dataclass(frozen=True, slots=True)
class _Entry:
    id: int
    at: float
    prev_hash: str
    hash: str
    computed: str  # the hash its content gives now


def _entries(rows: Iterable[sqlite3.Row]) -> Iterator[_Entry]:
    for row in rows:
        prev_hash, stored = row["prev_hash"] or "", row["hash"] or ""
        computed = entry_hash(
            row["id"],
            row["at"],
            row["request_id"],
            row["actor"],
            row["actor_name"],
            row["action"],
            row["detail"],
            prev_hash,
        )
        yield _Entry(int(row["id"]), float(row["at"]), prev_hash, stored, computed)


def walk(rows: Iterable[sqlite3.Row], *, noted: int | None = None) -> ChainReport:
    """Check the log, read oldest first (``rows`` selected with ``CHAIN_COLUMNS``), up to its first break.

    ``noted``: an entry whose hash someone wrote down earlier (the newest then), to be compared: the chain
    alone cannot show entries removed from its end, nor one rewritten from some entry on.
    """
    entries = _entries(rows)
    recent: deque[_Entry] = deque(maxlen=_RECENT)  # the entries that fit, newest last
    count, noted_hash = 0, None
    entry = next(entries, None)
    while entry is not None:
        following = next(entries, None)
        broken = _check(entry, following, recent)
        if broken is not None:  # the entries found to be inserted, or changed, were counted as fitting
            return _report(count - sum(1 for e in recent if e.id >= broken.entry), recent, broken, noted_hash)
        recent.append(entry)
        count += 1
        if entry.id == noted:
            noted_hash = entry.hash
        entry = following
    return _report(count, recent, None, noted_hash)


def _report(count: int, recent: deque[_Entry], broken: ChainBreak | None, noted_hash: str | None) -> ChainReport:
    last = recent[-1] if recent else None
    return ChainReport(
        entries=count,
        last_id=last.id if last else None,
        last_at=last.at if last else None,
        last_hash=last.hash if last else GENESIS,
        broken=broken,
        noted_hash=noted_hash,
    )


def _check(entry: _Entry, following: _Entry | None, recent: deque[_Entry]) -> ChainBreak | None:
    """Whether ``entry`` fits after ``recent``, and if not, what was done: the first explanation that holds."""
    before = recent[-1] if recent else None
    after = before.id if before else None
    expected = before.hash if before else GENESIS
    if entry.prev_hash == expected:
        if entry.computed == entry.hash:
            return None
        tamper = Tamper.INSERTED if not entry.hash else Tamper.CHANGED  # no hash: written past the bot
        return ChainBreak(tamper, entry.id, after)
    older = next((i for i, e in enumerate(recent) if e.hash == entry.prev_hash), None)
    if older is not None:  # it names an older entry: the ones after that came in afterwards
        first = recent[older + 1]
        return ChainBreak(Tamper.INSERTED, first.id, recent[older].id, names=entry.id)
    if not entry.hash or (following is not None and following.prev_hash == expected):
        return ChainBreak(Tamper.INSERTED, entry.id, after, names=following.id if following else None)
    if before is not None and entry.id > before.id + 1:
        return ChainBreak(Tamper.REMOVED, before.id + 1, after, names=entry.id)
    if before is None and entry.computed == entry.hash:  # an intact first entry that names one before it
        return ChainBreak(Tamper.REMOVED, entry.id, None, names=entry.id, removed_before=True)
    if before is None or entry.computed != entry.hash:  # its own link was rewritten
        return ChainBreak(Tamper.CHANGED, entry.id, after)
    # This entry is intact and names a hash its predecessor no longer has: the predecessor was changed
    # and its hash recomputed to hide it.
    return ChainBreak(Tamper.CHANGED, before.id, recent[-2].id if len(recent) > 1 else None, names=entry.id)
