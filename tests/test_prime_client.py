"""The Buy with Prime client against a real fake Amazon on loopback: tokens, retries, errors, documents."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fakes import FakePrime
from harness import SettableClock

from bot.redaction import Redactor
from core import PrimeRejected, PrimeUnavailable, RetryPolicy
from prime import RETRIEVAL, PrimeClient
from store import TaskError

START = "startPersonalDataRetrievalTask"
QUERY = "personalDataRetrievalTask"
EMAIL = "jane.shopper@example.com"
ATTEMPTS = 4
BASE, CAP = 0.5, 8.0


@dataclass
class Rig:
    """A PrimeClient, what it sent over the wire, and the waits it asked for instead of sleeping them."""

    client: PrimeClient
    clock: SettableClock
    redactor: Redactor
    sleeps: list[float] = field(default_factory=list)
    sent: list[httpx.Request] = field(default_factory=list)

    def graphql(self) -> list[httpx.Request]:
        return [r for r in self.sent if r.url.path.endswith("/graphql")]

    def bearers(self) -> list[str]:
        return [r.headers["authorization"].removeprefix("Bearer ") for r in self.graphql()]

    async def start(self, email: str = EMAIL, client_token: str | None = None) -> str:
        return await self.client.start_task(RETRIEVAL, email=email, client_token=client_token or str(uuid.uuid4()))


@asynccontextmanager
async def make_rig(
    prime: FakePrime,
    *,
    attempts: int = ATTEMPTS,
    http_timeout: float = 5.0,
    api_url: str | None = None,
    token_url: str | None = None,
    target_id: str | None = None,
    client_secret: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Rig]:
    """A client wired to ``prime`` (or to the given URLs), with recorded sleeps and a hand-moved clock."""
    sleeps: list[float] = []
    sent: list[httpx.Request] = []
    redactor = Redactor()

    async def record_sleep(delay: float) -> None:
        sleeps.append(delay)

    async def record_request(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(
        timeout=http_timeout, transport=transport, event_hooks={"request": [record_request]}
    ) as http:
        clock = SettableClock(1_700_000_000.0)
        client = PrimeClient(
            http=http,
            api_url=api_url or prime.api_url,
            token_url=token_url or prime.token_url,
            client_id=prime.client_id,
            client_secret=client_secret or prime.client_secret,
            target_id=target_id or prime.target_id,
            api_version="2024-11-01",
            retry=RetryPolicy(attempts=attempts, base=BASE, cap=CAP, sleep=record_sleep),
            clock=clock,
            on_secret=redactor.add_secret,
        )
        yield Rig(client, clock, redactor, sleeps, sent)


@pytest.fixture
async def prime() -> AsyncIterator[FakePrime]:
    async with FakePrime() as fake:
        yield fake
        assert not fake.invalid, fake.invalid


@pytest.fixture
async def rig(prime: FakePrime) -> AsyncIterator[Rig]:
    async with make_rig(prime) as built:
        yield built


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def assert_backoff(sleeps: list[float], count: int) -> None:
    """``count`` waits, each the backoff rule's for its attempt (doubling, up to half again), none above the cap."""
    assert len(sleeps) == count, sleeps
    for attempt, delay in enumerate(sleeps):
        assert min(CAP, BASE * 2**attempt) <= delay <= min(CAP, 1.5 * BASE * 2**attempt), (attempt, sleeps)


# ----------------------------------------------------------------------------- tokens


async def test_token_is_fetched_once_and_reused_across_calls(prime: FakePrime, rig: Rig) -> None:
    """Three calls in a row share one OAuth token."""
    task_id = await rig.start()
    await rig.client.task(RETRIEVAL, task_id)
    await rig.client.task(RETRIEVAL, task_id)
    assert prime.token_requests == 1
    assert len(set(rig.bearers())) == 1


async def test_twenty_concurrent_calls_on_a_cold_cache_fetch_one_token(prime: FakePrime, rig: Rig) -> None:
    """Concurrent callers wait for the one refresh in flight instead of each fetching a token."""
    task_ids = await asyncio.gather(*(rig.start(f"shopper{n}@example.com") for n in range(20)))
    assert len(set(task_ids)) == 20
    assert prime.token_requests == 1


