"""The bot, assembled exactly as ``serve`` assembles it, running in-process against the loopback fakes.

Tests drive it the way Slack and Amazon do, over HTTP: signed slash commands
and clicks to ``/slack/events``, relayed events to ``/buy-with-prime/events``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from fakes import (
    FakePrime,
    FakeSlack,
    block_actions_body,
    buttons,
    shortcut_body,
    slack_headers,
    slash_body,
    text_of,
    view_submission_body,
)

from bot.redaction import Redactor
from bot.runtime import Runtime
from bot.settings import Settings
from bot.tuning import Tuning
from handlers.kinds import KindFlow
from handlers.kinds.registry import KINDS

__all__ = ["CHANNEL", "Harness", "SettableClock", "ack_text", "envelope", "eventually", "running_bot", "webhook"]

CHANNEL = "C0COMPLY"
SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
RELAY_KEY = "test-relay-key-0123456789abcdef"


def make_settings(slack: FakeSlack, prime: FakePrime, workdir: Path, **overrides: Any) -> Settings:
    settings = Settings(
        slack_bot_token=slack.token,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        bwp_api_url=prime.api_url,
        bwp_token_url=prime.token_url,
        bwp_client_id=prime.client_id,
        bwp_client_secret=prime.client_secret,
        bwp_target_id=prime.target_id,
        relay_api_key=RELAY_KEY,
        database_path=workdir / "data-requests.db",
        encryption_key=os.urandom(32),
        allowed_users=frozenset({"U0ALICE", "U0BOB"}),
        reconcile_interval=3600,
        port=0,
        identity_verification="off",  # most tests click Download or Approve at once; verification tests say required
    )
    return replace(settings, **overrides)


@dataclass
class Harness:
    """One running bot and the two parties it talks to."""

    slack: FakeSlack
    prime: FakePrime
    runtime: Runtime
    http: httpx.AsyncClient
    settings: Settings
    crashed: bool = False
    clock: Callable[[], float] = time.time
    redactor: Redactor | None = None  # the log handlers' redactor, when a test configured logging
    kinds: Mapping[str, KindFlow] = field(default_factory=lambda: KINDS)  # the kinds of request the bot runs

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.runtime.port}"

    async def slash(
        self, text: str, *, user: str = "U0ALICE", channel: str = CHANNEL, sign: bool = True
    ) -> httpx.Response:
        """Send ``/data-request <text>`` as Slack does (signed unless ``sign`` is False)."""
        body = slash_body(text, user=user, channel=channel, response_url=self.slack.response_url(user))
        headers = slack_headers(body, SIGNING_SECRET if sign else "wrong-secret")
        return await self.http.post(self.url + "/slack/events", content=body, headers=headers)

    async def click(self, message: dict[str, Any], *, user: str = "U0ALICE", channel: str = CHANNEL) -> httpx.Response:
        """Click the first button of a posted ``message`` as ``user``."""
        button = buttons(message)[0]
        body = block_actions_body(
            user=user,
            channel=channel,
            message_ts=message["ts"],
            action_id=button["action_id"],
            value=button.get("value", ""),
            block_id=button["block_id"],
            response_url=self.slack.response_url(user),
            thread_ts=message.get("thread_ts"),
            message=message,
        )
        headers = slack_headers(body, SIGNING_SECRET)
        return await self.http.post(self.url + "/slack/events", content=body, headers=headers)

    async def press(
        self,
        message: dict[str, Any],
        action_id: str,
        *,
        user: str = "U0ALICE",
        channel: str = CHANNEL,
        ephemeral: bool = False,
    ) -> httpx.Response:
        """Click the button ``action_id`` of a posted ``message`` (or of a version of it, or of an ``ephemeral``
        answer) as ``user``."""
        button = next(b for b in buttons(message) if b["action_id"] == action_id)
        body = block_actions_body(
            user=user,
            channel=channel,
            message_ts=message["ts"],
            action_id=action_id,
            value=button.get("value", ""),
            block_id=button["block_id"],
            response_url=self.slack.response_url(user),
            thread_ts=message.get("thread_ts"),
            message=message,
            ephemeral=ephemeral,
        )
        return await self.http.post(
            self.url + "/slack/events", content=body, headers=slack_headers(body, SIGNING_SECRET)
        )

    async def submit(
        self,
        view: dict[str, Any],
        values: dict[str, dict[str, str]],
        *,
        user: str,
        selected: dict[str, dict[str, str]] | None = None,
    ) -> httpx.Response:
        """Submit a modal the bot opened (``view`` as sent to views.open) with ``values`` typed or chosen (and the
        options ``selected``), as ``user``; a channel picked in it comes with its response_url, as Slack sends it."""
        body = view_submission_body(
            user=user, view=view, values=values, selected=selected, response_url=self.slack.response_url(user)
        )
        return await self.http.post(
            self.url + "/slack/events", content=body, headers=slack_headers(body, SIGNING_SECRET)
        )

    async def shortcut(self, callback_id: str, *, user: str = "U0ALICE") -> httpx.Response:
        """Run the global shortcut ``callback_id`` as ``user`` (from the search bar: no channel)."""
        body = shortcut_body(callback_id, user=user)
        return await self.http.post(
            self.url + "/slack/events", content=body, headers=slack_headers(body, SIGNING_SECRET)
        )

    async def relay(
        self, body: dict[str, Any] | bytes | str, *, key: str | None = RELAY_KEY, basic: bool = False
    ) -> httpx.Response:
        """POST to the relay the way an EventBridge API destination does."""
        content = body if isinstance(body, bytes | str) else json.dumps(body)
        headers = {"content-type": "application/json"}
        if key is not None and basic:
            headers["authorization"] = "Basic " + base64.b64encode(f"eventbridge:{key}".encode()).decode()
        elif key is not None:
            headers["x-api-key"] = key
        return await self.http.post(self.url + "/buy-with-prime/events", content=content, headers=headers)

    async def crash(self) -> None:
        """Stop the bot the way kill -9 does: no drain, no outbox flush, in-flight work simply gone."""
        runtime = self.runtime
        self.crashed = True
        for task in runtime.workers.tasks:
            task.cancel()
        await runtime.workers.outbox.settle(0)  # Slack calls in flight: their answers never arrive
        await runtime.background.drain(0)
        await runtime.served.runner.cleanup()
        await runtime.clients.http.aclose()
        await runtime.store.close()
        if runtime.served.instance_lock is not None:
            runtime.served.instance_lock.release()  # the kernel frees a dead process's flock

    async def restart(self, **overrides: Any) -> None:
        """Start a new bot process (in-process) on the same database, key and fakes."""
        self.settings = replace(self.settings, **overrides)
        self.runtime = await Runtime.start(
            self.settings,
            host="127.0.0.1",
            tuning=Tuning.fast(),
            clock=self.clock,
            redactor=self.redactor,
            kinds=self.kinds,
        )
        self.crashed = False

    # ----------------------------------------------------------------- what Slack shows

    def opened_form(self) -> dict[str, Any]:
        """The modal the bot opened last, as it sent it to views.open."""
        view: dict[str, Any] | str = self.slack.calls_to("views.open")[-1].args["view"]
        return json.loads(view) if isinstance(view, str) else view

    def parents(self, channel: str = CHANNEL) -> list[dict[str, Any]]:
        return [p for p in self.slack.posts(channel) if not p.get("thread_ts")]

    def replies(self, thread_ts: str, channel: str = CHANNEL) -> list[dict[str, Any]]:
        return [p for p in self.slack.posts(channel) if p.get("thread_ts") == thread_ts]

    async def download_reply(self, parent: dict[str, Any]) -> dict[str, Any]:
        """Wait for the thread reply that carries the Download button."""
        replies: dict[str, Any] = await self.slack.wait_for(
            lambda: next((p for p in self.replies(parent["ts"]) if buttons(p)), None)
        )
        return replies

    async def request(
        self, text: str, *, user: str = "U0ALICE", email: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Run the command and wait until the task is started and the thread names it: (task id, parent).

        ``email`` is what Amazon should receive, when ``text`` is not simply that address.
        """
        email = email or text

        def tasks() -> list[Any]:
            return [t for t in self.prime.tasks.values() if t.email == email]

        before, tasks_before = len(self.parents()), len(tasks())
        response = await self.slash(text, user=user)
        assert response.status_code == 200, response.text
        parent = await self.slack.wait_for(lambda: self.parents()[before])
        task = await self.prime.wait_for(lambda: tasks()[tasks_before])
        await self.slack.wait_for(
            lambda: [u for u in self.slack.updates() if u.get("ts") == parent["ts"] and task.task_id in json.dumps(u)]
        )
        return task.task_id, parent


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 5.0) -> None:
    """Wait for a condition on the bot's own database, which announces nothing: re-checked every few ms."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 (no event exists to wait on; the store is polled)
            await asyncio.sleep(0.005)


def ack_text(response: httpx.Response) -> str:
    """What the user sees of a command's acknowledgement: Bolt sends plain text, or JSON with blocks."""
    try:
        return text_of(response.json())
    except ValueError:
        return response.text


