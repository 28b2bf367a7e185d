"""The Slack outbox sender: every queued thread post and update, sent once, in order per request.

Entries are written in the same transaction as the state change that caused
them, so a crash never loses one. The sender honours Retry-After on 429, backs
off on 5xx and network errors, and gives up (with an audit entry) on errors
that another try cannot fix, such as an archived channel.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.background import Wakeup
from bot.errors import slack_error_code
from store.records import OutboxEntry
from store.store import Store

__all__ = ["OutboxSender"]

logger = logging.getLogger(__name__)

METADATA_EVENT = "data_request_outbox"
# Slack errors another attempt cannot fix: give up, and say so in the audit log.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "no_text",
        "restricted_action",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "not_authed",
    }
)


class OutboxSender:
    """Sends due outbox entries until cancelled; ``wake()`` says new ones are waiting."""

    def __init__(
        self,
        *,
        store: Store,
        slack: AsyncWebClient,
        concurrency: int = 8,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        idle_wait: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._slack = slack
        self._slots = asyncio.Semaphore(concurrency)
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._idle_wait = idle_wait
        self._clock = clock
        self._wakeup = Wakeup()
        self._failed_rounds = 0  # consecutive rounds in which Slack failed and nothing got through

    def wake(self) -> None:
        self._wakeup.ring()

    async def run(self) -> None:
        while True:
            sent = await self.send_due()
            if sent:
                continue
            next_due = await self._store.next_outbox_due()
            wait = self._idle_wait if next_due is None else max(0.0, min(self._idle_wait, next_due - self._clock()))
            await self._wakeup.wait(wait)

    async def send_due(self) -> int:
        """Send what is due now (the head entry of each request); return how many were tried.

        When Slack is failing (5xx, network) every entry waits the same growing delay, shared by
        the whole outbox: Slack is down for all of them, and the first round after it recovers
        sends everything. The delay is capped (``max_delay``), which bounds how long a thread
        lags behind once Slack is back.
        """
        entries = await self._store.due_outbox(limit=64)
        if not entries:
            return 0  # nothing was due: says nothing about whether Slack is back
        outcomes = await asyncio.gather(*(self._send(entry) for entry in entries))
        failed = [(entry, reason) for entry, reason in zip(entries, outcomes, strict=True) if reason is not None]
        if not failed:
            self._failed_rounds = 0
            return len(entries)
        self._failed_rounds = self._failed_rounds + 1 if len(failed) == len(entries) else 1
        delay = min(self._max_delay, self._base_delay * 2.0 ** min(self._failed_rounds, 16)) * random.uniform(0.5, 1)
        logger.warning("outbox: %d Slack calls failed (%s); retrying in %.1f s", len(failed), failed[0][1], delay)
        for entry, reason in failed:
            await self._store.outbox_retry(entry.id, at=self._clock() + delay, error=reason)
        return len(entries)

    async def _send(self, entry: OutboxEntry) -> str | None:
        """Make the call; None when it is settled (sent, given up, or rescheduled by Slack's Retry-After),
        else the reason it should be tried again."""
        async with self._slots:
            if entry.attempts and await self._already_posted(entry):
                logger.info("outbox %s: found already posted before a restart; not posting again", entry.id)
                await self._store.outbox_sent(entry.id)
                return None
            await self._store.outbox_attempting(entry.id)
            try:
                await self._slack.api_call(entry.method, json=_tagged(entry))
            except SlackApiError as error:
                return await self._failed(entry, error)
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                return type(error).__name__
            except Exception as error:  # an odd answer from Slack: this entry backs off, the others go on
                logger.exception("outbox %s: %s failed unexpectedly", entry.id, entry.method)
                return type(error).__name__
            await self._store.outbox_sent(entry.id)
            return None

    async def _already_posted(self, entry: OutboxEntry) -> bool:
        """Was this thread reply posted by an attempt whose success was never recorded (a crash)?

        Replies carry their outbox id in message metadata; reading the thread back needs the
        channels:history / groups:history scopes. Without them the answer is "no" and the reply
        is posted again: at least once, not exactly once (see the README).
        """
        if entry.method != "chat.postMessage" or not entry.payload.get("thread_ts"):
            return False  # chat.update is idempotent: sending it twice shows the same message
        try:
            response = await self._slack.conversations_replies(
                channel=entry.payload["channel"], ts=entry.payload["thread_ts"], include_all_metadata=True, limit=200
            )
        except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
            logger.debug("outbox %s: cannot read the thread back (%s)", entry.id, type(error).__name__)
            return False
        for message in response.get("messages") or []:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("outbox_id") == entry.id:
                return True
        return False

    async def _failed(self, entry: OutboxEntry, error: SlackApiError) -> str | None:
        status = error.response.status_code
        code = slack_error_code(error)
        if status == 429:
            headers = error.response.headers
            retry_after = _seconds(headers.get("Retry-After") or headers.get("retry-after"))
            logger.info("outbox %s: Slack rate limit, retrying in %.0f s", entry.id, retry_after)
            await self._store.outbox_retry(entry.id, at=self._clock() + retry_after, error=code)
            return None
        if code in PERMANENT_ERRORS:
            logger.error("outbox %s: Slack refused %s for good (%s); giving up", entry.id, entry.method, code)
            await self._store.outbox_give_up(entry, error=code)
            return None
        return code


def _tagged(entry: OutboxEntry) -> dict[str, object]:
    """Thread replies carry their outbox id, so a resend after a crash can find them first."""
    if entry.method != "chat.postMessage":
        return entry.payload
    return {**entry.payload, "metadata": {"event_type": METADATA_EVENT, "event_payload": {"outbox_id": entry.id}}}


def _seconds(value: object) -> float:
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, min(float(str(value)), 3600.0))
    except (TypeError, ValueError):
        return 1.0
