"""What every handler does first: check the user may act (auditing a refusal), and how to answer them alone.

Every button that acts on a request is made by ``request_button``: it acknowledges at once, knows the
clicker, and in the background asks ``clicked_request`` (the clicker's permission first, then whether the
button is still its request's, ``handlers/buttons.py``, and of the kind it belongs to); a refusal is audited
and explained to the clicker alone, and only a click that passes reaches the button's own decision.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from core import StoreUnavailable, case_context
from handlers import texts
from handlers.buttons import Pressed, Thread, mismatch, named, pressed
from handlers.desk import Desk
from handlers.kinds import Click
from handlers.lifecycle import Reply
from store import Request

__all__ = [
    "Answer",
    "Clicked",
    "about_request",
    "allowed",
    "clicked_by",
    "clicked_request",
    "ephemeral_reply",
    "form_reply",
    "request_button",
    "saving",
]

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


async def clicked_request(
    deps: Desk, click: Pressed, *, user: str, action: str, reply: Reply, kind: str | None = None
) -> Request | None:
    """The request ``click`` names, if ``user`` may ``action`` and the button is still that request's (and of
    ``kind``, when given); else None, the refusal audited and explained to them (one who may not act is told
    that first, as for any action)."""
    name = named(click.value)
    found = await deps.flow.store.requests.get(name.request_id) if name is not None else None
    problem = mismatch(found, name, click.thread) if name is not None else "a button value this bot does not make"
    request = found if problem is None else None
    if not await allowed(deps, user, action=action, reply=reply, request_id=request.id if request else None):
        return None
    if request is None:
        await deps.flow.store.audit.append(request_id=None, actor=user, action="refused", detail=f"{action}: {problem}")
        await reply(texts.stale_button())
    elif kind is not None and request.kind != kind:
        await reply(texts.unknown_request("this button"))
        return None
    return request


@dataclass(frozen=True, slots=True)
class Clicked:
    """A click that passed the checks: the request, who clicked, how to answer them, and the payload itself."""

    request: Request
    user: str
    reply: Reply
    body: dict[str, Any]


Answer = Callable[[Desk, dict[str, Any], AsyncRespond, str], Reply]  # (deps, payload, respond, clicker) -> reply


def _through_response_url(_deps: Desk, _body: dict[str, Any], respond: AsyncRespond, _user: str) -> Reply:
    return ephemeral_reply(respond)


def request_button(
    *, action: str, name: str, kind: str | None = None, answer: Answer = _through_response_url
) -> Callable[[Callable[[Desk, Clicked], Awaitable[None]]], Click]:
    """Make a request button's listener from its decision: acknowledged at once, the checks and ``decide`` run
    in the background as task ``name``; ``action`` names the click in the audit log, ``kind`` is the kind of
    request the button belongs to (None: any), ``answer`` how the clicker is answered alone. A write the
    database refuses meanwhile is explained to the clicker (``saving``)."""

    def listener_for(decide: Callable[[Desk, Clicked], Awaitable[None]]) -> Click:
        async def listener(deps: Desk, *, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
            await ack()
            user = clicked_by(deps, body)
            reply = answer(deps, body, respond, user)
            click = pressed(body)

            async def checked() -> None:
                request = await clicked_request(deps, click, user=user, action=action, reply=reply, kind=kind)
                if request is not None:
                    await decide(deps, Clicked(request, user, reply, body))

            with about_request(click):
                deps.background.spawn(saving(checked(), reply=reply), name=name)

        return listener

    return listener_for


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


def form_reply(deps: Desk, thread: Thread | None, user: str) -> Reply:
    """Answer whoever sent a form with an ephemeral in the thread the form names (a modal's submission has no
    response_url); a form opened by an older version names none, and is answered nowhere (a refusal is audited
    all the same)."""

    async def reply(message: texts.Message) -> None:
        if thread is None:
            logger.info("could not answer %s: the form names no thread to answer in", user)
            return
        try:
            await deps.slack.chat_postEphemeral(channel=thread.channel, user=user, thread_ts=thread.ts, **message)
        except (SlackApiError, OSError, TimeoutError) as error:
            logger.info("could not answer %s in %s (%s)", user, thread.channel, type(error).__name__)

    return reply


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
