"""kill -9 at the worst moment, on a real process: nothing that was acknowledged is lost."""

from __future__ import annotations

import base64
import os
import signal
from pathlib import Path

import httpx
from fakes import buttons, slack_headers, slash_body
from harness import envelope
from processes import Fakes, free_port, start_bot

CHANNEL = "C0COMPLY"
SECRET = "process-test-signing-secret"
RELAY_KEY = "process-test-relay-key-0123456789"


async def test_slack_down_then_kill_9_then_restart_posts_the_completion_once(fakes: Fakes, tmp_path: Path) -> None:
    """The event is stored while Slack is down, the process is SIGKILLed, and the restarted one posts once."""
    port = free_port()
    env = fakes.env(
        tmp_path,
        PORT=str(port),
        RELAY_API_KEY=RELAY_KEY,
        SLACK_SIGNING_SECRET=SECRET,
        ENCRYPTION_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        LOG_LEVEL="INFO",
    )
    log = tmp_path / "bot.log"
    slack, prime = fakes.slack, fakes.prime
    url = f"http://127.0.0.1:{port}"
    process = await start_bot(env, cwd=tmp_path, log=log)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            body = slash_body(
                "killed@example.com", user="U0ALICE", channel=CHANNEL, response_url=slack.response_url("U0ALICE")
            )
            assert (
                await http.post(url + "/slack/events", content=body, headers=slack_headers(body, SECRET))
            ).is_success
            task = await prime.wait_for(lambda: next(iter(prime.tasks.values()), None), timeout=10)
            parent = await slack.wait_for(lambda: slack.posts(CHANNEL)[0], timeout=10)
            await slack.wait_for(lambda: [u for u in slack.updates() if task.task_id in str(u)], timeout=10)
            prime.complete(task.task_id)
            slack.down = True
            relayed = await http.post(
                url + "/buy-with-prime/events",
                json=envelope("PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED", task.task_id),
                headers={"x-api-key": RELAY_KEY},
            )
            assert relayed.status_code == 200
            await slack.wait_for(lambda: [c for c in slack.calls if c.status == 503], timeout=10)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        slack.down = False
        process = await start_bot(env, cwd=tmp_path, log=log)
        reply = await slack.wait_for(
            lambda: [p for p in slack.posts(CHANNEL) if p.get("thread_ts") == parent["ts"] and buttons(p)], timeout=20
        )
        assert len(reply) == 1
        assert len(prime.tasks) == 1
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await process.wait()
    assert process.returncode == 0, log.read_text()[-2000:]
