"""The core flow end to end, as Slack and Amazon drive it over HTTP."""

from __future__ import annotations

import json

from fakes import buttons, text_of
from harness import CHANNEL, Harness, ack_text, envelope, webhook

ON_BOTH_BACKENDS = True  # each ``bot`` test runs on SQLite and on PostgreSQL (tests/conftest.py)

COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"
FAILED = "PERSONAL_DATA_RETRIEVAL_TASK_FAILED"


async def test_request_opens_a_thread_with_masked_email_requester_and_task(bot: Harness) -> None:
    """A command starts one task and a channel message that masks the email and names requester and task."""
    task_id, parent = await bot.request("jane.shopper@example.com")
    shown = bot.slack.public_text()
    assert "jane.shopper@example.com" not in shown
    assert "j***@example.com" in text_of(parent)
    assert "<@U0ALICE>" in text_of(parent)
    assert task_id in json.dumps(bot.slack.updates())
    start = bot.prime.starts()[0]
    assert start["variables"]["input"]["dataSubject"]["email"] == "jane.shopper@example.com"
    assert "jane.shopper" not in start["query"]
    assert 36 <= len(start["variables"]["input"]["clientToken"]["token"]) <= 64


async def test_mailto_form_is_accepted(bot: Harness) -> None:
    """Slack's escaped <mailto:…|…> form starts the same request as the plain address."""
    await bot.request("<mailto:Mo@Example.org|Mo@Example.org>", email="Mo@Example.org")
    assert bot.prime.starts()[0]["variables"]["input"]["dataSubject"]["email"] == "Mo@Example.org"


async def test_completion_event_posts_download_once_and_click_shows_fresh_link(bot: Harness) -> None:
    """Completion replies in the thread with Download; the click gets a link issued after it, to the clicker only."""
    task_id, parent = await bot.request("jane@example.com")
    bot.prime.complete(task_id)
    event = envelope(COMPLETED, task_id)
    assert (await bot.relay(event)).status_code == 200
    reply = await bot.download_reply(parent)
    assert (await bot.relay(event)).json()["status"] == "duplicate"

    links_before = len(bot.prime.links)
    response = await bot.click(reply, user="U0BOB")
    assert response.status_code == 200
    shown = await bot.slack.wait_for(lambda: [m for m in bot.slack.ephemerals_to("U0BOB") if "X-Amz" in text_of(m)])
    fresh = [link for _, link in bot.prime.links[links_before:]]
    assert fresh and fresh[-1] in text_of(shown[0])
    assert "X-Amz" not in bot.slack.public_text()
    assert len([p for p in bot.replies(parent["ts"]) if buttons(p)]) == 1
    actions = [e.action for e in await bot.runtime.store.audit.entries()]
    assert actions == ["requested", "task started", "completed", "event received", "link shown"]


async def test_webhook_body_and_envelope_with_webhook_detail_are_both_understood(bot: Harness) -> None:
    """Both delivery paths reach the same thread reply."""
    task_a, parent_a = await bot.request("a@example.com")
    task_b, parent_b = await bot.request("b@example.com")
    bot.prime.complete(task_a)
    bot.prime.fail(task_b)
    assert (await bot.relay(webhook(COMPLETED, task_a))).status_code == 200
    wrapped = envelope(FAILED, task_b)
    wrapped["detail"], wrapped["resources"] = webhook(FAILED, task_b), []
    assert (await bot.relay(wrapped)).status_code == 200
    await bot.slack.wait_for(lambda: [p for p in bot.replies(parent_a["ts"]) if buttons(p)])
    failure = await bot.slack.wait_for(lambda: bot.replies(parent_b["ts"])[0])
    assert "DATA_SUBJECT_NOT_FOUND" in text_of(failure)
    assert "holds no shopper with this email" in text_of(failure)


async def test_failure_shows_each_code_explained_and_unknown_codes_as_is(bot: Harness) -> None:
    """ORDERS_NOT_CLOSED is explained in words; a code the bot does not know is shown unchanged."""
    task_id, parent = await bot.request("open.orders@example.com")
    bot.prime.fail(task_id, code="ORDERS_NOT_CLOSED", message="The shopper has open orders")
    bot.prime.tasks[task_id].errors.append({"code": "SOMETHING_NEW", "message": "A new reason"})
    await bot.relay(envelope(FAILED, task_id))
    failure = await bot.slack.wait_for(lambda: bot.replies(parent["ts"])[0])
    said = text_of(failure)
    assert "ORDERS_NOT_CLOSED" in said and "open Buy with Prime orders" in said
    assert "SOMETHING_NEW" in said and "A new reason" in said
    assert "Failed" in json.dumps(bot.slack.updates()[-1])


