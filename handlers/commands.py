"""``/data-request``: what staff type, read into one of a few intents, then acted on.

Slack wants an answer within 3 seconds. Parsing is instant, so a mistake is
answered in the acknowledgement itself; everything slower (authorization,
the thread, the call to Amazon) runs after ``ack()`` in tracked background work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from handlers import texts
from handlers.deps import Deps
from handlers.emails import mask_email, parse_email
from handlers.lifecycle import Reply, advance
from store.records import Request

__all__ = ["Help", "Invalid", "Start", "Status", "handle_command", "parse_command"]

logger = logging.getLogger(__name__)

NEW_FLAG = "--new"
# Amazon returns the same task for the same clientToken within 8 hours; the bot refuses a second
# request for the same shopper within that window (or while one is open) unless asked with --new.
DUPLICATE_WINDOW = 8 * 3600.0


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Start:
    email: str
    force_new: bool = False


@dataclass(frozen=True, slots=True)
class Status:
    query: str


@dataclass(frozen=True, slots=True)
class Invalid:
    message: texts.Message


Intent = Help | Start | Status | Invalid


def parse_command(text: str) -> Intent:
    """Read the command's text into what the user meant."""
    words = text.split()
    if not words or words[0].lower() in ("help", "-h", "--help"):
        return Help()
    if words[0].lower() == "status":
        if len(words) != 2:
            return Invalid(texts.usage_error("`status` takes one email or task id."))
        return Status(words[1])
    flags = {w.lower() for w in words if w.startswith("--")}
    addresses = [w for w in words if not w.startswith("--")]
    if flags - {NEW_FLAG}:
        return Invalid(texts.usage_error(f"I don't know the option `{sorted(flags - {NEW_FLAG})[0]}`."))
    if len(addresses) != 1:
        return Invalid(texts.usage_error("Give one shopper email per request."))
    email = parse_email(addresses[0])
    if email is None:
        return Invalid(texts.invalid_email(addresses[0]))
    return Start(email, force_new=NEW_FLAG in flags)


async def handle_command(deps: Deps, *, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
    """Answer within Slack's 3 seconds; a new request is stored before it is acknowledged."""
    intent = parse_command(str(command.get("text") or ""))
    if isinstance(intent, Help):
        await ack(**texts.help_message(everyone_allowed=deps.authorizer.everyone_allowed))
        return
    if isinstance(intent, Invalid):
        await ack(**intent.message)
        return
    user, channel = str(command.get("user_id")), str(command.get("channel_id"))
    reply = _replier(respond)
    if isinstance(intent, Status):
        await ack()
        deps.background.spawn(_status(deps, intent, user=user, reply=reply), name="command status")
        return
    decision = await deps.authorizer.check(user)
    if not decision.allowed:
        await deps.store.audit(request_id=None, actor=user, action="refused", detail="request: not allowed")
        await ack(**texts.not_allowed(decision.reason))
        return
    request, created = await deps.store.create_request(
        email=intent.email,
        email_masked=mask_email(intent.email),
        requester=user,
        channel=channel,
        duplicate_window=None if intent.force_new else DUPLICATE_WINDOW,
        note=f"{NEW_FLAG}: another request for this shopper was open or recent" if intent.force_new else "",
    )
    await ack()
    if created:
        logger.info("request %s: created by %s in %s", request.id, user, channel)
        deps.background.spawn(advance(deps, request.id, reply=reply), name="command start")
    else:
        deps.background.spawn(_duplicate(deps, request, user=user, reply=reply), name="command duplicate")


async def _duplicate(deps: Deps, existing: Request, *, user: str, reply: Reply) -> None:
    await deps.store.audit(
        request_id=existing.id, actor=user, action="refused", detail="request: duplicate of an open or recent request"
    )
    await reply(texts.duplicate_request(existing, permalink=await _permalink(deps, existing)))


def _replier(respond: AsyncRespond) -> Reply:
    async def reply(message: texts.Message) -> None:
        try:
            await respond(response_type="ephemeral", replace_original=False, **message)
        except Exception as error:  # the response_url may have expired; nothing else to tell them through
            logger.warning("could not answer through response_url: %s", type(error).__name__)

    return reply


async def _status(deps: Deps, intent: Status, *, user: str, reply: Reply) -> None:
    decision = await deps.authorizer.check(user)
    if not decision.allowed:
        await deps.store.audit(request_id=None, actor=user, action="refused", detail="status: not allowed")
        await reply(texts.not_allowed(decision.reason))
        return
    email = parse_email(intent.query)
    if email is not None:
        found = await deps.store.requests_for_email(email)
        request: Request | None = found[0] if found else None
        what = f"`{mask_email(email)}`"
    else:
        request = await deps.store.request_for_task(intent.query)
        what = "that task id"
    if request is None:
        await reply(texts.unknown_request(what))
        return
    if request.status.unfinished:
        request = await advance(deps, request.id) or request
    await deps.store.audit(request_id=request.id, actor=user, action="status viewed")
    await reply(texts.status_message(request, permalink=await _permalink(deps, request), now=deps.clock()))


async def _permalink(deps: Deps, request: Request) -> str | None:
    if not request.thread_ts:
        return None
    try:
        response = await deps.slack.chat_getPermalink(channel=request.channel, message_ts=request.thread_ts)
    except (SlackApiError, OSError, TimeoutError):
        return None
    link = response.get("permalink")
    return str(link) if link else None
