"""Messages are put into words when they are sent, not inside the transaction that queued them.

The outbox keeps what a change has to say (a notice: which message, and a name or code), so the queue
holds no Slack payload and no shopper's masked email, a message says what the request is when it goes
out, and a text that cannot be built fails at send time (given up, audited, the requester told) without
undoing the change.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from fakes import FakeSlack, text_of
from slack_sdk.web.async_client import AsyncWebClient

from core import RequestKind
from handlers import notices
from handlers.kinds.registry import KINDS, opened
from handlers.workers.outbox import UNRENDERABLE, OutboxSender
from store import EmailCipher, Notice, Request, RequestStatus, Store

EMAIL = "jane.shopper@example.com"
CHANNEL = "C0COMPLY"


@dataclass
class Rig:
    store: Store
    slack: FakeSlack
    sender: OutboxSender
    path: Path
    abandoned: list[tuple[int, str]]


@asynccontextmanager
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with FakeSlack() as slack:
        path = tmp_path / "requests.db"
        store = await Store.open(path, cipher=EmailCipher(os.urandom(32)))
        web = AsyncWebClient(token=slack.token, base_url=slack.api_url)
        sender = OutboxSender(store=store, slack=web, render=partial(notices.render, kinds=KINDS), opened=opened(KINDS))
        abandoned: list[tuple[int, str]] = []
        sender.on_abandoned = lambda entry, code: abandoned.append((entry.request_id, code))
        try:
            yield Rig(store, slack, sender, path, abandoned)
        finally:
            await store.close()
        assert not slack.invalid_blocks, slack.invalid_blocks


async def started(r: Rig) -> Request:
    """A retrieval whose thread is open (its first message sent) and whose task has started."""
    store = r.store
    request, _ = await store.requests.create(
        kind=RequestKind.RETRIEVAL,
        email=EMAIL,
        email_masked="j***@example.com",
        requester="U0ALICE",
        channel=CHANNEL,
        due_at=time.time() + 30 * 86_400,
        deadline="30 days",
        notices=[notices.opener()],
    )
    sent = await r.sender.send_for(request.id)
    assert sent is not None and sent.sent
    return await store.requests.record_task_started(request.id, "task-1", notices=())


def queued(path: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(path)) as db:
        return [(str(m), str(p)) for m, p in db.execute("SELECT method, payload FROM outbox ORDER BY id")]


async def test_the_queue_holds_what_to_say_and_the_words_are_those_of_the_moment_it_is_sent(tmp_path: Path) -> None:
    """A parent refresh queued while the task ran goes out saying what the request is when it is sent."""
    async with rig(tmp_path) as r:
        request = await started(r)
        await r.store.requests.schedule_check(request.id, at=0)
        await r.store.cases.extend_deadline(request.id, days=15, user="U0ALICE", notices=notices.thread_update())
        completed = await r.store.requests.record_task_state(
            request.id,
            from_={RequestStatus.IN_PROGRESS},
            to=RequestStatus.COMPLETED,
            errors=(),
            action="completed",
            notices=notices.thread_update("completed"),
        )
        assert completed.moved
        # What waits in the queue: notice names and a reply's name; no Slack payload, no shopper, no words.
        assert queued(r.path)[1:] == [("parent", "{}"), ("parent", "{}"), ("reply", '{"name": "completed"}')]
        while await r.sender.send_due():
            pass
        first, second = r.slack.updates()
        for update in (first, second):  # both say where it stands now, not where it stood when queued
            assert "Ready" in text_of(update) and "extended by 15 days" in text_of(update)
            assert update["ts"] == request.thread_ts and "j***@example.com" in text_of(update)
        (reply,) = [p for p in r.slack.posts(CHANNEL) if p.get("thread_ts") == request.thread_ts]
        assert "Download" in json.dumps(reply["blocks"]) and reply["metadata"]["event_type"] == "data_request_outbox"


async def test_a_message_that_cannot_be_built_fails_when_sent_and_the_change_stands(tmp_path: Path) -> None:
    """A reply no kind knows: the move commits, the post is given up as unrenderable, audited, requester told."""
    async with rig(tmp_path) as r:
        request = await started(r)
        moved = await r.store.requests.record_task_state(
            request.id,
            from_={RequestStatus.IN_PROGRESS},
            to=RequestStatus.COMPLETED,
            errors=(),
            action="completed",
            notices=[Notice("reply", {"name": "no such reply"})],
        )
        assert moved.moved and moved.request is not None and moved.request.status is RequestStatus.COMPLETED
        assert await r.sender.send_due() == 1
        assert len(r.slack.calls) == 1 and r.abandoned == [(request.id, UNRENDERABLE)]  # the opener alone
        (gave_up,) = [e for e in await r.store.audit.entries() if e.action == "slack post abandoned"]
        assert gave_up.detail == f"reply: {UNRENDERABLE}"
        assert (await r.store.requests.get(request.id)).status is RequestStatus.COMPLETED  # type: ignore[union-attr]
