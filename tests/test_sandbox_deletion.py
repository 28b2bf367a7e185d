"""The built-in sandbox's deletion half, over HTTP as the bot's client talks to it: hold, cancel, outcomes, events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fakes import FakeSlack
from harness import SIGNING_SECRET
from sandboxes import CANCEL, DELETION, QUERY, RELAY_KEY, T0, TOKEN, Amazon, classification, served

from bot.runtime import Runtime
from bot.settings import load_settings
from bot.tuning import Tuning
from core import ConfigError

HOLD_SECONDS = 60.0  # one hold day, in the sandbox's clock
COMPLETE_AFTER = 10.0


@pytest.fixture
async def amazon() -> AsyncIterator[Amazon]:
    async with served(complete_after=COMPLETE_AFTER, hold_seconds=HOLD_SECONDS) as sandbox:
        yield sandbox


def cannot_cancel(body: dict[str, object], status: str) -> bool:
    """The answer is Amazon's too-late refusal, naming the status the task has."""
    return (
        body["data"] == {"cancelPersonalDataDeletionTask": None}
        and classification(body)
        == {
            "type": "ValidationError",
            "code": "CannotCancelPersonalDataDeletionTask",
            "errorType": "ValidationException",
            "errorCode": 400,
        }
        and f"status of {status}" in body["errors"][0]["message"]  # type: ignore[index]
    )


def not_found(body: dict[str, object], field: str) -> bool:
    return body["data"] == {field: None} and classification(body)["type"] == "ResourceNotFoundError"


# ----------------------------------------------------------------- the lifecycle


async def test_a_deletion_is_on_hold_for_its_days_then_in_progress_then_completed(amazon: Amazon) -> None:
    """Hold 3 days: ON_HOLD until 3 sandbox days pass, IN_PROGRESS for complete_after, then COMPLETED; the answer
    carries the holding period, the shopper, and dates that move with each status."""
    task_id = await amazon.deletion_id("erase.me@example.com", hold=3)
    held = (await amazon.deletion(task_id))["data"]["personalDataDeletionTask"]
    assert held == {
        "taskId": task_id,
        "status": "ON_HOLD",
        "submissionDate": "2027-01-15T08:00:00Z",
        "lastUpdatedDate": "2027-01-15T08:00:00Z",
        "dataSubject": {"type": "SHOPPER", "email": "erase.me@example.com"},
        "holdingPeriod": 3,
        "errors": [],
    }
    amazon.now = T0 + 3 * HOLD_SECONDS - 0.001
    assert await amazon.deletion_status(task_id) == "ON_HOLD"
    amazon.now = T0 + 3 * HOLD_SECONDS
    running = (await amazon.deletion(task_id))["data"]["personalDataDeletionTask"]
    assert running["status"] == "IN_PROGRESS" and running["lastUpdatedDate"] == "2027-01-15T08:03:00Z"
    amazon.now += COMPLETE_AFTER
    done = (await amazon.deletion(task_id))["data"]["personalDataDeletionTask"]
    assert done["status"] == "COMPLETED" and done["errors"] == []
    assert done["lastUpdatedDate"] == "2027-01-15T08:03:10Z"


async def test_the_hold_defaults_to_10_days_and_0_days_starts_at_once(amazon: Amazon) -> None:
    """Without holdingPeriod Amazon holds 10 days; holdingPeriod 0 skips ON_HOLD and is IN_PROGRESS at once."""
    default = await amazon.deletion_id("a@example.com")
    at_once = await amazon.deletion_id("b@example.com", "b" * 36, hold=0)
    assert (await amazon.deletion(default))["data"]["personalDataDeletionTask"]["holdingPeriod"] == 10
    assert await amazon.deletion_status(at_once) == "IN_PROGRESS"
    amazon.now = T0 + 10 * HOLD_SECONDS - 1
    assert await amazon.deletion_status(default) == "ON_HOLD"
    amazon.now += 1
    assert await amazon.deletion_status(default) == "IN_PROGRESS"


@pytest.mark.parametrize("hold", [-1, 181])
async def test_a_holding_period_outside_0_to_180_is_a_validation_error(amazon: Amazon, hold: int) -> None:
    """Amazon refuses a hold under 0 or over 180 days with a ValidationError naming holdingPeriod; no task starts."""
    body = await amazon.start_deletion("a@example.com", hold=hold)
    assert body["data"] == {"startPersonalDataDeletionTask": None}
    assert "holdingPeriod must be between 0 and 180" in body["errors"][0]["message"]
    assert classification(body)["type"] == "ValidationError" and classification(body)["errorCode"] == 400


@pytest.mark.parametrize(
    ("email", "client_token", "field"),
    [
        ("not-an-email", TOKEN, "dataSubject.email"),
        ("jane@example.com\n", TOKEN, "dataSubject.email"),
        ("jane@example.com", "0123456789", "clientToken.token"),
    ],
)
async def test_a_bad_email_or_client_token_is_a_validation_error(
    amazon: Amazon, email: str, client_token: str, field: str
) -> None:
    """The deletion start checks the shopper's email and the clientToken as the retrieval start does."""
    body = await amazon.start_deletion(email, client_token, hold=1)
    assert body["data"] == {"startPersonalDataDeletionTask": None} and field in body["errors"][0]["message"]
    assert classification(body)["type"] == "ValidationError"


