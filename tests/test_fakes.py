"""The fakes behave like the services they stand in for, so tests built on them mean something.

Amazon's behaviour itself is the sandbox's model, tested once in test_sandbox*.py; here, what the tests' fake
adds on top of it (recording, failure injection, moves a test makes in Amazon's place), and the fake Slack."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from fakes import FakePrime, FakeSlack, block_actions_body, slack_headers, slash_body
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from offline.slack import LocalSlack, Posted

TOKEN = "xoxb-test"
START = """
mutation Start($email: String!, $clientToken: String!) {
  startPersonalDataRetrievalTask(
    input: {clientToken: {token: $clientToken}, dataSubject: {type: SHOPPER, email: $email}}
  ) { taskId }
}"""
QUERY = """
query Task($taskId: String!) {
  personalDataRetrievalTask(taskId: $taskId) { taskId status dataRetrievalLink errors { code message } }
}"""
START_DELETION = """
mutation Start($email: String!, $clientToken: String!, $hold: Int, $reason: String) {
  startPersonalDataDeletionTask(input: {
    clientToken: {token: $clientToken}, dataSubject: {type: SHOPPER, email: $email},
    holdingPeriod: $hold, reason: $reason
  }) { taskId }
}"""
DELETION_QUERY = "query D($taskId: String!) { personalDataDeletionTask(taskId: $taskId) { taskId status } }"
CANCEL = "mutation Cancel($taskId: String!) { cancelPersonalDataDeletionTask(taskId: $taskId) { taskId } }"
START_DELETION_OP, DELETION_QUERY_OP, CANCEL_OP = (
    "startPersonalDataDeletionTask",
    "personalDataDeletionTask",
    "cancelPersonalDataDeletionTask",
)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN, usergroups={"S0STAFF": ["U1"]}, retry_after="0") as fake:
        yield fake


@pytest.fixture
async def prime() -> AsyncIterator[FakePrime]:
    async with FakePrime("cid", "secret", "amzn1.bp.test") as fake:
        yield fake


class Amazon:
    """A minimal client: fetches a token once, then posts documents with the required headers."""

    def __init__(self, prime: FakePrime, http: httpx.AsyncClient) -> None:
        self.prime, self.http, self.token = prime, http, ""

    async def post(self, query: str, **variables: Any) -> httpx.Response:
        if not self.token:
            r = await self.http.post(
                self.prime.token_url, data={"grant_type": "client_credentials"}, auth=("cid", "secret")
            )
            self.token = r.json()["access_token"]
        headers = {"Authorization": f"Bearer {self.token}", "x-api-target-id": "amzn1.bp.test", "x-api-version": "v"}
        return await self.http.post(self.prime.api_url, json={"query": query, "variables": variables}, headers=headers)


@pytest.fixture
async def amazon(prime: FakePrime) -> AsyncIterator[Amazon]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield Amazon(prime, http)


def client_token() -> str:
    return str(uuid.uuid4())


async def start(amazon: Amazon, email: str = "a@example.com") -> str:
    """Start a task and return its id."""
    r = await amazon.post(START, email=email, clientToken=client_token())
    return str(r.json()["data"]["startPersonalDataRetrievalTask"]["taskId"])


async def start_deletion(amazon: Amazon, email: str = "a@example.com", **extra: Any) -> str:
    """Start a deletion task and return its id."""
    r = await amazon.post(START_DELETION, email=email, clientToken=client_token(), **extra)
    return str(r.json()["data"]["startPersonalDataDeletionTask"]["taskId"])


async def test_prime_records_and_refuses_invalid_documents_and_literals(prime: FakePrime, amazon: Amazon) -> None:
    """A document the schema refuses, or an email written into the query text instead of a variable, is answered
    400 and recorded in ``invalid``, never in ``requests``."""
    r = await amazon.post("query($t: String!) { personalDataRetrievalTask(taskId: $t) { downloadUrl } }", t="x")
    assert r.status_code == 400 and "downloadUrl" in prime.invalid[0]
    inlined = START.replace("$email: String!, ", "").replace("email: $email", 'email: "a@example.com"')
    r = await amazon.post(inlined, clientToken=client_token())
    assert r.status_code == 400 and "a@example.com" in prime.invalid[1]
    assert prime.requests == []


async def test_token_endpoint_checks_credentials(prime: FakePrime) -> None:
    """Bad client credentials get 401 invalid_client; good ones as form fields get a token; each call is counted."""
    async with httpx.AsyncClient() as http:
        bad = await http.post(prime.token_url, data={"grant_type": "client_credentials"}, auth=("cid", "nope"))
        form = {"grant_type": "client_credentials", "client_id": "cid", "client_secret": "secret"}
        good = await http.post(prime.token_url, data=form)
    assert (bad.status_code, bad.json()) == (401, {"error": "invalid_client"})
    assert good.json()["expires_in"] == 900 and good.json()["access_token"]
    assert prime.token_requests == 2


async def test_a_test_moves_tasks_in_amazons_place_and_links_are_recorded(prime: FakePrime, amazon: Amazon) -> None:
    """Tasks wait for the test: complete() gives a COMPLETED task a fresh, recorded link per query; fail() a FAILED
    one Amazon's errors; release_hold() ends a deletion's hold. The start's variables are recorded."""
    token = client_token()
    done = (await amazon.post(START, email="a@example.com", clientToken=token)).json()
    done = done["data"]["startPersonalDataRetrievalTask"]["taskId"]
    failed = await start(amazon, "b@example.com")
    assert prime.starts()[0]["variables"] == {"email": "a@example.com", "clientToken": token}
    assert prime.tasks[done].status == "IN_PROGRESS"
    prime.complete(done)
    prime.fail(failed, code="ORDERS_NOT_CLOSED", message="The shopper has open orders")
    links = [(await amazon.post(QUERY, taskId=done)).json()["data"]["personalDataRetrievalTask"] for _ in range(2)]
    assert links[0]["dataRetrievalLink"] != links[1]["dataRetrievalLink"]
    assert [link for _, link in prime.links] == [t["dataRetrievalLink"] for t in links]
    failure = (await amazon.post(QUERY, taskId=failed)).json()["data"]["personalDataRetrievalTask"]
    assert failure["status"] == "FAILED"
    assert failure["errors"] == [{"code": "ORDERS_NOT_CLOSED", "message": "The shopper has open orders"}]
    held = await start_deletion(amazon, hold=30, reason="shopper asked by email")
    task = prime.tasks[held]
    assert (task.kind, task.holding_period, task.reason, task.status) == (
        "deletion",
        30,
        "shopper asked by email",
        "ON_HOLD",
    )
    prime.release_hold(held)
    answer = (await amazon.post(DELETION_QUERY, taskId=held)).json()["data"]["personalDataDeletionTask"]
    assert answer["status"] == "IN_PROGRESS"
    assert prime.retrieval_tasks() == [done, failed] and prime.deletion_tasks() == [held]


