"""Nothing lost, nothing twice: faults injected over real HTTP, end states asserted."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from fakes import buttons, text_of
from harness import Harness, ack_text, envelope, eventually, running_bot

COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"
FAILED = "PERSONAL_DATA_RETRIEVAL_TASK_FAILED"


def download_replies(bot: Harness, parent: dict[str, object]) -> list[dict[str, object]]:
    return [p for p in bot.replies(str(parent["ts"])) if buttons(p)]


async def test_amazon_503_then_throttling_on_start_makes_one_task_with_one_client_token(bot: Harness) -> None:
    """Retries of a failed start reuse the stored clientToken, so Amazon holds one task."""
    bot.prime.fail_next["startPersonalDataRetrievalTask"] = ["503", "throttle", "task-then-500"]
    task_id, _ = await bot.request("retry@example.com")
    tokens = {s["variables"]["input"]["clientToken"]["token"] for s in bot.prime.starts()}
    assert len(bot.prime.starts()) == 4
    assert len(tokens) == 1
    assert list(bot.prime.tasks) == [task_id]


async def test_event_before_the_start_returns_is_applied_once_the_task_id_is_known(bot: Harness) -> None:
    """The task finishes, and its event arrives, while Amazon's answer to the start is still on its way."""
    gate = asyncio.Event()
    bot.prime.start_gate = gate
    await bot.slash("fast@example.com")
    task = await bot.prime.wait_for(lambda: next(iter(bot.prime.tasks.values()), None))
    bot.prime.complete(task.task_id)
    assert (await bot.relay(envelope(COMPLETED, task.task_id))).status_code == 200
    parent = bot.parents()[0]
    assert not download_replies(bot, parent)  # nothing can be applied yet: the bot has no task id
    gate.set()
    await bot.download_reply(parent)
    assert len(download_replies(bot, parent)) == 1


async def test_slack_429_and_5xx_on_the_thread_reply_still_post_it_once(bot: Harness) -> None:
    """The outbox honours Retry-After, backs off on 5xx, and marks the reply sent once."""
    task_id, parent = await bot.request("slow.slack@example.com")
    bot.slack.retry_after = "0"
    bot.slack.fail["chat.postMessage"] = [429, 500, 503, 502, 500]
    bot.prime.complete(task_id)
    await bot.relay(envelope(COMPLETED, task_id))
    await bot.download_reply(parent)
    statuses = [c.status for c in bot.slack.calls_to("chat.postMessage")]
    assert statuses[-6:] == [429, 500, 503, 502, 500, 200]
    assert len(download_replies(bot, parent)) == 1


async def test_a_message_slack_finds_wrong_is_given_up_with_an_audit_entry(bot: Harness) -> None:
    """A reply Slack refuses as too long cannot be fixed by retrying: the bot stops and says so in the audit log."""
    task_id, parent = await bot.request("archived@example.com")
    bot.slack.fail["chat.postMessage"] = ["msg_too_long"]
    bot.prime.complete(task_id)
    await bot.relay(envelope(COMPLETED, task_id))
    store = bot.runtime.store

    async def abandoned() -> bool:
        entries = await store.audit.entries()
        return (
            any(e.action == "slack post abandoned" for e in entries) and not (await store.backlog())["outbox_pending"]
        )

    await eventually(abandoned)
    assert not download_replies(bot, parent)


async def test_slack_down_while_the_event_arrives_then_a_kill_and_restart_loses_nothing(bot: Harness) -> None:
    """The event is stored and the reply queued; a crash and a restart later, the reply is posted once."""
    task_id, parent = await bot.request("outage@example.com")
    bot.prime.complete(task_id)
    bot.slack.down = True
    assert (await bot.relay(envelope(COMPLETED, task_id))).status_code == 200
    await bot.slack.wait_for(lambda: [c for c in bot.slack.calls if c.status == 503 and c.method == "chat.update"])
    await bot.crash()
    bot.slack.down = False
    await bot.restart()
    await bot.download_reply(parent)
    assert len(download_replies(bot, parent)) == 1
    assert '"status": "COMPLETED"' not in json.dumps(bot.slack.public_text())


async def test_a_crash_after_slack_posted_but_before_it_was_recorded_does_not_post_twice(bot: Harness) -> None:
    """The resend first reads the thread back and finds its own reply by the outbox id in its metadata."""
    task_id, parent = await bot.request("twice@example.com")
    bot.prime.complete(task_id)
    await bot.relay(envelope(COMPLETED, task_id))
    await bot.download_reply(parent)
    await bot.crash()
    # As after a kill -9 between Slack's answer and the commit: attempted, but not recorded as sent.
    with sqlite3.connect(bot.settings.database_path) as db:
        db.execute("UPDATE outbox SET sent_at = NULL WHERE method = 'reply'")
    await bot.restart()
    await bot.slack.wait_for(lambda: bot.slack.calls_to("conversations.replies"))
    await bot.runtime.workers.outbox.send_due()  # or the outbox's own loop, which may hold the entry in flight

    async def sent() -> bool:
        return not (await bot.runtime.store.backlog())["outbox_pending"]

    await eventually(sent)
    assert len(download_replies(bot, parent)) == 1


async def test_a_crash_while_slack_answers_a_threads_first_message_does_not_post_it_twice(bot: Harness) -> None:
    """Slack made the first message, the bot died before the answer came: the restart reads the channel back,
    finds the message by the metadata it carries, and the request goes on in that one thread."""
    answers = asyncio.Event()
    bot.slack.hold_answers["chat.postMessage"] = answers
    await bot.slash("lost.answer@example.com")
    await bot.slack.wait_for(lambda: bot.slack.answers_held)
    await bot.crash()
    answers.set()
    await bot.restart()
    task_id = await bot.prime.wait_for(lambda: next(iter(bot.prime.tasks), None))
    await bot.slack.wait_for(lambda: [u for u in bot.slack.updates() if task_id in json.dumps(u)])
    assert len(bot.parents()) == 1 and len(bot.prime.tasks) == 1
    assert bot.slack.calls_to("conversations.history")


