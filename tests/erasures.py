"""Driving an erasure as staff do, over the loopback fakes: ask, approve, and read the thread as it stands."""

from __future__ import annotations

import json
from typing import Any

from fakes import Task, buttons
from harness import Harness, eventually

from handlers.buttons import named
from handlers.kinds.erasure.rules import APPROVE_ACTION, CANCEL_ACTION, REJECT_ACTION, RETRY_ACTION
from store import Request

__all__ = [
    "APPROVE_ACTION",
    "CANCEL_ACTION",
    "DELETED",
    "DELETION_FAILED",
    "REJECT_ACTION",
    "RETRY_ACTION",
    "approve",
    "ask",
    "everything",
    "latest",
    "request_of",
    "with_button",
]

DELETED = "PERSONAL_DATA_DELETION_TASK_COMPLETED"
DELETION_FAILED = "PERSONAL_DATA_DELETION_TASK_FAILED"


def everything(bot: Harness, ts: str) -> list[dict[str, Any]]:
    """The thread's first message as posted and each update of it, then every reply in it."""
    posts = [p for p in bot.slack.posts() if p.get("ts") == ts or p.get("thread_ts") == ts]
    updates = [dict(u, ts=ts) for u in bot.slack.updates() if u.get("ts") == ts]
    return posts[:1] + updates + posts[1:]


def latest(bot: Harness, ts: str) -> dict[str, Any]:
    """The thread's first message as it reads now (its last update)."""
    versions = [p for p in bot.slack.posts() if p.get("ts") == ts] + [
        dict(u, ts=ts) for u in bot.slack.updates() if u.get("ts") == ts
    ]
    return versions[-1]


def with_button(bot: Harness, ts: str, action_id: str) -> dict[str, Any] | None:
    """The newest message of the thread (first message or reply) that carries the button ``action_id``."""
    found = [m for m in everything(bot, ts) if any(b["action_id"] == action_id for b in buttons(m))]
    return found[-1] if found else None


async def ask(bot: Harness, text: str, *, user: str = "U0ALICE") -> dict[str, Any]:
    """``/data-request delete …``: wait for the new thread's first message with its Approve button."""
    before = len(bot.parents())
    response = await bot.slash(text, user=user)
    assert response.status_code == 200, response.text
    parent: dict[str, Any] = await bot.slack.wait_for(lambda: bot.parents()[before])
    await bot.slack.wait_for(lambda: with_button(bot, parent["ts"], APPROVE_ACTION))

    async def thread_recorded() -> bool:  # Slack shows the post before the bot has recorded its answer
        return (await request_of(bot, parent)).thread_ts == parent["ts"]

    await eventually(thread_recorded)
    return parent


async def request_of(bot: Harness, parent: dict[str, Any]) -> Request:
    """The stored request behind a thread."""
    message = with_button(bot, parent["ts"], APPROVE_ACTION)  # the first message always had it
    assert message is not None
    name = named(next(b["value"] for b in buttons(message) if b["action_id"] == APPROVE_ACTION))
    assert name is not None
    request = await bot.runtime.store.requests.get(name.request_id)
    assert request is not None
    return request


async def approve(bot: Harness, parent: dict[str, Any], email: str, *, user: str = "U0BOB") -> Task:
    """Click Approve as ``user`` (not the requester) and wait for the deletion task and the thread naming it."""
    before = [t for t in bot.prime.tasks.values() if t.kind == "deletion" and t.email == email]
    message = with_button(bot, parent["ts"], APPROVE_ACTION)
    assert message is not None
    assert (await bot.press(message, APPROVE_ACTION, user=user)).status_code == 200
    task: Task = await bot.prime.wait_for(
        lambda: (
            [t for t in bot.prime.tasks.values() if t.kind == "deletion" and t.email == email][len(before) :] or [None]
        )[0]
    )
    await bot.slack.wait_for(lambda: task.task_id in json.dumps(latest(bot, parent["ts"])))
    return task
