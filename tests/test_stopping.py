"""Stopping while Slack calls are in flight: each post is made once, none is left behind, none is waited out."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import time
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
from fakes import FakePrime, FakeSlack, buttons, slack_headers, slash_body, text_of
from fakes.socket_mode import FakeSlackWithSockets
from harness import CHANNEL, Harness, envelope
from processes import Fakes, free_port, start_bot

SECRET = "stopping-test-signing-secret"


def _env(fakes: Fakes, workdir: Path) -> dict[str, str]:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    return fakes.env(workdir, PORT=str(free_port()), SLACK_SIGNING_SECRET=SECRET, ENCRYPTION_KEY=key, LOG_LEVEL="INFO")


async def _command(http: httpx.AsyncClient, url: str, slack: FakeSlack, email: str) -> int:
    body = slash_body(email, user="U0ALICE", channel=CHANNEL, response_url=slack.response_url("U0ALICE"))
    return (await http.post(url, content=body, headers=slack_headers(body, SECRET))).status_code


async def test_sigterm_while_thread_openings_are_in_flight_leaves_one_updated_opening_per_request(
    fakes: Fakes, tmp_path: Path
) -> None:
    """A burst is acknowledged; SIGTERM arrives while Slack has made the first posts but not yet answered them
    (and never answers this process). After a restart every request has exactly one opening message, updated
    to its started task: the ones whose answer was lost are found again, not posted twice."""
    slack, prime = fakes.slack, fakes.prime
    env = _env(fakes, tmp_path)
    log = tmp_path / "bot.log"
    url = f"http://127.0.0.1:{env['PORT']}/slack/events"
    answers = asyncio.Event()
    slack.hold_answers["chat.postMessage"] = answers
    emails = [f"burst{i}@example.com" for i in range(24)]
    process = await start_bot(env, cwd=tmp_path, log=log)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            acknowledged = await asyncio.gather(*(_command(http, url, slack, email) for email in emails))
        assert acknowledged == [200] * len(emails)
        await slack.wait_for(lambda: len(slack.answers_held) >= 2, timeout=20)
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == 0, log.read_text()[-3000:]
        answers.set()
        process = await start_bot(env, cwd=tmp_path, log=log)

        def every_task_in_an_opening() -> bool:
            openings = [text_of(m.blocks) for m in slack.messages.values() if m.channel == CHANNEL and not m.thread_ts]
            return len(prime.tasks) == len(emails) and all(any(t in o for o in openings) for t in prime.tasks)

        await slack.wait_for(every_task_in_an_opening, timeout=30)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await process.wait()
    assert process.returncode == 0, log.read_text()[-3000:]
    openings = [text_of(m.blocks) for m in slack.messages.values() if m.channel == CHANNEL and not m.thread_ts]
    shown = sorted(task for opening in openings for task in prime.tasks if task in opening)
    assert len(openings) == len(emails), f"{len(openings)} opening messages for {len(emails)} requests"
    assert shown == sorted(prime.tasks)  # each opening names one task, and each task is in one opening
    assert sorted(t.email for t in prime.tasks.values()) == sorted(emails)


async def test_a_stop_waits_for_a_post_slack_made_but_had_not_answered_and_records_it(bot: Harness) -> None:
    """The outbox worker is cancelled while Slack holds the answer to a thread reply it has already posted:
    the call is not cut off but answered and recorded, so nothing is posted again after the restart, even
    where the bot cannot read the thread back (no history scope)."""
    task_id, parent = await bot.request("in.flight@example.com")
    bot.slack.fail["conversations.replies"] = ["missing_scope"] * 10
    answers = asyncio.Event()
    bot.slack.hold_answers["chat.postMessage"] = answers
    bot.prime.complete(task_id)
    await bot.relay(envelope("PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED", task_id))
    await bot.slack.wait_for(lambda: bot.slack.answers_held)
    stopping = asyncio.create_task(bot.runtime.stop())
    await asyncio.gather(*bot.runtime.workers.tasks, return_exceptions=True)  # the outbox worker is cancelled
    answers.set()
    await stopping
    await bot.restart()
    await bot.runtime.workers.outbox.send_due()
    assert (await bot.runtime.store.backlog())["outbox_pending"] == 0
    assert len([p for p in bot.replies(parent["ts"]) if buttons(p)]) == 1


async def test_sigterm_in_socket_mode_with_slacks_web_api_failing_exits_0_retrying_nothing(tmp_path: Path) -> None:
    """Commands came over the socket while Slack's Web API answers 503: SIGTERM stops the bot with exit 0,
    and from then on no post is tried twice (no retry, no backoff waited out; the outbox keeps them)."""
    async with FakeSlackWithSockets() as slack, FakePrime() as prime:
        env = _env(Fakes(slack, prime), tmp_path)
        del env["SLACK_SIGNING_SECRET"]
        env["SLACK_APP_TOKEN"] = slack.app_token
        log = tmp_path / "bot.log"
        process = await start_bot(env, cwd=tmp_path, log=log)
        try:
            await slack.wait_for(lambda: slack.sockets, timeout=20)
            slack.down = True
            for i in range(4):
                body = slash_body(
                    f"down{i}@example.com", user="U0ALICE", channel=CHANNEL, response_url=slack.response_url("U0ALICE")
                )
                acked = await slack.push("slash_commands", dict(parse_qsl(body)))
                await slack.wait_for(lambda: slack.acks.get(acked))  # noqa: B023 (awaited in this iteration)
            await slack.wait_for(lambda: len([c for c in slack.calls if c.status == 503]) >= 2, timeout=20)
            before = len(slack.calls)
            began = time.monotonic()
            process.send_signal(signal.SIGTERM)
            returncode = await process.wait()
            print(f"stopped {time.monotonic() - began:.2f} s after SIGTERM")  # the figure for docs/how-it-works.md
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert returncode == 0, log.read_text()[-3000:]
        tried = [
            c.args["metadata"]["event_payload"]["outbox_id"]
            for c in slack.calls[before:]
            if c.method == "chat.postMessage"
        ]
        assert len(tried) == len(set(tried)), f"posts tried again while stopping: {tried}"
