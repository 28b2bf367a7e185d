"""One odd answer must not stall the others: answers of the wrong shape are read into errors, per item."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fakes import FakePrime, buttons, text_of
from harness import Harness, envelope, eventually, running_bot
from test_prime_client import make_rig

from bot.tuning import Tuning
from core import PrimeUnavailable
from prime import RETRIEVAL, UNEXPECTED

START = "startPersonalDataRetrievalTask"
QUERY = "personalDataRetrievalTask"
COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"
STRING_EXTENSIONS = {"data": None, "errors": [{"message": "boom", "extensions": "InternalFailure"}]}


def slow_retries() -> Tuning:
    """The fast profile, except that a failing item waits 10 s before its next try (a pace the test can see)."""
    return replace(Tuning.fast(), inbox_base_backoff=10.0, inbox_max_backoff=60.0, retry_soon=10.0, retry_cap=60.0)


@pytest.mark.parametrize(
    ("where", "answer"),
    [
        (QUERY, STRING_EXTENSIONS),
        (QUERY, {"data": None, "errors": [{"message": "boom", "extensions": {"classification": "Throttling"}}]}),
        (QUERY, {"data": None, "errors": "Internal failure"}),
        (QUERY, {"data": {QUERY: "COMPLETED"}}),
        (QUERY, {"data": {QUERY: {"taskId": "t", "status": "FAILED", "errors": [{"code": 404, "message": "x"}]}}}),
        (QUERY, {"data": {QUERY: {"taskId": "t", "status": "FAILED", "errors": "DATA_SUBJECT_NOT_FOUND"}}}),
        (QUERY, {"data": {QUERY: {"taskId": "t", "status": 3}}}),
        (QUERY, {"data": []}),
        (START, {"data": {START: "a-task-id"}}),
        (START, {"data": {START: ["a-task-id"]}}),
        (START, {"data": {START: {"taskId": 12}}}),
    ],
)
async def test_answers_of_the_wrong_shape_are_prime_unavailable_never_a_stray_error(
    where: str, answer: dict[str, Any]
) -> None:
    """Each odd shape becomes PrimeUnavailable("unexpected answer"), never AttributeError or TypeError."""
    async with FakePrime() as prime, make_rig(prime, attempts=1) as rig:
        prime.fail_next[where] = [answer]
        with pytest.raises(PrimeUnavailable, match="unexpected answer") as caught:
            if where == START:
                await rig.start()
            else:
                await rig.client.task(RETRIEVAL, "t")
    assert caught.value.kind == UNEXPECTED


async def test_an_odd_task_backs_off_alone_and_a_newer_task_without_an_event_still_completes(tmp_path: Path) -> None:
    """The reconciler polls the odd task once, backs it off, and goes on to complete the newer task;
    later passes (at the reconciler's pace) leave the odd task alone until its own backoff ends. The first odd
    poll is waited for, not assumed: on a loaded machine a pass may poll the task before its odd answer is set."""
    async with running_bot(tmp_path, tuning=slow_retries(), reconcile_interval=0.05, relay_api_key=None) as bot:
        odd_task, _ = await bot.request("odd@example.com")
        good_task, good_parent = await bot.request("good@example.com")
        bot.prime.odd_tasks[odd_task] = STRING_EXTENSIONS
        bot.prime.complete(good_task)
        await bot.download_reply(good_parent)

        def odd_queries() -> list[dict[str, Any]]:
            return [q for q in bot.prime.queries() if q["variables"]["taskId"] == odd_task and q["failure"]]

        async def polled_oddly() -> bool:
            return bool(odd_queries())

        await eventually(polled_oddly)
        for _ in range(3):
            await bot.runtime.workers.reconciler.reconcile()
        assert len(odd_queries()) == 1
        (odd,) = [r for r in await bot.runtime.store.cases.open() if r.task_id == odd_task]
        assert odd.check_failures == 1 and odd.status.value == "IN_PROGRESS"


async def test_an_event_for_an_odd_task_waits_on_its_own_and_the_other_events_apply(tmp_path: Path) -> None:
    """The inbox applies the good task's event; the odd one's events back off instead of looping hot."""
    async with running_bot(tmp_path, tuning=slow_retries()) as bot:
        odd_task, _ = await bot.request("odd@example.com")
        good_task, good_parent = await bot.request("good@example.com")
        bot.prime.odd_tasks[odd_task] = STRING_EXTENSIONS
        bot.prime.complete(good_task)
        await bot.relay(envelope(COMPLETED, odd_task))
        await bot.relay(envelope(COMPLETED, good_task))
        await bot.download_reply(good_parent)
        for _ in range(3):
            await bot.runtime.workers.inbox.process_pending()
        odd_queries = [q for q in bot.prime.queries() if q["variables"]["taskId"] == odd_task and q["failure"]]
        assert len(odd_queries) == 1
        with sqlite3.connect(bot.settings.database_path) as db:
            ((attempts, pending),) = db.execute(
                "SELECT attempts, processed_at IS NULL FROM inbox WHERE task_id = ?", (odd_task,)
            ).fetchall()
        assert attempts == 1 and pending


async def test_a_start_answer_of_the_wrong_type_is_retried_and_the_request_starts(tmp_path: Path) -> None:
    """A start answered with a bare string is an odd answer: retried later with the same clientToken, not stuck."""
    async with running_bot(tmp_path, reconcile_interval=0.05) as bot:
        bot.prime.fail_next[START] = [{"data": {START: "not-an-object"}}]
        task_id, _ = await bot.request("odd.start@example.com")
        # At least the odd answer's call and the retry's; a loaded machine may time out and retry a call too.
        assert len(bot.prime.starts()) >= 2 and list(bot.prime.tasks) == [task_id]
        assert len({s["variables"]["input"]["clientToken"]["token"] for s in bot.prime.starts()}) == 1


async def test_a_numeric_error_code_is_an_odd_answer_and_the_real_failure_is_posted_later(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A FAILED task whose error code is a number is not rendered (or crashed on); once Amazon answers in
    shape, the thread gets the failure with its code."""
    task_id, parent = await bot.request("numeric@example.com")
    numeric = {"taskId": task_id, "status": "FAILED", "errors": [{"code": 404, "message": "Not found"}]}
    bot.prime.odd_tasks[task_id] = {"data": {QUERY: numeric}}
    bot.prime.fail(task_id)
    caplog.set_level(logging.INFO)
    await bot.relay(envelope("PERSONAL_DATA_RETRIEVAL_TASK_FAILED", task_id))
    await bot.prime.wait_for(lambda: [q for q in bot.prime.queries() if q["failure"]])
    assert not bot.replies(parent["ts"])
    del bot.prime.odd_tasks[task_id]
    reply = await bot.slack.wait_for(lambda: bot.replies(parent["ts"])[0])
    assert "DATA_SUBJECT_NOT_FOUND" in text_of(reply)
    assert "download_data" not in [b["action_id"] for b in buttons(reply)]
    assert "Traceback" not in caplog.text and "TypeError" not in caplog.text


async def test_no_worker_restarts_when_amazon_answers_oddly(bot: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """Odd answers stay inside their item: no worker loop fails and restarts."""
    task_id, _ = await bot.request("loop@example.com")
    bot.prime.odd_tasks[task_id] = STRING_EXTENSIONS
    await bot.relay(envelope(COMPLETED, task_id))
    await bot.prime.wait_for(lambda: len([q for q in bot.prime.queries() if q["failure"]]) >= 2)
    await bot.runtime.workers.reconciler.reconcile(resume=True)

    async def backing_off() -> bool:
        return not any(
            r.status.value == "IN_PROGRESS" and r.check_failures == 0 for r in await bot.runtime.store.cases.open()
        )

    await eventually(backing_off)
    assert "worker" not in caplog.text and "AttributeError" not in caplog.text
