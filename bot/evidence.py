"""``data-request-bot evidence``: one case, everything the database knows about it, in one file.

The facts are gathered once into a document (``case_document``): JSON writes it as it is, HTML
(bot/evidence_html.py) puts the same document into a page, so the two never say different things.
Each part is in time order, and a timeline puts every part together. The case's audit entries carry
their hashes and the state of the whole log's chain, so the file can be checked against the log.
The shopper's email is in it only with ``--reveal``, which is audited (and so is in the file too).
No pre-signed link, token or payload is stored, so none can be in it.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bot.admin import describe_break, iso_utc, open_store
from bot.evidence_html import render_html
from bot.settings import load_storage_settings
from store import PRIVATE_FILE, AuditEntry, CaseFile, ChainReport, started_task

__all__ = ["FORMAT_VERSION", "case_document", "run_evidence"]

FORMAT_VERSION = 1  # the document's shape: a reader checks it before reading the rest

# The audit actions each part of the file is about (the store and the handlers write them).
DOWNLOADS = ("link shown",)
REMINDERS = ("reminder sent",)
EXTENSIONS = ("deadline extended", "shopper told of extension")
DECISIONS = ("approved", "rejected", "denied", "cancelled", "cancel too late", "retried")
REVEALED = "evidence exported"


async def run_evidence(
    env: Mapping[str, str], *, ref: str, fmt: str | None, target: Path | None, reveal: bool, out: TextIO, err: TextIO
) -> int:
    """Write the evidence file of the case ``ref`` names (request id or task id); 1 when there is none."""
    # Without --reveal nothing sealed is read and nothing written: the officer needs no key.
    store = await open_store(load_storage_settings(env), need_key=reveal, keyless=not reveal)
    by = f"cli:{getpass.getuser()}"
    try:
        request_id = await store.evidence.find(ref)
        if request_id is None:
            print(f"data-request-bot: no request has the id or task id {ref!r}", file=err)
            return 1
        if reveal:  # seeing the shopper's email is itself an access to their data: logged before it is read
            await store.audit.append(request_id=request_id, actor=by, action=REVEALED, detail="email revealed")
        case = await store.evidence.case(request_id, reveal=reveal)
        chain = await store.audit.verify()
    finally:
        await store.close()
    assert case is not None  # found a moment ago, and a case is never deleted
    document = case_document(case, chain, generated_at=time.time(), generated_by=by, reveal=reveal)
    fmt = fmt or ("html" if target is not None and target.suffix.lower() in (".html", ".htm") else "json")
    text = render_html(document) if fmt == "html" else json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if target is None:
        out.write(text)
    else:
        _write_private(target, text)
        print(
            f"evidence for request {case.request.id} written to {target} ({fmt}, readable by its owner alone)", file=out
        )
    if chain.broken is not None:
        print(f"data-request-bot: warning: the audit log's {describe_break(chain.broken)}", file=err)
    return 0


def _write_private(target: Path, text: str) -> None:
    """Write ``text`` to ``target``, readable by its owner alone (a revealed file holds the shopper's email)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), PRIVATE_FILE)  # an existing file keeps its mode otherwise
        file.write(text)


def _at(epoch: float | None) -> str | None:
    return iso_utc(epoch) if epoch is not None else None


def case_document(
    case: CaseFile, chain: ChainReport, *, generated_at: float, generated_by: str, reveal: bool
) -> dict[str, Any]:
    """The case as one JSON-ready document: each part in time order, then all of them as one timeline."""
    r = case.request
    names = {e.actor: e.actor_name for e in case.audit if e.actor_name}

    def person(actor: str | None) -> dict[str, str | None] | None:
        return None if actor is None else {"id": actor, "name": names.get(actor)}

    def acts(actions: Iterable[str]) -> list[dict[str, Any]]:
        return [
            {"at": _at(e.at), "action": e.action, "by": person(e.actor), "detail": e.detail, "audit_entry": e.id}
            for e in case.audit
            if e.action in actions
        ]

    shopper: dict[str, Any] = {"email_masked": r.email_masked, "email_erased_at": _at(r.purged_at)}
    if reveal:
        shopper["email"] = case.email
        shopper["email_unreadable"] = case.unreadable
    return {
        "evidence_format": FORMAT_VERSION,
        "generated": {"at": _at(generated_at), "by": generated_by, "email_revealed": reveal},
        "case": {
            "request": r.id,
            "kind": r.kind,
            "status": r.status.value,
            "task": r.task_id,
            "channel": r.channel,
            "thread": r.thread_ts,
            "params": dict(r.params),
        },
        "intake": {
            "received_on": r.received_on or None,
            "received_via": r.received_via,
            "outside_ref": r.outside_ref,
            "requested_at": _at(r.created_at),
            "requested_by": person(r.requester),
            "deadline": r.deadline or None,
            "due": _at(r.due_at) if r.due_at else None,
        },
        "shopper": shopper,
        "verification": {"verified_by": person(r.verified_by), "how": r.verified_how, "at": _at(r.verified_at)},
        "approval": {
            "approved_by": person(r.approved_by),
            "approved_at": _at(r.approved_at),
            "decisions": acts(DECISIONS),
        },
        "tasks": _tasks(case),
        "downloads": [{"at": d["at"], "shown_to": d["by"], "audit_entry": d["audit_entry"]} for d in acts(DOWNLOADS)],
        "reminders": [{"at": d["at"], "which": d["detail"], "audit_entry": d["audit_entry"]} for d in acts(REMINDERS)],
        "extensions": {"extended": acts(EXTENSIONS), "shopper_told_at": _at(r.extension_told_at)},
        "outcome": {
            "outcome": r.outcome,
            "denial_reason": r.denial_reason,
            "closed_at": _at(r.closed_at),
            "closed_by": person(r.closed_by),
            "cancelled_at": _at(r.cancelled_at),
            "cancelled_by": person(r.cancelled_by),
            "amazon_errors": [{"code": e.code, "message": e.message} for e in r.errors],
        },
        "slack_posts": [
            {
                "notice": p.notice,
                "queued_at": _at(p.created_at),
                "sent_at": _at(p.sent_at),
                "gave_up_at": _at(p.gave_up_at),
                "attempts": p.attempts,
            }
            for p in case.posts
        ],
        "timeline": _timeline(case, person),
        "audit": [_entry(e) for e in case.audit],
        "audit_chain": {
            "intact": chain.broken is None,
            "entries_checked": chain.entries,
            "newest_entry": chain.last_id,
            "newest_hash": chain.last_hash or None,
            "broken": describe_break(chain.broken) if chain.broken is not None else None,
            "hash": "SHA-256 hex of the compact JSON array [id, at, request_id, actor, actor_name, action, detail, "
            "prev_hash], non-ASCII escaped",
        },
    }


def _entry(e: AuditEntry) -> dict[str, Any]:
    """One audit entry with what its hash covers (``at`` exact, as hashed), and the hashes."""
    return {
        "id": e.id,
        "at": _at(e.at),
        "at_epoch": e.at,
        "request_id": e.request_id,
        "actor": e.actor,
        "actor_name": e.actor_name,
        "action": e.action,
        "detail": e.detail,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def _tasks(case: CaseFile) -> list[dict[str, Any]]:
    """Each task the case had at Amazon, oldest first: when it started, what Amazon said, where it ended."""
    r = case.request
    started = {task: e for e in case.audit if (task := started_task(e))}
    out = []
    for task in case.tasks:
        current = task == r.task_id
        entry = started.get(task)
        out.append(
            {
                "task": task,
                "started_at": _at(entry.at) if entry else None,
                "status": r.status.value if current else "replaced by a retry",
                "hold_ends_at": _at(r.hold_ends_at) if current else None,
                "events": [
                    {
                        "type": e.event_type,
                        "event_id": e.event_id,
                        "received_at": _at(e.received_at),
                        "processed_at": _at(e.processed_at),
                    }
                    for e in case.events
                    if e.task_id == task
                ],
            }
        )
    return out


Person = Callable[[str | None], dict[str, str | None] | None]


def _timeline(case: CaseFile, person: Person) -> list[dict[str, Any]]:
    """Everything that happened to the case, oldest first: audit entries, events as they arrived, posts sent."""
    r = case.request
    items: list[tuple[float, int, dict[str, Any]]] = []
    if r.received_on:  # a day, not a moment: before anything that happened on it
        day = datetime.fromisoformat(r.received_on).replace(tzinfo=UTC).timestamp()
        items.append((day, 0, {"at": r.received_on, "what": "shopper's request received", "by": None, "detail": ""}))
    for e in case.audit:
        items.append((e.at, 1, {"at": _at(e.at), "what": e.action, "by": person(e.actor), "detail": e.detail}))
    for ev in case.events:
        what = f"Amazon event arrived: {ev.event_type}"
        items.append((ev.received_at, 1, {"at": _at(ev.received_at), "what": what, "by": None, "detail": ev.task_id}))
    for p in case.posts:
        if p.sent_at is not None:
            items.append(
                (p.sent_at, 1, {"at": _at(p.sent_at), "what": f"Slack post sent: {p.notice}", "by": None, "detail": ""})
            )
        if p.gave_up_at is not None:
            what = f"Slack post given up: {p.notice}"
            items.append((p.gave_up_at, 1, {"at": _at(p.gave_up_at), "what": what, "by": None, "detail": ""}))
    return [item for _, _, item in sorted(items, key=lambda i: (i[0], i[1]))]