async def test_token_close_to_expiry_is_refreshed_before_use(prime: FakePrime, rig: Rig) -> None:
    """Once the clock passes the token's lifetime (less a margin), the next call fetches a new one first."""
    task_id = await rig.start()
    rig.clock.now += prime.token_ttl - 30
    await rig.client.task(RETRIEVAL, task_id)
    assert prime.token_requests == 2
    first, second = rig.bearers()
    assert first != second
    assert rig.sleeps == []  # refreshed ahead of time, not after a refusal


async def test_token_refused_with_401_is_replaced_and_the_call_succeeds(prime: FakePrime, rig: Rig) -> None:
    """A token Amazon revokes early is dropped; the retry fetches a new one and gets the answer."""
    task_id = await rig.start()
    prime.expire_tokens()
    state = await rig.client.task(RETRIEVAL, task_id)
    assert (state.task_id, state.status, state.link) == (task_id, "IN_PROGRESS", None)
    assert prime.token_requests == 2
    assert len(rig.sleeps) == 1


async def test_a_late_401_for_a_replaced_token_keeps_the_new_token(prime: FakePrime) -> None:
    """Two calls refused with the same old token cause one refresh: the late refusal keeps the new token."""
    issued: list[str] = []
    old_token_uses = 0
    second_sent, new_token_used = asyncio.Event(), asyncio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        nonlocal old_token_uses
        if request.url.path == "/token":
            issued.append(f"tok-mock-{len(issued):016d}")
            return httpx.Response(200, json={"access_token": issued[-1], "expires_in": 900})
        if request.headers["authorization"] != f"Bearer {issued[0]}":
            new_token_used.set()
            return httpx.Response(200, json={"data": {QUERY: {"taskId": "t-1", "status": "IN_PROGRESS"}}})
        old_token_uses += 1
        use = old_token_uses
        if use == 2:  # both calls are in flight with the old token before either is refused
            await second_sent.wait()
        elif use == 3:  # the second refusal arrives after the first call retried with a new token
            second_sent.set()
            await new_token_used.wait()
        if use > 1:
            return httpx.Response(401, json={"message": "Unauthorized"})
        return httpx.Response(200, json={"data": {QUERY: {"taskId": "t-1", "status": "IN_PROGRESS"}}})

    async with make_rig(prime, transport=httpx.MockTransport(handle)) as rig:
        await rig.client.task(RETRIEVAL, "t-1")  # warm: the old token is cached
        await asyncio.gather(rig.client.task(RETRIEVAL, "t-1"), rig.client.task(RETRIEVAL, "t-1"))
    assert len(issued) == 2, issued


async def test_wrong_client_secret_is_an_outage_for_the_operator_not_retried_in_the_call(prime: FakePrime) -> None:
    """Refused credentials (rotated, or wrong) are not a verdict on the request: PrimeUnavailable that needs
    the operator, raised after one token request (the caller backs off), naming the settings to fix."""
    async with make_rig(prime, client_secret="not-the-secret") as rig:
        with pytest.raises(PrimeUnavailable, match="BWP_CLIENT_SECRET") as caught:
            await rig.start()
    assert caught.value.needs_operator and not caught.value.reached
    assert prime.token_requests == 1
    assert rig.sleeps == [] and not prime.starts()


async def test_access_token_is_registered_with_the_log_redactor(prime: FakePrime, rig: Rig) -> None:
    """Once fetched, the token is masked by the redactor the log handlers use."""
    await rig.start()
    (token,) = set(rig.bearers())
    assert token not in rig.redactor(token)
    assert token not in rig.redactor(f"GET /graphql with {token} failed")


# ----------------------------------------------------------------------------- retries

RETRYABLE = ["500", "502", "503", "429", "throttle", "internal"]


@pytest.mark.parametrize("mode", RETRYABLE)
async def test_retryable_failure_then_success_starts_one_task(prime: FakePrime, rig: Rig, mode: str) -> None:
    """HTTP 5xx, 429, throttling and internal errors are retried with backoff until Amazon answers."""
    prime.fail_next[START] = [mode] * (ATTEMPTS - 1)
    task_id = await rig.start()
    assert list(prime.tasks) == [task_id]
    assert len(prime.starts()) == ATTEMPTS
    assert_backoff(rig.sleeps, ATTEMPTS - 1)