# ----------------------------------------------------------------- cancel


async def test_cancel_during_the_hold_works_and_the_task_is_unknown_afterwards(amazon: Amazon) -> None:
    """A cancel while ON_HOLD answers the task id; from then on the task (and a second cancel) is not found."""
    task_id = await amazon.deletion_id("cancel.me@example.com", hold=30)
    amazon.now = T0 + 30 * HOLD_SECONDS - 1
    assert await amazon.cancel(task_id) == {"data": {"cancelPersonalDataDeletionTask": {"taskId": task_id}}}
    assert not_found(await amazon.deletion(task_id), "personalDataDeletionTask")
    assert not_found(await amazon.cancel(task_id), "cancelPersonalDataDeletionTask")
    amazon.now += 3600  # past what would have been its end: still gone
    assert not_found(await amazon.deletion(task_id), "personalDataDeletionTask")


async def test_cancel_after_the_hold_is_too_late_and_changes_nothing(amazon: Amazon) -> None:
    """Once IN_PROGRESS (or ended) a cancel is CannotCancelPersonalDataDeletionTask, and the deletion goes on."""
    task_id = await amazon.deletion_id("too.late@example.com", hold=1)
    amazon.now = T0 + HOLD_SECONDS
    assert cannot_cancel(await amazon.cancel(task_id), "IN_PROGRESS")
    assert await amazon.deletion_status(task_id) == "IN_PROGRESS"
    amazon.now += COMPLETE_AFTER
    assert cannot_cancel(await amazon.cancel(task_id), "COMPLETED")
    assert await amazon.deletion_status(task_id) == "COMPLETED"
    no_hold = await amazon.deletion_id("no.hold@example.com", "h" * 40, hold=0)
    assert cannot_cancel(await amazon.cancel(no_hold), "IN_PROGRESS")


async def test_unknown_ids_are_not_found_and_the_two_kinds_do_not_mix(amazon: Amazon) -> None:
    """A made-up id is ResourceNotFoundError for the query and the cancel; a retrieval id is no deletion task,
    and a deletion id no retrieval task."""
    retrieval = await amazon.start_task("jane@example.com", "r" * 36)
    deletion = await amazon.deletion_id("jane@example.com", "d" * 36, hold=2)
    for unknown in ("8c1f7a52-3d1e-4c55-9a0e-5b9f2f0d4e11", retrieval, deletion + "\n"):
        assert not_found(await amazon.deletion(unknown), "personalDataDeletionTask"), unknown
        assert not_found(await amazon.cancel(unknown), "cancelPersonalDataDeletionTask"), unknown
    assert not_found(await amazon.answer(QUERY, {"taskId": deletion}), "personalDataRetrievalTask")
    assert await amazon.deletion_status(deletion) == "ON_HOLD"


# ----------------------------------------------------------------- outcomes and idempotency


@pytest.mark.parametrize(
    ("email", "code"),
    [("openorders.jo@example.com", "ORDERS_NOT_CLOSED"), ("NotFound@example.com", "DATA_SUBJECT_NOT_FOUND")],
)
async def test_documented_emails_fail_after_the_hold_with_amazons_error_shape(
    amazon: Amazon, email: str, code: str
) -> None:
    """`openorders…` and `notfound…` addresses hold like any other, then end FAILED with [{code, message}]."""
    task_id = await amazon.deletion_id(email, hold=1)
    assert await amazon.deletion_status(task_id) == "ON_HOLD"
    amazon.now = T0 + HOLD_SECONDS + COMPLETE_AFTER
    failed = (await amazon.deletion(task_id))["data"]["personalDataDeletionTask"]
    assert failed["status"] == "FAILED" and [e["code"] for e in failed["errors"]] == [code]
    assert all(isinstance(e["message"], str) and e["message"] for e in failed["errors"])


async def test_same_client_token_within_8_hours_is_the_same_deletion(amazon: Amazon) -> None:
    """A retry with the first try's clientToken finds the first task (even with other input); another token, or
    the same one 8 hours later, starts a new one. Retrieval and deletion keep their tokens apart."""
    retrieval = await amazon.start_task("jane@example.com")
    first = await amazon.deletion_id("jane@example.com", hold=5)
    assert first != retrieval
    amazon.now += 8 * 3600 - 1
    assert await amazon.deletion_id("jane@example.com", hold=7) == first
    assert await amazon.deletion_id("jane@example.com", "n" * 36, hold=5) != first
    amazon.now += 1
    again = await amazon.deletion_id("jane@example.com", hold=5)
    assert again != first
    started = (await amazon.deletion(again))["data"]["personalDataDeletionTask"]["submissionDate"]
    assert started == "2027-01-15T16:00:00Z"


