"""What every handler does first: check the user may act (auditing a refusal), and how to answer them alone."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from contextlib import AbstractContextManager
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond

from handlers import texts
from handlers.context import Desk
from handlers.lifecycle import Reply
from prime import StoreUnavailable, case_context

__all__ = ["about_request", "allowed", "clicked_by", "ephemeral_reply", "saving"]

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


def clicked_by(deps: Desk, body: dict[str, Any]) -> str:
    """The id of the user who clicked; their Slack name, sent in the same payload, is kept for the audit log."""
    clicker = body.get("user") or {}
    user = str(clicker.get("id", ""))
    deps.flow.store.know_name(user, str(clicker.get("username") or clicker.get("name") or ""))
    return user


def about_request(value: str) -> AbstractContextManager[None]:
    """Work started inside (a button's, in the background) logs with the id of the request ``value`` names."""
    return case_context(request_id=int(value) if value.isdigit() else None)


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