@pytest.mark.parametrize("mode", RETRYABLE)
async def test_retryable_failure_every_time_ends_in_prime_unavailable(prime: FakePrime, rig: Rig, mode: str) -> None:
    """After ``attempts`` tries the caller gets PrimeUnavailable, never more requests than that."""
    prime.fail_next[START] = [mode] * ATTEMPTS
    with pytest.raises(PrimeUnavailable) as caught:
        await rig.start()
    assert caught.value.kind in {f"HTTP {mode}", "ThrottlingError", "InternalServerError"}
    assert len(prime.starts()) == ATTEMPTS
    assert_backoff(rig.sleeps, ATTEMPTS - 1)


async def test_backoff_doubles_per_attempt_up_to_the_cap(prime: FakePrime, monkeypatch: pytest.MonkeyPatch) -> None:
    """With jitter at its floor the waits read 0.5, 1, 2, 4, 8, then stay at the cap."""
    monkeypatch.setattr(random, "uniform", lambda low, _high: low)  # jitter pinned at its floor
    prime.fail_next[START] = ["503"] * 8
    async with make_rig(prime, attempts=8) as rig:
        with pytest.raises(PrimeUnavailable):
            await rig.start()
    assert rig.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


async def test_timeouts_are_retried_and_end_in_prime_unavailable(prime: FakePrime) -> None:
    """An answer that never comes is a Timeout; each retry reuses the clientToken, so one task exists."""
    prime.fail_next[START] = ["timeout"] * 3
    async with make_rig(prime, attempts=3, http_timeout=0.2) as rig:
        with pytest.raises(PrimeUnavailable) as caught:
            await rig.start()
    assert caught.value.kind == "Timeout"
    assert_backoff(rig.sleeps, 2)
    assert len(prime.tasks) == 1
    assert len({s["variables"]["input"]["clientToken"]["token"] for s in prime.starts()}) == 1


@pytest.mark.parametrize("refused", ["graphql", "token"])
async def test_connection_refused_is_retried_then_prime_unavailable(prime: FakePrime, refused: str) -> None:
    """Nobody listening, at either endpoint, is a network error: retried with backoff, then PrimeUnavailable."""
    closed = closed_port_url()
    urls = {"api_url": closed + "/graphql"} if refused == "graphql" else {"token_url": closed + "/token"}
    async with make_rig(prime, **urls) as rig:
        with pytest.raises(PrimeUnavailable) as caught:
            await rig.start()
    assert caught.value.kind == "ConnectError"
    assert_backoff(rig.sleeps, ATTEMPTS - 1)
    assert len(rig.sent) == ATTEMPTS + (1 if refused == "graphql" else 0)  # + the one token that worked


async def test_task_created_then_500_gives_one_task_and_the_same_client_token(prime: FakePrime, rig: Rig) -> None:
    """Amazon made the task but answered 500: the retry sends the same clientToken and gets that task back."""
    prime.fail_next[START] = ["task-then-500"]
    token = str(uuid.uuid4())
    task_id = await rig.start(client_token=token)
    assert list(prime.tasks) == [task_id]
    sent_tokens = [s["variables"]["input"]["clientToken"]["token"] for s in prime.starts()]
    assert sent_tokens == [token, token]


def _answer_503_with_retry_after(value: str) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": "tok-mock-0123456789", "expires_in": 900})
        return httpx.Response(503, headers={"retry-after": value}, json={"message": "Service Unavailable"})

    return httpx.MockTransport(handle)


async def test_retry_after_in_seconds_is_honoured(prime: FakePrime) -> None:
    """A 503 that asks for 3 s of patience gets at least 3 s before each retry."""
    async with make_rig(prime, transport=_answer_503_with_retry_after("3")) as rig:
        with pytest.raises(PrimeUnavailable):
            await rig.start()
    assert len(rig.sleeps) == ATTEMPTS - 1
    assert all(delay >= 3 for delay in rig.sleeps)


