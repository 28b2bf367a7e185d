"""The fake Buy with Prime's deletion half behaves as Amazon documents it, so erasure tests built on it mean something.

Over real HTTP on loopback, as the bot's client talks to it: documents checked
against the schema, the hold and Cancel, the 8-hour clientToken rule, and the
same failure injection as retrieval.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fakes import FakePrime
from harness import SettableClock

START = """
mutation Start($email: String!, $clientToken: String!, $hold: Int, $reason: String) {
  startPersonalDataDeletionTask(input: {
    clientToken: {token: $clientToken}, dataSubject: {type: SHOPPER, email: $email},
    holdingPeriod: $hold, reason: $reason
  }) { taskId }
}"""
QUERY = """
query Deletion($taskId: String!) {
  personalDataDeletionTask(taskId: $taskId) {
    taskId status submissionDate lastUpdatedDate dataSubject { type email } holdingPeriod errors { code message }
  }
}"""
RETRIEVAL_QUERY = "query Task($taskId: String!) { personalDataRetrievalTask(taskId: $taskId) { taskId status } }"
CANCEL = "mutation Cancel($taskId: String!) { cancelPersonalDataDeletionTask(taskId: $taskId) { taskId } }"


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(1_800_000_000.0)


@pytest.fixture
async def prime(clock: SettableClock) -> AsyncIterator[FakePrime]:
    async with FakePrime("cid", "secret", "amzn1.bp.test", clock=clock) as fake:
        yield fake


class Amazon:
    """A minimal client: one token, then documents with the required headers; answers as (status, JSON)."""

    def __init__(self, prime: FakePrime, http: httpx.AsyncClient) -> None:
        self.prime, self.http, self.token = prime, http, ""

    async def post(self, query: str, **variables: Any) -> tuple[int, dict[str, Any]]:
        if not self.token:
            form = {"grant_type": "client_credentials"}
            self.token = (await self.http.post(self.prime.token_url, data=form, auth=("cid", "secret"))).json()[
                "access_token"
            ]
        headers = {"Authorization": f"Bearer {self.token}", "x-api-target-id": "amzn1.bp.test", "x-api-version": "v"}
        r = await self.http.post(self.prime.api_url, json={"query": query, "variables": variables}, headers=headers)
        return r.status_code, r.json()

    async def start(self, email: str = "a@example.com", token: str | None = None, **extra: Any) -> str:
        status, body = await self.post(START, email=email, clientToken=token or str(uuid.uuid4()), **extra)
        assert status == 200 and not body.get("errors"), body
        return str(body["data"]["startPersonalDataDeletionTask"]["taskId"])

    async def task(self, task_id: str) -> dict[str, Any]:
        return (await self.post(QUERY, taskId=task_id))[1]

    async def cancel(self, task_id: str) -> dict[str, Any]:
        return (await self.post(CANCEL, taskId=task_id))[1]


@pytest.fixture
async def amazon(prime: FakePrime) -> AsyncIterator[Amazon]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield Amazon(prime, http)


def classification(body: dict[str, Any]) -> dict[str, Any]:
    return dict(body["errors"][0]["extensions"]["classification"])


async def test_start_keeps_the_hold_and_reason_and_the_task_waits_on_hold(prime: FakePrime, amazon: Amazon) -> None:
    """holdingPeriod and reason reach the task as the acceptance kit reads them; ON_HOLD until the test ends the
    hold; a 0-day hold is IN_PROGRESS at once; no holdingPeriod means Amazon's 10 days."""
    held = await amazon.start("a@example.com", hold=30, reason="shopper asked by email")
    at_once = await amazon.start("b@example.com", hold=0)
    default = await amazon.start("c@example.com")
    task = prime.tasks[held]
    assert (task.kind, task.holding_period, task.reason, task.status) == (
        "deletion",
        30,
        "shopper asked by email",
        "ON_HOLD",
    )
    answer = (await amazon.task(held))["data"]["personalDataDeletionTask"]
    assert answer["status"] == "ON_HOLD" and answer["holdingPeriod"] == 30 and answer["errors"] is None
    assert answer["dataSubject"] == {"type": "SHOPPER", "email": "a@example.com"}
    assert prime.tasks[at_once].status == "IN_PROGRESS" and prime.tasks[default].holding_period == 10
    prime.release_hold(held)
    assert (await amazon.task(held))["data"]["personalDataDeletionTask"]["status"] == "IN_PROGRESS"
    assert prime.deletion_tasks() == [held, at_once, default] and prime.retrieval_tasks() == []
    assert [r["variables"].get("hold") for r in prime.deletion_starts()] == [30, 0, None]


