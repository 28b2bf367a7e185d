"""What every handler does first: check the user may act (auditing a refusal), and how to answer them alone.

A button's handler asks ``clicked_request``: the clicker's permission first, then whether the button is
still its request's (``handlers/buttons.py``); either refusal is audited and explained to the clicker alone.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from contextlib import AbstractContextManager
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond

from core import StoreUnavailable, case_context
from handlers import texts
from handlers.buttons import Pressed, mismatch, named
from handlers.desk import Desk
from handlers.lifecycle import Reply
from store import Request

__all__ = ["about_request", "allowed", "clicked_by", "clicked_request", "ephemeral_reply", "saving"]

logger = logging.getLogger(__name__)


async def allowed(deps: Desk, user: str, *, action: str, reply: Reply, request_id: int | None = None) -> bool:
    """True if ``user`` may ``action`` now; otherwise the refusal is audited and explained to them."""
    decision = await deps.authorizer.check(user)
    if decision.allowed:
        return True
    await deps.flow.store.audit.append(
        request_id=request_id, actor=user, action="refused", detail=f"{action}: not allowed"
    )
    await reply(texts.not_allowed(decision.reason))
    return False


async def clicked_request(deps: Desk, click: Pressed, *, user: str, action: str, reply: Reply) -> Request | None:
    """The request ``click`` names, if ``user`` may ``action`` and the button is still that request's; else None,
    the refusal audited and explained to them (one who may not act is told that first, as for any action)."""
    name = named(click.value)
    found = await deps.flow.store.requests.get(name.request_id) if name is not None else None
    problem = mismatch(found, name, click.thread) if name is not None else "a button value this bot does not make"
    request = found if problem is None else None
    if not await allowed(deps, user, action=action, reply=reply, request_id=request.id if request else None):
        return None
    if request is None:
        await deps.flow.store.audit.append(request_id=None, actor=user, action="refused", detail=f"{action}: {problem}")
        await reply(texts.stale_button())
    return request


def clicked_by(deps: Desk, body: dict[str, Any]) -> str:
    """The id of the user who clicked; their Slack name, sent in the same payload, is kept for the audit log."""
    clicker = body.get("user") or {}
    user = str(clicker.get("id", ""))
    deps.flow.store.know_name(user, str(clicker.get("username") or clicker.get("name") or ""))
    return user


def about_request(click: Pressed) -> AbstractContextManager[None]:
    """Work started inside (a button's, in the background) logs with the id of the request ``click`` names."""
    name = named(click.value)
    return case_context(request_id=name.request_id if name else None)


def ephemeral_reply(respond: AsyncRespond) -> Reply:
    """Answer through the request's response_url, to the person who acted alone."""

    async def reply(message: texts.Message) -> None:
        try:
            await respond(response_type="ephemeral", replace_original=False, **message)
        except Exception as error:  # the response_url may have expired; nothing else to tell them through
            logger.warning("could not answer through response_url: %s", type(error).__name__)

    return reply


async def saving(work: Awaitable[None], *, reply: Reply) -> None:
    """Run a person's action; if the database refuses a write, tell them so rather than going quiet."""
    try:
        await work
    except StoreUnavailable:
        await reply(texts.cannot_save())
