"""Finding a post whose answer never came: Slack may have made it before the bot stopped waiting.

Every message the outbox posts carries, in its message metadata, its outbox entry's id and a key of its
request (``tag``). Before an entry that was attempted before is posted again, ``find_posted`` looks for it:
a thread reply in its thread (``conversations.replies``), a thread's first message in the channel since
its request was made (``conversations.history``). Reading messages back needs the ``channels:history`` /
``groups:history`` scopes: without them nothing is found and the post is made again (at least once, not
exactly once; docs/how-it-works.md, Reliability).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack_errors import slack_error_code
from store import OPENS_THREAD, OutboxEntry

__all__ = ["CLOCK_SKEW", "HISTORY_PAGES", "METADATA_EVENT", "find_posted", "tag"]

logger = logging.getLogger(__name__)

METADATA_EVENT = "data_request_outbox"
HISTORY_PAGES = 5  # pages of 200 of the channel read back, at most, for one thread's first message
CLOCK_SKEW = 600.0  # seconds: ts are Slack's clock, a request's time the bot's; look back this much further

_UNREADABLE = (SlackApiError, aiohttp.ClientError, OSError, TimeoutError)


def tag(entry: OutboxEntry, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A chat.postMessage payload with the metadata that lets ``find_posted`` know the message again."""
    marks: dict[str, Any] = {"outbox_id": entry.id}
    if entry.request is not None:
        marks["request"] = _request_key(entry.request.client_token)
    return {**payload, "metadata": {"event_type": METADATA_EVENT, "event_payload": marks}}


async def find_posted(slack: AsyncWebClient, entry: OutboxEntry, payload: Mapping[str, Any]) -> str | None:
    """The ts of the message an earlier attempt of ``entry`` posted (``payload`` as it is posted now), if any.

    None when it is not there, or when Slack cannot be read (no history scope, Slack failing): then the
    caller posts it again.
    """
    channel = str(payload["channel"])
    if not payload.get("thread_ts") and entry.purpose != OPENS_THREAD:
        return None  # a direct message: not looked for (reading one back needs im:history)
    try:
        if payload.get("thread_ts"):
            answer = await slack.conversations_replies(
                channel=channel, ts=str(payload["thread_ts"]), include_all_metadata=True, limit=200
            )
            return _mine(entry, answer.get("messages") or [])
        oldest = entry.request.created_at - CLOCK_SKEW if entry.request is not None else 0.0
        cursor = None
        for _ in range(HISTORY_PAGES):
            answer = await slack.conversations_history(
                channel=channel, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=200, cursor=cursor
            )
            if found := _mine(entry, answer.get("messages") or []):
                return found
            cursor = (answer.get("response_metadata") or {}).get("next_cursor")
            if not answer.get("has_more") or not cursor:
                return None
    except _UNREADABLE as error:
        why = slack_error_code(error) if isinstance(error, SlackApiError) else type(error).__name__
        logger.info("outbox %s: cannot read Slack back to look for it (%s)", entry.id, why)
        return None
    logger.warning("outbox %s: not among the channel's last %d pages; posting it again", entry.id, HISTORY_PAGES)
    return None


def _mine(entry: OutboxEntry, messages: list[dict[str, Any]]) -> str | None:
    """The ts of the message tagged with this entry's id (and its request's key, when the message has one)."""
    key = _request_key(entry.request.client_token) if entry.request is not None else None
    for message in messages:
        metadata = message.get("metadata") or {}
        marks = metadata.get("event_payload") or {}
        if metadata.get("event_type") != METADATA_EVENT or marks.get("outbox_id") != entry.id:
            continue
        if marks.get("request") in (None, key):
            return str(message["ts"])
    return None


def _request_key(client_token: str) -> str:
    """Tells requests apart across a restored backup (which reuses ids); says nothing of the token itself."""
    return hashlib.sha256(client_token.encode()).hexdigest()[:16]