async def test_injected_throttle_then_success(prime: FakePrime, amazon: Amazon) -> None:
    """A queued "throttle" answers one ThrottlingError, then the next call goes through."""
    prime.fail_next["startPersonalDataRetrievalTask"] = ["throttle"]
    throttled = (await amazon.post(START, email="a@example.com", clientToken=client_token())).json()
    assert throttled["data"] is None
    assert throttled["errors"][0]["extensions"]["classification"]["errorCode"] == 429
    assert await start(amazon) in prime.tasks


@pytest.mark.parametrize(
    ("operation", "document"),
    [(START_DELETION_OP, START_DELETION), (DELETION_QUERY_OP, DELETION_QUERY), (CANCEL_OP, CANCEL)],
)
async def test_failures_are_injected_per_deletion_operation(
    prime: FakePrime, amazon: Amazon, operation: str, document: str
) -> None:
    """fail_next works for each deletion operation as for retrieval: a 503, then a ThrottlingError, then through."""
    task_id = await start_deletion(amazon, hold=2)
    prime.fail_next[operation] = ["503", "throttle"]
    variables = (
        {"email": "a@example.com", "clientToken": client_token()} if document is START_DELETION else {"taskId": task_id}
    )
    assert (await amazon.post(document, **variables)).status_code == 503
    throttled = await amazon.post(document, **variables)
    assert (
        throttled.status_code == 200
        and throttled.json()["errors"][0]["extensions"]["classification"]["errorCode"] == 429
    )
    through = await amazon.post(document, **variables)
    assert through.status_code == 200 and not through.json().get("errors") and through.json()["data"][operation]


async def test_task_then_500_keeps_the_task_for_the_retry(prime: FakePrime, amazon: Amazon) -> None:
    """A 500 after the task exists is healed by retrying with the same clientToken; after a cancel's 500 the
    deletion is cancelled (a retry then gets not found)."""
    prime.fail_next["startPersonalDataRetrievalTask"] = ["task-then-500"]
    token = client_token()
    failed = await amazon.post(START, email="a@example.com", clientToken=token)
    retried = await amazon.post(START, email="a@example.com", clientToken=token)
    assert failed.status_code == 500
    assert [retried.json()["data"]["startPersonalDataRetrievalTask"]["taskId"]] == list(prime.tasks)
    deletion = await start_deletion(amazon, hold=2)
    prime.fail_next["cancelPersonalDataDeletionTask"] = ["task-then-500"]
    assert (await amazon.post(CANCEL, taskId=deletion)).status_code == 500 and prime.tasks[deletion].cancelled
    again = (await amazon.post(CANCEL, taskId=deletion)).json()
    assert again["errors"][0]["extensions"]["classification"]["type"] == "ResourceNotFoundError"