async def test_a_hold_outside_0_to_180_is_a_validation_error(prime: FakePrime, amazon: Amazon) -> None:
    """Over 180 (or under 0) days is Amazon's ValidationError naming holdingPeriod, and starts nothing."""
    for hold in (181, -1):
        status, body = await amazon.post(START, email="a@example.com", clientToken=str(uuid.uuid4()), hold=hold)
        assert status == 200 and body["data"] == {"startPersonalDataDeletionTask": None}
        assert "holdingPeriod must be between 0 and 180" in body["errors"][0]["message"]
        assert classification(body)["type"] == "ValidationError"
    assert not prime.tasks


async def test_cancel_on_hold_works_and_the_task_is_then_not_found(prime: FakePrime, amazon: Amazon) -> None:
    """Cancel during the hold answers the task id and marks it cancelled; queries and cancels then get
    ResourceNotFoundError, as the acceptance kit's fake answers."""
    task_id = await amazon.start(hold=10)
    assert await amazon.cancel(task_id) == {"data": {"cancelPersonalDataDeletionTask": {"taskId": task_id}}}
    assert prime.tasks[task_id].cancelled and [r["variables"] for r in prime.cancels()] == [{"taskId": task_id}]
    for body in (await amazon.task(task_id), await amazon.cancel(task_id)):
        assert classification(body)["type"] == "ResourceNotFoundError"


async def test_cancel_after_the_hold_is_cannot_cancel(prime: FakePrime, amazon: Amazon) -> None:
    """Once the hold is over (IN_PROGRESS, or ended) a cancel is a ValidationError coded
    CannotCancelPersonalDataDeletionTask, and the task goes on."""
    task_id = await amazon.start(hold=1)
    prime.release_hold(task_id)
    for status in ("IN_PROGRESS", "COMPLETED"):
        body = await amazon.cancel(task_id)
        assert body["data"] == {"cancelPersonalDataDeletionTask": None}
        assert classification(body) == {
            "type": "ValidationError",
            "code": "CannotCancelPersonalDataDeletionTask",
            "errorType": "ValidationException",
            "errorCode": 400,
        }
        assert f"status of {status}" in body["errors"][0]["message"] and not prime.tasks[task_id].cancelled
        prime.complete(task_id)


async def test_open_orders_failure_is_read_as_amazon_sends_it(prime: FakePrime, amazon: Amazon) -> None:
    """fail() with ORDERS_NOT_CLOSED gives FAILED with [{code, message}], as the deletion query answers it."""
    task_id = await amazon.start(hold=0)
    prime.fail(task_id, "ORDERS_NOT_CLOSED", "The shopper has open orders")
    answer = (await amazon.task(task_id))["data"]["personalDataDeletionTask"]
    assert answer["status"] == "FAILED"
    assert answer["errors"] == [{"code": "ORDERS_NOT_CLOSED", "message": "The shopper has open orders"}]


async def test_client_token_is_the_same_task_for_8_hours_and_per_operation(
    prime: FakePrime, amazon: Amazon, clock: SettableClock
) -> None:
    """The same token within 8 hours is the same deletion (another email with it is a ConflictError); 8 hours on, a
    new task; a retrieval token does not name a deletion task."""
    token = str(uuid.uuid4())
    _, body = await amazon.post(
        "mutation R($e: String!, $t: String!) { startPersonalDataRetrievalTask("
        "input: {clientToken: {token: $t}, dataSubject: {type: SHOPPER, email: $e}}) { taskId } }",
        e="a@example.com",
        t=token,
    )
    retrieval = body["data"]["startPersonalDataRetrievalTask"]["taskId"]
    first = await amazon.start("a@example.com", token, hold=5)
    assert first != retrieval and prime.tasks[first].kind == "deletion"
    clock.now += 8 * 3600 - 1
    assert await amazon.start("a@example.com", token, hold=5) == first
    _, conflict = await amazon.post(START, email="b@example.com", clientToken=token, hold=5)
    assert classification(conflict)["type"] == "ConflictError"
    clock.now += 1
    assert await amazon.start("a@example.com", token, hold=5) != first
    assert len(prime.deletion_tasks()) == 2


