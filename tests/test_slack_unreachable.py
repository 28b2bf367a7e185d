"""Slack unreachable: a command is still stored and answered, and Socket Mode serves, reports and stops cleanly."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import signal
from pathlib import Path

import httpx
import pytest
from fakes import FakePrime
from fakes.socket_mode import FakeSlackWithSockets
from harness import CHANNEL, running_bot
from processes import Fakes, free_port, start_bot


async def test_a_command_while_slack_is_unreachable_is_stored_answered_and_threaded_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """HTTP mode, Slack's Web API refusing connections: the command gets its 200, and its thread once Slack is back."""
    caplog.set_level(logging.INFO)
    async with running_bot(tmp_path, reconcile_interval=0.05) as bot:
        await bot.slack.stop()  # nothing listens on Slack's port now: every call is refused
        response = await bot.slash("unreachable@example.com")
        assert response.status_code == 200, response.text
        request = await bot.runtime.store.requests.get(1)
        assert request is not None and request.email_masked == "u***@example.com"
        assert not [r for r in caplog.records if r.exc_info], "no traceback for an outage"

        await bot.slack.start()  # Slack is back, on the same address
        parent = await bot.slack.wait_for(lambda: bot.parents(CHANNEL)[0])
        assert "u***@example.com" in str(parent)
        task = await bot.prime.wait_for(lambda: next(iter(bot.prime.tasks.values()), None))
        assert task.email == "unreachable@example.com"


async def _lines(log: Path, text: str, *, at_least: int) -> list[str]:
    """Lines of the other process's log that contain ``text``, once there are enough (short polls: no signal)."""
    async with asyncio.timeout(20):
        while len(found := [line for line in log.read_text().splitlines() if text in line]) < at_least:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return found


async def test_socket_mode_with_slack_unreachable_serves_reports_reconnects_and_stops_with_0(tmp_path: Path) -> None:
    """Socket Mode, Slack down: HTTP up at once, one line per attempt with its wait, /readyz says so, SIGTERM → 0."""
    async with FakeSlackWithSockets() as slack, FakePrime() as prime:
        await slack.stop()
        port = free_port()
        env = Fakes(slack, prime).env(
            tmp_path,
            PORT=str(port),
            SLACK_APP_TOKEN=slack.app_token,
            ENCRYPTION_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        )
        env.pop("SLACK_SIGNING_SECRET")
        log = tmp_path / "bot.log"
        process = await start_bot(env, cwd=tmp_path, log=log)  # healthy while Slack is still unreachable
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                ready = await http.get(f"http://127.0.0.1:{port}/readyz")
                assert ready.status_code == 503
                assert ready.json()["slack_socket_mode"]["connected"] is False
                attempts = await _lines(log, "Socket Mode: cannot connect", at_least=2)
                assert all("next attempt in" in line for line in attempts)

                await slack.start()
                await slack.wait_for(lambda: slack.sockets, timeout=20)
                await _lines(log, "Socket Mode: connected", at_least=1)
                ready = await http.get(f"http://127.0.0.1:{port}/readyz")
                assert ready.status_code == 200 and ready.json()["slack_socket_mode"]["connected"] is True
                assert "slack_socket_mode_connected 1.0" in (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        finally:
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                await process.wait()
        said = log.read_text()
        assert process.returncode == 0, said[-3000:]
        assert "Traceback" not in said, said[-3000:]