async def test_deletion_documents_are_validated_against_the_schema(amazon: Amazon) -> None:
    """A field the deletion task does not have, a missing argument, or a wrong enum is a 400 naming it."""
    for document, complaint in (
        (DELETION.replace("holdingPeriod", "dataRetrievalLink"), "dataRetrievalLink"),
        ("mutation { cancelPersonalDataDeletionTask { taskId } }", "taskId"),
        (
            "mutation { startPersonalDataDeletionTask(input: {dataSubject: {type: ADMIN}, holdingPeriod: 1}) "
            "{ taskId } }",
            "ADMIN",
        ),
        (CANCEL.replace("taskId: String!", "taskId: Int!"), "Int"),
    ):
        response = await amazon.graphql(document, {"taskId": "x"})
        assert response.status_code == 400, document
        assert complaint in response.text


# ----------------------------------------------------------------- events


async def test_an_ended_deletion_is_posted_to_the_relay_and_a_cancelled_one_is_not() -> None:
    """Each deletion's end reaches the relay as PERSONAL_DATA_DELETION_TASK_COMPLETED or _FAILED with its task as
    a personalDataDeletionTask resource and the relay key; the task cancelled during its hold sends nothing."""
    async with served(complete_after=0, hold_seconds=0.05) as amazon:
        cancelled = await amazon.deletion_id("cancel.me@example.com", "c" * 36, hold=1)  # would end after 0.05 s
        assert await amazon.cancel(cancelled)
        done = await amazon.deletion_id("erase.me@example.com", "d" * 36, hold=2)  # ends after 0.1 s
        failed = await amazon.deletion_id("openorders@example.com", "o" * 36, hold=2)
        await amazon.relay.wait_for(2)
    by_task = {body["resources"][0].rsplit("/", 1)[1]: (headers, body) for headers, body in amazon.relay.requests}
    assert set(by_task) == {done, failed}
    for task_id, (headers, body) in by_task.items():
        assert headers["x-api-key"] == RELAY_KEY
        assert body["resources"] == [f"businessProduct/amzn1.bp.sandbox/personalDataDeletionTask/{task_id}"]
        assert body["version"] == "0" and body["id"] and body["source"].startswith("aws.partner/buywithprime/")
    assert by_task[done][1]["detail-type"] == "PERSONAL_DATA_DELETION_TASK_COMPLETED"
    assert by_task[failed][1]["detail-type"] == "PERSONAL_DATA_DELETION_TASK_FAILED"


# ----------------------------------------------------------------- SANDBOX_HOLD_SECONDS


def test_sandbox_hold_seconds_is_read_and_checked() -> None:
    """Unset it is 6 (a 10-day hold lasts a minute); 0 is allowed (holds end at once); words or a negative are a
    ConfigError naming the setting and its range."""
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "secret"}
    assert load_settings(env, sandbox=True).sandbox_hold_seconds == 6.0
    assert load_settings({**env, "SANDBOX_HOLD_SECONDS": "0"}, sandbox=True).sandbox_hold_seconds == 0.0
    assert load_settings({**env, "SANDBOX_HOLD_SECONDS": "86400"}, sandbox=True).sandbox_hold_seconds == 86_400.0
    for wrong in ("-1", "a day", "86401"):
        with pytest.raises(ConfigError, match="SANDBOX_HOLD_SECONDS must be a number of seconds between 0 and 86400"):
            load_settings({**env, "SANDBOX_HOLD_SECONDS": wrong}, sandbox=True)


async def test_serve_sandbox_holds_deletions_for_sandbox_hold_seconds_per_day(tmp_path: Path) -> None:
    """`serve --sandbox` with SANDBOX_HOLD_SECONDS=3600: on the bot's own port a 1-day hold is still ON_HOLD and
    cancellable, while a 0-day hold is IN_PROGRESS at once and too late to cancel."""
    async with FakeSlack() as slack:
        env = {
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "DATABASE_PATH": str(tmp_path / "data-requests.db"),
            "PORT": "0",
            "SANDBOX_COMPLETE_AFTER": "3600",
            "SANDBOX_HOLD_SECONDS": "3600",
        }
        runtime = await Runtime.start(load_settings(env, sandbox=True), host="127.0.0.1", tuning=Tuning.fast())
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                base = f"http://127.0.0.1:{runtime.port}"
                issued = await http.post(f"{base}/sandbox/token", data={"grant_type": "client_credentials"})
                amazon = Amazon(http, base, relay=None, token=issued.json()["access_token"])  # type: ignore[arg-type]
                held = await amazon.deletion_id("a@example.com", "a" * 36, hold=1)
                at_once = await amazon.deletion_id("b@example.com", "b" * 36, hold=0)
                assert await amazon.deletion_status(held) == "ON_HOLD"
                assert await amazon.deletion_status(at_once) == "IN_PROGRESS"
                assert (await amazon.cancel(held))["data"] == {"cancelPersonalDataDeletionTask": {"taskId": held}}
                assert cannot_cancel(await amazon.cancel(at_once), "IN_PROGRESS")
        finally:
            await runtime.stop()