async def test_timeout_holds_the_answer_until_released(prime: FakePrime, amazon: Amazon) -> None:
    """A "timeout" answer waits on a gate, so tests can act while the call is in flight."""
    prime.fail_next["startPersonalDataRetrievalTask"] = ["timeout"]
    call = asyncio.create_task(amazon.post(START, email="a@example.com", clientToken=client_token()))
    await prime.wait_for(lambda: prime.holding)
    assert not call.done() and len(prime.tasks) == 1
    prime.release()
    assert (await call).status_code == 200


async def test_slack_records_and_waits(slack: FakeSlack) -> None:
    """A post is recorded with its ts, wakes a waiter, and shows up in the thread with its metadata."""
    client = AsyncWebClient(token=TOKEN, base_url=slack.api_url)
    waiter = asyncio.create_task(slack.wait_for(lambda: slack.posts("C1")[1]))
    parent = await client.chat_postMessage(channel="C1", text="Request started")
    metadata = {"event_type": "data_request", "event_payload": {"id": "r1"}}
    await client.chat_postMessage(channel="C1", text="Done", thread_ts=parent["ts"], metadata=metadata)
    reply = await waiter
    assert reply["thread_ts"] == parent["ts"] and float(reply["ts"]) > float(parent["ts"])
    thread = await client.conversations_replies(channel="C1", ts=parent["ts"], include_all_metadata=True)
    assert [m["text"] for m in thread["messages"]] == ["Request started", "Done"]
    assert thread["messages"][1]["metadata"] == metadata
    plain = await client.conversations_replies(channel="C1", ts=parent["ts"])
    assert "metadata" not in plain["messages"][1]  # only for a reader that asks for it
    assert "Done" in slack.public_text()
    assert (await client.usergroups_users_list(usergroup="S0STAFF"))["users"] == ["U1"]


async def test_slack_history_pages_top_level_messages_newest_first(slack: FakeSlack) -> None:
    """conversations.history: no thread replies, newest first, ``oldest`` and ``latest`` exclusive, one page
    of ``limit`` at a time behind a cursor, and metadata only when asked for."""
    client = AsyncWebClient(token=TOKEN, base_url=slack.api_url)
    tagged = {"event_type": "data_request", "event_payload": {"n": 1}}
    first = await client.chat_postMessage(channel="C1", text="one", metadata=tagged)
    await client.chat_postMessage(channel="C1", text="reply", thread_ts=first["ts"])
    for text in ("two", "three", "four"):
        await client.chat_postMessage(channel="C1", text=text)
    page = await client.conversations_history(channel="C1", limit=2, include_all_metadata=True)
    assert [m["text"] for m in page["messages"]] == ["four", "three"] and page["has_more"]
    cursor = page["response_metadata"]["next_cursor"]
    rest = await client.conversations_history(channel="C1", limit=2, cursor=cursor, include_all_metadata=True)
    assert [m["text"] for m in rest["messages"]] == ["two", "one"] and not rest["has_more"]
    assert rest["messages"][1]["metadata"] == tagged
    since = await client.conversations_history(channel="C1", oldest=first["ts"])
    assert [m["text"] for m in since["messages"]] == ["four", "three", "two"]
    plain = await client.conversations_history(channel="C1")
    assert all("metadata" not in m for m in plain["messages"])
    slack.not_in.add("C1")
    with pytest.raises(SlackApiError, match="not_in_channel"):
        await client.conversations_history(channel="C1")


async def test_slack_can_carry_out_a_call_and_hold_its_answer(slack: FakeSlack) -> None:
    """``hold_answers``: the post is made (Slack has it) while the caller still waits for the answer."""
    client = AsyncWebClient(token=TOKEN, base_url=slack.api_url)
    gate = asyncio.Event()
    slack.hold_answers["chat.postMessage"] = gate
    posting = asyncio.create_task(client.chat_postMessage(channel="C1", text="in flight"))
    await slack.wait_for(lambda: slack.answers_held)
    assert [p["text"] for p in slack.posts("C1")] == ["in flight"] and not posting.done()
    slack.hold_answers_of = lambda args: args["text"] == "held"
    assert (await client.chat_postMessage(channel="C1", text="answered"))["ok"]
    gate.set()
    assert (await posting)["ts"] == slack.posts("C1")[0]["ts"]


async def test_slack_failure_knobs(slack: FakeSlack) -> None:
    """Injected 429 carries Retry-After, an injected code answers ok false, and not_in refuses posts."""
    client = AsyncWebClient(token=TOKEN, base_url=slack.api_url)
    slack.fail["chat.postMessage"] = [429, "channel_not_found"]
    slack.not_in.add("C2")
    for channel in ("C1", "C1", "C2"):
        with pytest.raises(SlackApiError):
            await client.chat_postMessage(channel=channel, text="hi")
    assert [(c.status, c.response["error"]) for c in slack.calls] == [
        (429, "ratelimited"),
        (200, "channel_not_found"),
        (200, "not_in_channel"),
    ]
    assert slack.posts() == []
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url).auth_test()