async def test_an_event_that_never_arrives_still_ends_the_thread(tmp_path: Path) -> None:
    """The reconciler polls unfinished tasks, so a lost event (or no relay at all) still completes the thread."""
    async with running_bot(tmp_path, reconcile_interval=0.05, relay_api_key=None) as bot:
        task_id, parent = await bot.request("lost.event@example.com")
        bot.prime.complete(task_id)
        await bot.download_reply(parent)
        assert len(download_replies(bot, parent)) == 1


async def test_a_start_that_never_returned_is_resumed_after_a_restart_with_the_same_token(bot: Harness) -> None:
    """Killed while Amazon held the start's answer: the restart retries with the stored clientToken, one task."""
    gate = asyncio.Event()
    bot.prime.start_gate = gate
    await bot.slash("restart@example.com")
    await bot.prime.wait_for(lambda: bot.prime.holding)
    await bot.crash()
    bot.prime.start_gate = None
    gate.set()
    await bot.restart()
    parent = bot.parents()[0]
    task_id = next(iter(bot.prime.tasks))
    await bot.slack.wait_for(lambda: [u for u in bot.slack.updates() if task_id in json.dumps(u)])
    assert len(bot.prime.tasks) == 1
    assert len({s["variables"]["input"]["clientToken"]["token"] for s in bot.prime.starts()}) == 1
    assert len(bot.parents()) == 1 and bot.parents()[0]["ts"] == parent["ts"]


async def test_the_same_event_ten_times_posts_once(bot: Harness) -> None:
    """EventBridge may deliver an event many times; the inbox keeps one, the thread gets one reply."""
    task_id, parent = await bot.request("ten@example.com")
    bot.prime.complete(task_id)
    event = envelope(COMPLETED, task_id)
    answers = await asyncio.gather(*(bot.relay(event) for _ in range(10)))
    assert sorted(r.json()["status"] for r in answers) == ["duplicate"] * 9 + ["stored"]
    await bot.download_reply(parent)
    assert len(download_replies(bot, parent)) == 1


async def test_events_out_of_order_and_a_late_duplicate_change_nothing_more(bot: Harness) -> None:
    """FAILED for one task then COMPLETED for another each land in their own thread; a late event adds nothing."""
    task_a, parent_a = await bot.request("a@example.com")
    task_b, parent_b = await bot.request("b@example.com")
    bot.prime.fail(task_b)
    bot.prime.complete(task_a)
    await bot.relay(envelope(FAILED, task_b))
    await bot.relay(envelope(COMPLETED, task_a))
    failure = await bot.slack.wait_for(lambda: bot.replies(parent_b["ts"])[0])
    await bot.download_reply(parent_a)
    await bot.relay(envelope(COMPLETED, task_a))  # a new id: a late re-delivery
    await bot.relay(envelope(FAILED, task_b))
    await bot.runtime.workers.inbox.process_pending()
    assert "DATA_SUBJECT_NOT_FOUND" in text_of(failure)
    assert len(bot.replies(parent_a["ts"])) == 1 and len(bot.replies(parent_b["ts"])) == 1


async def test_thirty_commands_at_once_make_thirty_tasks_and_threads(bot: Harness) -> None:
    """A burst of commands is acknowledged and each one gets exactly one task and one thread."""
    emails = [f"shopper{i}@example.com" for i in range(30)]
    answers = await asyncio.gather(*(bot.slash(email) for email in emails))
    assert all(r.status_code == 200 for r in answers)
    await bot.prime.wait_for(lambda: len(bot.prime.tasks) == 30, timeout=20)
    await bot.slack.wait_for(lambda: len(bot.parents()) == 30, timeout=20)
    assert sorted(t.email for t in bot.prime.tasks.values()) == sorted(emails)
    assert len(bot.prime.starts()) == 30


async def test_same_shopper_again_points_to_the_open_thread_unless_new_is_asked(bot: Harness) -> None:
    """A second request for an open shopper starts nothing; --new starts one and the audit log says so."""
    await bot.request("again@example.com")
    await bot.slash("AGAIN@example.com", user="U0BOB")
    pointer = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0BOB")[0])
    assert "--new" in text_of(pointer) and "a***@example.com" in text_of(pointer)
    assert len(bot.prime.tasks) == 1
    await bot.request("again@example.com --new", user="U0BOB", email="again@example.com")
    assert len(bot.prime.tasks) == 2
    entries = await bot.runtime.store.audit.entries()
    assert [e.action for e in entries if e.actor == "U0BOB"] == ["refused", "requested"]
    assert "--new" in entries[-1].detail or any("--new" in e.detail for e in entries)


async def test_unknown_option_is_refused(bot: Harness) -> None:
    """A mistyped option is answered in the acknowledgement and starts nothing."""
    response = await bot.slash("x@example.com --force")
    assert "--force" in ack_text(response)
    assert not bot.prime.starts()


async def test_readiness_reports_the_backlog(bot: Harness) -> None:
    """/readyz shows what waits and for how long, so an operator can alarm on it."""
    await bot.request("ready@example.com")
    ready = (await bot.http.get(bot.url + "/readyz")).json()
    assert ready["ok"] is True
    assert ready["requests_unfinished"] == 1
    assert ready["requests_oldest_unfinished_age_seconds"] >= 0
    assert {"inbox_pending", "outbox_pending", "outbox_abandoned"} <= set(ready)
