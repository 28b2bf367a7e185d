"""Socket Mode: Slack's traffic over the WebSocket, while the HTTP server still serves the relay and health."""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from fakes import FakePrime, block_actions_body, buttons, slash_body, text_of
from fakes.socket_mode import FakeSlackWithSockets
from harness import CHANNEL, envelope, make_settings

from bot.runtime import Runtime
from bot.settings import load_settings
from bot.tuning import Tuning

LINK = re.compile(r"https?://[^\s|>\"]+X-Amz-Signature=[0-9a-f]+")


@dataclass
class SocketBot:
    slack: FakeSlackWithSockets
    prime: FakePrime
    runtime: Runtime

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.runtime.port}"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[SocketBot]:
    async with FakeSlackWithSockets() as slack, FakePrime() as prime:
        settings = make_settings(
            slack,
            prime,
            tmp_path,
            slack_app_token=slack.app_token,
            slack_signing_secret=None,
            encryption_key=os.urandom(32),
        )
        runtime = await Runtime.start(settings, host="127.0.0.1", tuning=Tuning.fast())
        try:
            await slack.wait_for(lambda: slack.sockets)
            yield SocketBot(slack, prime, runtime)
        finally:
            await runtime.stop()


async def test_a_command_over_the_socket_is_acknowledged_and_starts_the_request(bot: SocketBot) -> None:
    """The envelope is acknowledged on the socket; the thread and the task follow as in HTTP mode."""
    body = slash_body(
        "sock@example.com", user="U0ALICE", channel=CHANNEL, response_url=bot.slack.response_url("U0ALICE")
    )
    envelope_id = await bot.slack.push("slash_commands", dict(parse_qsl(body)))
    await bot.slack.wait_for(lambda: bot.slack.acks.get(envelope_id))
    task = await bot.prime.wait_for(lambda: next(iter(bot.prime.tasks.values()), None))
    parent = await bot.slack.wait_for(lambda: bot.slack.posts(CHANNEL)[0])
    assert "s***@example.com" in str(parent)
    assert task.email == "sock@example.com"


async def test_in_socket_mode_http_serves_the_relay_and_health_but_not_slack_events(bot: SocketBot) -> None:
    """/slack/events is not served (there is no signing secret to verify with); /healthz and the relay are."""
    event = envelope("PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED", "unknown-task")
    key = {"x-api-key": bot.runtime.settings.relay_api_key or ""}
    async with httpx.AsyncClient() as http:
        assert (await http.get(bot.url + "/healthz")).status_code == 200
        assert (await http.post(bot.url + "/slack/events", content="x")).status_code == 404
        assert (await http.post(bot.url + "/buy-with-prime/events", json=event, headers=key)).status_code == 200


async def test_in_socket_mode_metrics_say_whether_the_socket_is_connected(bot: SocketBot) -> None:
    """The Socket Mode gauge is exported here (and only here: in HTTP mode there is no socket to report on)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(bot.url + "/metrics")).text
    assert "\ndata_request_bot_slack_socket_mode_connected 1.0\n" in text


async def test_serve_sandbox_in_socket_mode_gives_download_links_this_machines_browser_can_open(
    tmp_path: Path,
) -> None:
    """Socket Mode's first try (``serve --sandbox`` with an app token, no public URL, no PUBLIC_URL): the
    Download link points at localhost on the bot's own port, where the sandbox serves the zip."""
    async with FakeSlackWithSockets() as slack:
        env = {
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_APP_TOKEN": slack.app_token,
            "SLACK_API_URL": slack.api_url,
            "DATABASE_PATH": str(tmp_path / "data-requests.db"),
            "PORT": "0",
            "SANDBOX_COMPLETE_AFTER": "0",
            "IDENTITY_VERIFICATION": "off",  # the link's address is tested here; who may see it, elsewhere
        }
        runtime = await Runtime.start(load_settings(env, sandbox=True), host="127.0.0.1", tuning=Tuning.fast())
        try:
            await slack.wait_for(lambda: slack.sockets)
            command = slash_body("jane.doe@example.com", user="U0ALICE", channel=CHANNEL,
                                 response_url=slack.response_url("U0ALICE"))  # fmt: skip
            await slack.push("slash_commands", dict(parse_qsl(command)))
            parent = await slack.wait_for(
                lambda: next((p for p in slack.posts(CHANNEL) if not p.get("thread_ts")), None)
            )
            reply = await slack.wait_for(
                lambda: next(
                    (p for p in slack.posts(CHANNEL) if p.get("thread_ts") == parent["ts"] and buttons(p)), None
                )
            )
            download = next(b for b in buttons(reply) if b["text"]["text"] == "Download")
            click = block_actions_body(
                user="U0ALICE",
                channel=CHANNEL,
                message_ts=reply["ts"],
                thread_ts=parent["ts"],
                action_id=download["action_id"],
                value=download["value"],
                block_id=download["block_id"],
                response_url=slack.response_url("U0ALICE"),
                message=reply,
            )
            await slack.push("interactive", json.loads(dict(parse_qsl(click))["payload"]))
            link = await slack.wait_for(
                lambda: next((m for e in slack.ephemerals_to("U0ALICE") if (m := LINK.search(text_of(e)))), None)
            )
            assert link.group().startswith(f"http://localhost:{runtime.port}/sandbox/download/")
            async with httpx.AsyncClient(timeout=10) as browser:
                zipped = await browser.get(link.group())
            assert zipped.status_code == 200 and zipped.content.startswith(b"PK")
        finally:
            await runtime.stop()