@pytest.mark.parametrize("value", ["1.5", "-1", "soon", "Wed, 99 Foo 2015 07:28:00 GMT"])
async def test_odd_retry_after_is_still_a_retryable_503(prime: FakePrime, value: str) -> None:
    """A fractional, negative or unreadable Retry-After never breaks the retry: it ends in PrimeUnavailable."""
    async with make_rig(prime, transport=_answer_503_with_retry_after(value)) as rig:
        with pytest.raises(PrimeUnavailable):
            await rig.start()
    assert len(rig.sleeps) == ATTEMPTS - 1


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("mode", "email", "kind", "message"),
    [
        ("validation", EMAIL, "ValidationError", "Input request is not valid"),
        (None, "not-an-email", "ValidationError", "dataSubject.email"),  # Amazon's own check of the email
    ],
)
async def test_refusals_are_prime_rejected_after_one_request(
    prime: FakePrime, rig: Rig, mode: str | None, email: str, kind: str, message: str
) -> None:
    """Amazon's verdict on the request (validation) is not retried, and the caller can read what Amazon said."""
    prime.fail_next[START] = [mode] if mode else []
    with pytest.raises(PrimeRejected) as caught:
        await rig.start(email)
    assert caught.value.kind == kind
    assert message in str(caught.value)
    assert len(prime.starts()) == 1
    assert not prime.tasks and rig.sleeps == []


# ----------------------------------------------------------------------------- task queries


async def test_completed_task_comes_with_a_link_valid_for_60_seconds_from_the_ask(prime: FakePrime, rig: Rig) -> None:
    """The link is Amazon's fresh one, and its expiry counts from when the client asked."""
    task_id = await rig.start()
    prime.complete(task_id)
    asked_at = rig.clock.now = rig.clock.now + 10
    state = await rig.client.task(RETRIEVAL, task_id)
    assert state.status == "COMPLETED" and state.errors == ()
    assert state.link == prime.links[-1][1]
    assert state.link_expires_at == asked_at + 60
    assert "X-Amz" not in repr(state)


async def test_failed_task_comes_with_amazons_error_codes(prime: FakePrime, rig: Rig) -> None:
    """A FAILED task carries each TaskError code and message, and no link."""
    task_id = await rig.start()
    prime.fail(task_id, code="ORDERS_NOT_CLOSED", message="The shopper has open orders")
    state = await rig.client.task(RETRIEVAL, task_id)
    assert state.status == "FAILED"
    assert state.errors == (TaskError(code="ORDERS_NOT_CLOSED", message="The shopper has open orders"),)
    assert state.link is None and state.link_expires_at is None


async def test_unknown_task_is_rejected_as_resource_not_found(prime: FakePrime, rig: Rig) -> None:
    """Asking for a task Amazon never made is PrimeRejected(ResourceNotFoundError), asked once."""
    with pytest.raises(PrimeRejected) as caught:
        await rig.client.task(RETRIEVAL, str(uuid.uuid4()))
    assert caught.value.kind == "ResourceNotFoundError"
    assert len(prime.queries()) == 1 and rig.sleeps == []


# ----------------------------------------------------------------------------- what goes over the wire


async def test_documents_are_schema_valid_and_the_email_travels_only_in_variables(prime: FakePrime, rig: Rig) -> None:
    """Start, query and a retried start all pass the schema check, and the email is never in a document."""
    prime.fail_next[START] = ["503"]
    task_id = await rig.start()
    prime.complete(task_id)
    await rig.client.task(RETRIEVAL, task_id)
    assert prime.invalid == []
    bodies: list[dict[str, Any]] = [json.loads(r.content) for r in rig.graphql()]
    assert len(bodies) == 3
    for body in bodies:
        assert EMAIL not in body["query"]
    assert [b["variables"]["input"]["dataSubject"]["email"] for b in bodies[:2]] == [EMAIL, EMAIL]
    assert bodies[2]["variables"] == {"taskId": task_id}


async def test_target_id_and_api_version_headers_are_sent_and_checked(prime: FakePrime, rig: Rig) -> None:
    """Each GraphQL request carries the configured x-api-target-id and x-api-version; another id is denied."""
    await rig.start()
    (request,) = rig.graphql()
    assert request.headers["x-api-target-id"] == prime.target_id
    assert request.headers["x-api-version"] == "2024-11-01"
    async with make_rig(prime, target_id="amzn1.bp.someone-else") as other:
        with pytest.raises(PrimeUnavailable) as caught:
            await other.start()
    assert caught.value.kind == "AccessDeniedError" and caught.value.needs_operator
    assert other.sleeps == []


def test_amazon_messages_are_scrubbed_of_email_addresses() -> None:
    """Amazon's error words are stored and posted in the thread, so any email in them is masked first."""
    from core import scrub

    assert scrub("Input request is not valid: email jane.doe@example.com") == (
        "Input request is not valid: email j***@example.com"
    )
    assert scrub("The shopper email for this request does not exist") == (
        "The shopper email for this request does not exist"
    )
