"""Socket Mode: Slack's traffic over the WebSocket, while the HTTP server still serves the relay and health."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from fakes import FakePrime, slash_body
from fakes.socket_mode import FakeSlackWithSockets
from harness import CHANNEL, envelope, make_settings

from bot.runtime import Runtime
from bot.tuning import Tuning


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