async def test_the_kinds_do_not_mix(prime: FakePrime, amazon: Amazon) -> None:
    """A deletion id is not a retrieval task and a retrieval id not a deletion task (nor cancellable)."""
    deletion = await amazon.start(hold=3)
    _, body = await amazon.post(RETRIEVAL_QUERY, taskId=deletion)
    assert classification(body)["type"] == "ResourceNotFoundError"
    _, started = await amazon.post(
        "mutation R($e: String!) { startPersonalDataRetrievalTask(input: {dataSubject: {type: SHOPPER, email: $e}})"
        " { taskId } }",
        e="a@example.com",
    )
    retrieval = started["data"]["startPersonalDataRetrievalTask"]["taskId"]
    for body in (await amazon.task(retrieval), await amazon.cancel(retrieval)):
        assert classification(body)["type"] == "ResourceNotFoundError"
    assert prime.tasks[retrieval].status == "IN_PROGRESS"


async def test_deletion_documents_are_checked_like_retrieval_ones(prime: FakePrime, amazon: Amazon) -> None:
    """A field the schema lacks, or a task id written into the document, is answered 400 and recorded as invalid."""
    status, _ = await amazon.post(QUERY.replace("holdingPeriod", "dataRetrievalLink"), taskId="x")
    assert status == 400 and "dataRetrievalLink" in prime.invalid[-1]
    status, _ = await amazon.post('mutation { cancelPersonalDataDeletionTask(taskId: "abc") { taskId } }')
    assert status == 400 and "abc" in prime.invalid[-1]
    assert prime.requests == []


@pytest.mark.parametrize(
    ("operation", "document"),
    [
        ("startPersonalDataDeletionTask", START),
        ("personalDataDeletionTask", QUERY),
        ("cancelPersonalDataDeletionTask", CANCEL),
    ],
)
async def test_failures_are_injected_per_deletion_operation(
    prime: FakePrime, amazon: Amazon, operation: str, document: str
) -> None:
    """fail_next works for each deletion operation as for retrieval: a 503, then a ThrottlingError, then through."""
    task_id = await amazon.start(hold=2)
    prime.fail_next[operation] = ["503", "throttle"]
    variables = (
        {"email": "a@example.com", "clientToken": str(uuid.uuid4())} if document is START else {"taskId": task_id}
    )
    assert (await amazon.post(document, **variables))[0] == 503
    status, throttled = await amazon.post(document, **variables)
    assert status == 200 and classification(throttled)["errorCode"] == 429
    status, through = await amazon.post(document, **variables)
    assert status == 200 and not through.get("errors") and through["data"][operation]


async def test_cancel_then_500_has_cancelled_and_a_start_gate_holds_deletion_starts(
    prime: FakePrime, amazon: Amazon
) -> None:
    """ "task-then-500" on cancel cancels and answers 500 (a retry then gets not found); ``start_gate`` holds a
    deletion start's answer after its task exists."""
    task_id = await amazon.start(hold=2)
    prime.fail_next["cancelPersonalDataDeletionTask"] = ["task-then-500"]
    assert (await amazon.post(CANCEL, taskId=task_id))[0] == 500 and prime.tasks[task_id].cancelled
    assert classification(await amazon.cancel(task_id))["type"] == "ResourceNotFoundError"
    prime.start_gate = asyncio.Event()
    call = asyncio.create_task(amazon.start("held@example.com", hold=2))
    await prime.wait_for(lambda: prime.holding)
    assert not call.done() and len(prime.deletion_tasks()) == 2
    prime.start_gate.set()
    assert await call == prime.deletion_tasks()[1]