async def test_click_before_completion_explains_and_shows_no_link(bot: Harness) -> None:
    """A Download click on a task Amazon still runs gets an explanation, not a link."""
    task_id, parent = await bot.request("early@example.com")
    bot.prime.complete(task_id)
    await bot.relay(envelope(COMPLETED, task_id))
    reply = await bot.download_reply(parent)
    bot.prime.tasks[task_id].status = "IN_PROGRESS"  # Amazon's answer at click time is what counts
    await bot.click(reply)
    answer = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE")[0])
    assert "not ready" in text_of(answer)
    assert not any("X-Amz" in text_of(m) for m in bot.slack.ephemerals_to("U0ALICE"))


async def test_click_by_someone_not_allowed_is_refused_and_audited(bot: Harness) -> None:
    """Authorization happens at click time: no link, an ephemeral refusal, an audit entry."""
    task_id, parent = await bot.request("jane@example.com")
    bot.prime.complete(task_id)
    await bot.relay(envelope(COMPLETED, task_id))
    reply = await bot.download_reply(parent)
    queries_before = len(bot.prime.queries())
    await bot.click(reply, user="U0MALLORY")
    refusal = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0MALLORY")[0])
    assert "not allowed" in text_of(refusal)
    assert len(bot.prime.queries()) == queries_before  # Amazon was not even asked
    entries = await bot.runtime.store.audit.entries()
    assert any(e.actor == "U0MALLORY" and e.action == "refused" for e in entries)


async def test_unsigned_command_is_refused_with_401(bot: Harness) -> None:
    """Bolt verifies Slack's signature; a wrong one starts nothing."""
    response = await bot.slash("jane@example.com", sign=False)
    assert response.status_code == 401
    assert not bot.prime.starts()


async def test_malformed_email_is_answered_in_the_ack_and_starts_nothing(bot: Harness) -> None:
    """A typo is answered at once, to the typist alone, and nothing reaches Amazon."""
    response = await bot.slash("not-an-email")
    assert response.status_code == 200
    assert "not an email address" in ack_text(response)
    assert "in_channel" not in response.text
    assert not bot.prime.starts()


async def test_help_lists_commands_ephemerally(bot: Harness) -> None:
    """`help` answers with every command and an example (an empty command opens the form: test_intake.py)."""
    for text in ("help",):
        response = await bot.slash(text)
        said = ack_text(response)
        assert "status" in said and "/data-request jane@example.com" in said


async def test_requester_not_allowed_is_refused_and_nothing_starts(bot: Harness) -> None:
    """A user outside ALLOWED_USERS gets an ephemeral refusal; no thread, no task."""
    response = await bot.slash("jane@example.com", user="U0MALLORY")
    assert "not allowed" in ack_text(response)
    assert not bot.parents() and not bot.prime.starts()
    assert [e.action for e in await bot.runtime.store.audit.entries()] == ["refused"]


async def test_bot_not_in_channel_tells_requester_to_invite_it(bot: Harness) -> None:
    """No membership, no thread: the requester is told to invite the bot, and no task starts."""
    bot.slack.not_in.add(CHANNEL)
    await bot.slash("jane@example.com")
    answer = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE")[0])
    assert "/invite @data-request" in text_of(answer)
    assert not bot.prime.starts()


async def test_status_by_email_and_by_task_id(bot: Harness) -> None:
    """`status` finds a request by email or task id and answers the asker alone."""
    task_id, _ = await bot.request("jane@example.com")
    await bot.slash("status JANE@example.com")
    by_email = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE")[0])
    assert task_id in text_of(by_email) and "j***@example.com" in text_of(by_email)
    assert "answer due" in text_of(by_email) and "30 days, the default" in text_of(by_email)
    await bot.slash(f"status {task_id}", user="U0BOB")
    by_task = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0BOB")[0])
    assert "In progress" in text_of(by_task)
    await bot.slash("status nobody@example.com", user="U0BOB")
    unknown = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0BOB")[1])
    assert "no data request" in text_of(unknown)