def envelope(
    detail_type: str, task_id: str, event_id: str | None = None, *, task_field: str = "personalDataRetrievalTask"
) -> dict[str, Any]:
    """An EventBridge API destination body, as the Buy with Prime partner source emits it.

    ``task_field`` names the task's kind in the resource (``personalDataDeletionTask`` for an erasure).
    """
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.partner/buywithprime/test-events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "resources": [f"businessProduct/amzn1.bp.test/{task_field}/{task_id}"],
        "detail": {},
    }


def webhook(event_type: str, task_id: str, event_id: str | None = None) -> dict[str, Any]:
    """A Buy with Prime webhook body (API version 2024-11-01)."""
    event_id = event_id or str(uuid.uuid4())
    return {
        "idempotencyKey": event_id,
        "eventDescriptor": event_type,
        "eventId": event_id,
        "apiVersion": "2024-11-01",
        "subscriptionId": "sub-test",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "resources": [f"businessProduct/amzn1.bp.test/personalDataRetrievalTask/{task_id}"],
        "data": {},
    }


class SettableClock:
    """A clock the test moves: reminders, deadlines and retention are tested without waiting days."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@asynccontextmanager
async def running_bot(
    workdir: Path,
    *,
    clock: Callable[[], float] = time.time,
    tuning: Tuning | None = None,
    redactor: Redactor | None = None,
    kinds: Mapping[str, KindFlow] = KINDS,
    **overrides: Any,
) -> AsyncIterator[Harness]:
    """Fakes up, bot up; everything down afterwards, with the fakes checked for invalid traffic.

    ``kinds``: the kinds of request the bot runs (a test adds one of its own).
    """
    async with FakeSlack(usergroups={"S0COMPLY": ["U0CAROL"]}) as slack, FakePrime() as prime:
        settings = make_settings(slack, prime, workdir, **overrides)
        runtime = await Runtime.start(
            settings, host="127.0.0.1", tuning=tuning or Tuning.fast(), clock=clock, redactor=redactor, kinds=kinds
        )
        async with httpx.AsyncClient(timeout=10) as http:
            harness = Harness(slack, prime, runtime, http, settings, clock=clock, redactor=redactor, kinds=kinds)
            try:
                yield harness
            finally:
                if not harness.crashed:
                    await harness.runtime.stop()
        assert not prime.invalid, prime.invalid
        assert not slack.invalid_blocks, slack.invalid_blocks
