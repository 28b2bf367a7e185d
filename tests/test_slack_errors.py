"""Slack errors an operator fixes must not lose replies; a message Slack finds wrong is never lost silently."""

from __future__ import annotations

import logging

import pytest
from fakes import buttons, text_of
from harness import CHANNEL, Harness, envelope, eventually

from handlers.slack_errors import SlackFault, classify

COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"


def test_one_table_sorts_every_code_into_retry_operator_or_message() -> None:
    """The codes the issue names land in their kind; an unknown code is kept for the operator, not dropped."""
    for code in ("ratelimited", "HTTP 429", "HTTP 503", "internal_error", "TimeoutError"[:0] or "request_timeout"):
        assert classify(code) is SlackFault.RETRY, code
    operator = "invalid_auth not_authed token_revoked token_expired account_inactive missing_scope not_in_channel"
    for code in (*operator.split(), "channel_not_found", "is_archived", "a_code_slack_adds_next_year"):
        assert classify(code) is SlackFault.OPERATOR, code
    for code in ("invalid_blocks", "msg_too_long", "no_text", "invalid_metadata_format"):
        assert classify(code) is SlackFault.MESSAGE, code


async def test_invalid_auth_while_posting_the_completion_is_retried_until_fixed_with_one_log_line(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """The token stops working as the completion is posted: the reply is kept and retried (capped backoff),
    logged once, shown in /readyz and /metrics; once the token works again the thread gets it, once."""
    caplog.set_level(logging.INFO)
    task_id, parent = await bot.request("token.rotation@example.com")
    real_token = bot.slack.token
    bot.slack.token = "xoxb-the-new-one"  # Slack now refuses the bot's token: invalid_auth
    bot.prime.complete(task_id)
    await bot.relay(envelope(COMPLETED, task_id))
    await bot.slack.wait_for(
        lambda: len([c for c in bot.slack.calls if c.response.get("error") == "invalid_auth"]) >= 4
    )
    ready = await bot.http.get(bot.url + "/readyz")
    assert ready.status_code == 503
    assert ("slack", "invalid_auth") in [(f["source"], f["code"]) for f in ready.json()["failing"]]
    metrics = (await bot.http.get(bot.url + "/metrics")).text
    assert 'data_request_bot_outage_active{code="invalid_auth",source="slack"} 1.0' in metrics
    bot.slack.token = real_token
    reply = await bot.download_reply(parent)
    assert len([p for p in bot.replies(parent["ts"]) if buttons(p)]) == 1 and reply
    assert "slack post abandoned" not in [e.action for e in await bot.runtime.store.audit.entries()]
    assert caplog.text.count("slack refuses the bot (invalid_auth)") == 1

    async def recovered() -> bool:
        return (await bot.http.get(bot.url + "/readyz")).status_code == 200

    await eventually(recovered)


async def test_not_in_channel_keeps_the_request_and_its_thread_opens_once_the_bot_is_invited(bot: Harness) -> None:
    """No membership: the requester is told to invite the bot, nothing starts, /readyz names not_in_channel;
    after /invite the outbox posts the thread's first message and the request starts at Amazon."""
    bot.slack.not_in.add(CHANNEL)
    await bot.slash("invite.me@example.com")
    told = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE")[0])
    assert "/invite @data-request" in text_of(told) and "saved" in text_of(told)
    ready = (await bot.http.get(bot.url + "/readyz")).json()
    assert ("slack", "not_in_channel") in [(f["source"], f["code"]) for f in ready["failing"]]
    assert ready["outbox_pending"] == 1 and not bot.prime.starts()
    bot.slack.not_in.clear()
    parent = await bot.slack.wait_for(lambda: bot.parents()[0])
    task = await bot.prime.wait_for(lambda: next(iter(bot.prime.tasks.values()), None))
    await bot.slack.wait_for(lambda: [u for u in bot.slack.updates() if task.task_id in text_of(u)])
    assert len(bot.parents()) == 1 and parent


async def test_a_reply_slack_refuses_as_wrong_is_audited_the_requester_told_and_status_offers_download(
    bot: Harness,
) -> None:
    """msg_too_long for the completion: given up (audited), the requester gets a direct message, and
    `status` shows a Download button that gives the link: nothing depends on the thread post."""
    task_id, parent = await bot.request("too.long@example.com")
    bot.slack.fail["chat.postMessage"] = ["msg_too_long"]
    bot.prime.complete(task_id)
    await bot.relay(envelope(COMPLETED, task_id))
    dm = await bot.slack.wait_for(lambda: bot.slack.posts("U0ALICE")[0])
    assert "msg_too_long" in text_of(dm) and "status" in text_of(dm) and task_id in text_of(dm)
    assert "slack post abandoned" in [e.action for e in await bot.runtime.store.audit.entries()]
    assert not [p for p in bot.replies(parent["ts"]) if buttons(p)]
    await bot.slash(f"status {task_id}")
    status = await bot.slack.wait_for(lambda: [e for e in bot.slack.ephemerals_to("U0ALICE") if buttons(e)][0])  # noqa: RUF015
    assert [b["action_id"] for b in buttons(status)] == ["download_data"]
    await bot.click({**status, "ts": parent["ts"]})
    link = await bot.slack.wait_for(
        lambda: [e for e in bot.slack.ephemerals_to("U0ALICE") if "X-Amz-Signature" in text_of(e)]
    )
    assert link and "X-Amz-Signature" not in bot.slack.public_text()


async def test_the_first_message_goes_through_the_outbox_counted_and_retried_with_backoff(bot: Harness) -> None:
    """Slack fails the thread's first message (5xx past slack_sdk's own retries): it waits in the outbox
    (counted in /readyz) and the outbox's own backoff posts it, then the request starts."""
    bot.slack.fail["chat.postMessage"] = [503] * 1000
    assert (await bot.slash("slack.down@example.com")).status_code == 200
    await bot.slack.wait_for(lambda: len([c for c in bot.slack.calls if c.status == 503]) >= 6)  # two attempts
    ready = (await bot.http.get(bot.url + "/readyz")).json()
    assert ready["outbox_pending"] == 1 and not bot.parents() and not bot.prime.starts()
    bot.slack.fail.clear()
    await bot.slack.wait_for(lambda: bot.parents()[0])
    task = await bot.prime.wait_for(lambda: next(iter(bot.prime.tasks.values()), None))
    await bot.slack.wait_for(lambda: [u for u in bot.slack.updates() if task.task_id in text_of(u)])
    assert len(bot.parents()) == 1