async def test_wait_for_timeout_says_what_was_recorded(slack: FakeSlack) -> None:
    """A wait that never comes true fails with the recorded calls, not a bare timeout."""
    await AsyncWebClient(token=TOKEN, base_url=slack.api_url).auth_test()
    with pytest.raises(TimeoutError, match=r"auth\.test 200"):
        await slack.wait_for(lambda: slack.posts(), timeout=0.05)


async def test_response_url_posts_count_as_ephemeral_to_their_user(slack: FakeSlack) -> None:
    """A private response_url post reaches only the user the URL was handed to."""
    url = slack.response_url("U1")
    async with httpx.AsyncClient() as http:
        await http.post(url, json={"response_type": "ephemeral", "text": "Only you"})
        await http.post(url, json={"response_type": "in_channel", "text": "Everyone"})
    assert [m["text"] for m in slack.ephemerals_to("U1")] == ["Only you"]
    assert slack.ephemerals_to("U2") == []
    assert "Everyone" in slack.public_text() and "Only you" not in slack.public_text()


async def test_the_demos_slack_is_the_same_slack_and_shows_what_people_see() -> None:
    """The demo's LocalSlack (the tests' FakeSlack's base) keeps threads as Slack does and shows each message once."""
    shown: list[tuple[str, str | None, str]] = []

    def show(kind: str, message: Posted) -> None:
        shown.append((kind, message.visible_to, message.text))

    async with LocalSlack(TOKEN, show=show) as local:
        client = AsyncWebClient(token=TOKEN, base_url=local.api_url)
        parent = await client.chat_postMessage(channel="C1", text="Started")
        await client.chat_postMessage(channel="C1", text="Ready", thread_ts=parent["ts"])
        await client.chat_update(channel="C1", ts=parent["ts"], text="Closed")
        await client.chat_postEphemeral(channel="C1", user="U1", text="Only you")
        async with httpx.AsyncClient() as http:
            assert (await http.post(local.response_url("U2", "C1"), json={"text": "Refused"})).status_code == 200
            assert (await http.post(f"{local.base_url}/response/unknown", json={"text": "x"})).status_code == 404
        thread = await client.conversations_replies(channel="C1", ts=parent["ts"])
        with pytest.raises(SlackApiError, match="channel_not_found"):
            await client.chat_postMessage(channel="", text="Nowhere")
    assert [m["text"] for m in thread["messages"]] == ["Closed", "Ready"]
    assert shown == [
        ("post", None, "Started"),
        ("reply", None, "Ready"),
        ("update", None, "Closed"),
        ("ephemeral", "U1", "Only you"),
        ("ephemeral", "U2", "Refused"),
    ]
    assert [m.text for m in local.messages.values()] == ["Closed", "Ready"]
    assert issubclass(FakeSlack, LocalSlack)


def test_signature_headers_verify() -> None:
    """Headers from slack_headers pass slack_sdk's verifier, and fail with another secret."""
    body = slash_body("a@example.com", user="U1", channel="C1", response_url="http://127.0.0.1/r")
    headers = slack_headers(body, "s3cret")
    assert SignatureVerifier("s3cret").is_valid_request(body, headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    assert parse_qs(body)["command"] == ["/data-request"]


def test_block_actions_body_carries_the_click() -> None:
    """A click body names the button, the message and the thread the way Bolt reads them."""
    body = block_actions_body(
        user="U1",
        channel="C1",
        message_ts="1.2",
        action_id="download",
        value="task-1",
        block_id="b",
        response_url="http://127.0.0.1/r",
        thread_ts="1.1",
    )
    payload = json.loads(parse_qs(body)["payload"][0])
    assert payload["actions"][0]["value"] == "task-1"
    assert payload["container"]["thread_ts"] == payload["message"]["thread_ts"] == "1.1"


async def test_start_gate_lets_the_task_exist_before_the_start_returns(prime: FakePrime, amazon: Amazon) -> None:
    """With start_gate unset, the task (of either kind) is there, and can finish, while the start answer is held."""
    prime.start_gate = asyncio.Event()
    calls = [asyncio.create_task(start(amazon)), asyncio.create_task(start_deletion(amazon, hold=2))]
    await prime.wait_for(lambda: prime.holding == 2)
    assert not any(call.done() for call in calls)
    retrieval, deletion = prime.retrieval_tasks() + prime.deletion_tasks()
    prime.complete(retrieval)
    prime.start_gate.set()
    assert [await call for call in calls] == [retrieval, deletion]
