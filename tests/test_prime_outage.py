"""A credentials outage is an outage, not a refusal: the request waits, the thread and the operator are told."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fakes import text_of
from harness import Harness, SettableClock, eventually, running_bot

START = "startPersonalDataRetrievalTask"
HOURS = 3600.0


async def started_task(bot: Harness) -> str:
    task = await bot.prime.wait_for(lambda: next(iter(bot.prime.tasks.values()), None))
    await bot.slack.wait_for(lambda: [u for u in bot.slack.updates() if task.task_id in text_of(u)])
    return task.task_id


async def test_rotated_credentials_wait_tell_the_thread_alert_once_and_start_when_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The token endpoint's 401 during a rotation: no rejection; "waiting" in the thread, one log line,
    /readyz 503 naming it; once the credentials work, the same clientToken starts one task."""
    caplog.set_level(logging.INFO)
    async with running_bot(tmp_path, reconcile_interval=0.02) as bot:
        real_secret = bot.prime.client_secret
        bot.prime.client_secret = "rotated-at-amazon"
        await bot.slash("rotation@example.com")
        parent = await bot.slack.wait_for(lambda: bot.parents()[0])
        waiting = await bot.slack.wait_for(lambda: bot.replies(parent["ts"])[0])
        assert "Waiting for Buy with Prime" in text_of(waiting) and "alerted" in text_of(waiting)
        await bot.prime.wait_for(lambda: bot.prime.token_requests >= 4)
        ready = await bot.http.get(bot.url + "/readyz")
        assert ready.status_code == 503
        assert [(f["source"], f["code"]) for f in ready.json()["failing"]] == [("buy_with_prime", "CredentialsRefused")]
        bot.prime.client_secret = real_secret
        task_id = await started_task(bot)
        started = await bot.slack.wait_for(lambda: bot.replies(parent["ts"])[1])
        assert task_id in text_of(started)
        assert len(bot.prime.starts()) == 1 and len(bot.replies(parent["ts"])) == 2
        assert "refused" not in bot.slack.public_text().lower()
        assert (await bot.http.get(bot.url + "/readyz")).status_code == 200
    assert caplog.text.count("buy_with_prime refuses the bot") == 1
    assert caplog.text.count("buy_with_prime accepts the bot's calls again") == 1


@pytest.mark.parametrize(
    ("where", "mode"),
    [("token", "401"), ("token", "html"), (START, "html"), (START, "403"), (START, "404")],
)
async def test_a_gateway_or_access_outage_at_start_is_waited_out_not_posted_as_a_refusal(
    tmp_path: Path, where: str, mode: str
) -> None:
    """401 at the token endpoint, a gateway's HTML page, 403/404 at start: the request waits and starts later."""
    async with running_bot(tmp_path, reconcile_interval=0.02) as bot:
        bot.prime.fail_next[where] = [mode] * 3
        await bot.slash("gateway@example.com")
        parent = await bot.slack.wait_for(lambda: bot.parents()[0])
        task_id = await started_task(bot)
        said = "\n".join(text_of(r) for r in bot.replies(parent["ts"]))
        assert "Waiting for Buy with Prime" in said and "refused to start" not in said
        assert list(bot.prime.tasks) == [task_id]
        actions = [e.action for e in await bot.runtime.store.audit.entries()]
        assert actions.count("waiting for Buy with Prime") == 1 and "start rejected" not in actions


async def test_amazons_verdict_on_the_email_is_still_final(bot: Harness) -> None:
    """A ValidationError for this request's email is Amazon's verdict: posted as a refusal, not retried."""
    bot.prime.fail_next[START] = ["validation"]
    await bot.slash("verdict@example.com")
    parent = await bot.slack.wait_for(lambda: bot.parents()[0])
    reply = await bot.slack.wait_for(lambda: bot.replies(parent["ts"])[0])
    assert "refused to start" in text_of(reply)
    assert len(bot.prime.starts()) == 1


async def test_past_the_clienttoken_window_the_thread_is_told_and_no_second_task_starts(tmp_path: Path) -> None:
    """A start that may have reached Amazon (5xx) and is still unconfirmed 8 hours later is not retried:
    the thread says so, and the request stops instead of silently starting a second task."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock) as bot:
        # Every attempt fails, the first call's and those of any retry within the window: the reconciler's own
        # first pass (every unfinished request, at start) may come after the command on a busy machine.
        bot.prime.fail_next[START] = ["503"] * 40
        await bot.slash("window@example.com")
        parent = await bot.slack.wait_for(lambda: bot.parents()[0])
        await bot.slack.wait_for(lambda: bot.replies(parent["ts"])[0])
        clock.advance(8 * HOURS)
        await bot.runtime.workers.reconciler.reconcile()
        told = await bot.slack.wait_for(
            lambda: next((reply for reply in bot.replies(parent["ts"]) if "8 hours" in text_of(reply)), None)
        )
        assert "--new" in text_of(told)
        tried = len(bot.prime.starts())
        await bot.runtime.workers.reconciler.reconcile(resume=True)
        assert len(bot.prime.starts()) == tried and not bot.prime.tasks
        (request,) = await bot.runtime.store.requests.for_email("window@example.com")
        assert request.status.value == "ABANDONED"


async def test_a_credentials_outage_longer_than_the_window_still_starts_the_request(tmp_path: Path) -> None:
    """Refused at the token endpoint, the start never reached Amazon: after 9 hours it still starts, once."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock) as bot:
        real_secret = bot.prime.client_secret
        bot.prime.client_secret = "rotated-at-amazon"
        await bot.slash("long.outage@example.com")
        parent = await bot.slack.wait_for(lambda: bot.parents()[0])
        await bot.slack.wait_for(lambda: bot.replies(parent["ts"])[0])
        clock.advance(9 * HOURS)
        bot.prime.client_secret = real_secret
        await bot.runtime.workers.reconciler.reconcile()
        await started_task(bot)
        assert len(bot.prime.starts()) == 1


async def test_readyz_is_ok_when_nothing_needs_the_operator(bot: Harness) -> None:
    """No outage: /readyz answers 200 with an empty list of what is failing."""
    await bot.request("fine@example.com")
    ready = await bot.http.get(bot.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["failing"] == []


async def test_the_outage_board_is_readable_in_process_and_in_metrics(bot: Harness) -> None:
    """Runtime.outages counts episodes by (source, code), and /metrics exports the one in progress."""
    bot.prime.client_secret = "rotated-at-amazon"
    await bot.slash("board@example.com")
    await bot.prime.wait_for(lambda: bot.prime.token_requests >= 1)

    async def recorded() -> bool:
        return bool(bot.runtime.outages.active())

    await eventually(recorded)
    assert bot.runtime.outages.episodes_total[("buy_with_prime", "CredentialsRefused")] == 1
    text = (await bot.http.get(bot.url + "/metrics")).text
    assert 'data_request_bot_outage_active{code="credentialsrefused",source="buy_with_prime"} 1.0' in text
    assert 'data_request_bot_outage_episodes_total{code="credentialsrefused",source="buy_with_prime"} 1.0' in text
