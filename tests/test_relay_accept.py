"""The relay's decision as a unit: ``accept`` over a temp store, no web server, every answer it can give.

401 for the key, 400 for the shape, 413 for the size, ``ignored`` for an event type the bot does not act
on, ``stored`` and ``duplicate``, and 500 when the database refuses the write: each with what it counts,
what it keeps and whom it wakes. tests/test_relay.py drives the same decisions over HTTP.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from harness import envelope, webhook

from core import RelayRejected
from handlers.kinds.registry import KINDS
from handlers.relay import RelayAnswer, WrongKeys, accept
from store import EmailCipher, Store

KEY = "relay-key-0123456789abcdef"
COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"
TASK = "8c1f7a52-3d1e-4c55-9a0e-5b9f2f0d4e11"


@dataclass
class Relay:
    """``accept`` over one temp store, counting what it counts and how often it wakes the inbox."""

    store: Store
    path: Path
    counted: list[str] = field(default_factory=list)
    woken: int = 0
    reads: int = 0
    wrong_keys: WrongKeys = field(default_factory=WrongKeys)

    def relay_event(self, result: str) -> None:
        self.counted.append(result)

    def wake(self) -> None:
        self.woken += 1

    async def post(self, body: object, *, headers: dict[str, str] | None = None) -> RelayAnswer:
        """Hand ``accept`` one request: ``body`` as JSON (bytes as they are), the key as x-api-key by default."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()

        async def read_body() -> bytes:
            self.reads += 1
            return raw

        return await self.accept(read_body, headers={"x-api-key": KEY} if headers is None else headers)

    async def accept(self, read_body: object, *, headers: dict[str, str]) -> RelayAnswer:
        return await accept(
            inbox=self.store.inbox,
            api_key=KEY,
            headers=headers,
            read_body=read_body,  # type: ignore[arg-type]
            on_stored=self.wake,
            counters=self,
            wrong_keys=self.wrong_keys,
            kinds=KINDS,
        )

    def kept(self) -> list[tuple[str, str, str]]:
        """The events in the inbox, read straight from the database file: (event id, type, task id)."""
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as db:
            return list(db.execute("SELECT event_id, event_type, task_id FROM inbox ORDER BY received_at"))


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    path = tmp_path / "requests.db"
    store = await Store.open(path, cipher=EmailCipher(os.urandom(32)))
    try:
        yield Relay(store, path)
    finally:
        await store.close()


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": "wrong"}, {"x-api-key": KEY[:-1]}, {"authorization": f"Bearer {KEY}"}],
    ids=["no key", "wrong key", "key cut short", "bearer"],
)
async def test_without_the_key_it_is_401_and_the_body_is_never_read(relay: Relay, headers: dict[str, str]) -> None:
    """No key or a wrong one is 401, counted as unauthorized; the body is not even read, nothing is kept."""
    answer = await relay.post(envelope(COMPLETED, TASK), headers=headers)
    assert answer == RelayAnswer(401, {"error": "missing or wrong API key"})
    assert (relay.counted, relay.reads, relay.kept(), relay.woken) == (["unauthorized"], 0, [], 0)


async def test_the_key_as_a_basic_password_is_accepted(relay: Relay) -> None:
    """EventBridge's Basic auth carries the key as the password: that is the key."""
    basic = "Basic " + base64.b64encode(f"eventbridge:{KEY}".encode()).decode()
    answer = await relay.post(envelope(COMPLETED, TASK, event_id="evt-basic"), headers={"authorization": basic})
    assert answer == RelayAnswer(200, {"status": "stored"})


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", {"id": "evt-1"}, {**envelope(COMPLETED, TASK), "resources": ["businessProduct/x"]}],
    ids=["not json", "not an object", "neither shape", "no task in resources"],
)
async def test_a_body_that_is_not_an_event_is_400(relay: Relay, body: object) -> None:
    """What is not one of the two event shapes is 400 with the reason, counted as malformed, and not kept."""
    answer = await relay.post(body)
    assert answer.status == 400 and answer.body["error"]
    assert (relay.counted, relay.kept(), relay.woken) == (["malformed"], [], 0)


async def test_a_body_over_the_limit_is_413(relay: Relay) -> None:
    """The server's reader refuses a body over its limit (413): the answer says so, and it counts as too large."""

    async def too_large() -> bytes:
        raise RelayRejected(413, "the body is larger than 262144 bytes")

    answer = await relay.accept(too_large, headers={"x-api-key": KEY})
    assert answer == RelayAnswer(413, {"error": "the body is larger than 262144 bytes"})
    assert (relay.counted, relay.kept(), relay.woken) == (["too_large"], [], 0)


async def test_a_wrong_key_with_a_body_over_the_limit_is_401(relay: Relay) -> None:
    """The key comes first: a sender without it learns nothing about sizes, and the body is never read."""

    async def too_large() -> bytes:
        raise RelayRejected(413, "the body is larger than 262144 bytes")

    answer = await relay.accept(too_large, headers={"x-api-key": "wrong"})
    assert answer.status == 401 and relay.counted == ["unauthorized"]


async def test_an_event_type_the_bot_does_not_act_on_is_ignored_not_kept(relay: Relay) -> None:
    """Another event type is answered 200 ``ignored`` (so the sender stops retrying), and not kept or acted on."""
    answer = await relay.post(envelope("ORDER_FULFILLED", TASK))
    assert answer == RelayAnswer(200, {"status": "ignored"})
    assert (relay.counted, relay.kept(), relay.woken) == (["ignored"], [], 0)


@pytest.mark.parametrize("shape", [envelope, webhook], ids=["eventbridge envelope", "webhook body"])
async def test_an_event_is_stored_before_it_is_answered_and_wakes_the_inbox(relay: Relay, shape: object) -> None:
    """A retrieval event is kept (id, type, task) before the 200 ``stored`` goes out, and the inbox is woken once."""
    answer = await relay.post(shape(COMPLETED, TASK, event_id="evt-1"))  # type: ignore[operator]
    assert answer == RelayAnswer(200, {"status": "stored"})
    assert relay.kept() == [("evt-1", COMPLETED, TASK)]
    assert (relay.counted, relay.woken) == (["stored"], 1)


async def test_the_same_event_again_is_a_duplicate_kept_once_woken_once(relay: Relay) -> None:
    """A re-delivery (same event id) is answered 200 ``duplicate``: kept once, the inbox woken once."""
    event = envelope(COMPLETED, TASK, event_id="evt-again")
    assert (await relay.post(event)).body == {"status": "stored"}
    assert await relay.post(event) == RelayAnswer(200, {"status": "duplicate"})
    assert len(relay.kept()) == 1
    assert (relay.counted, relay.woken) == (["stored", "duplicate"], 1)


async def test_when_the_database_refuses_the_write_it_is_500_and_the_retry_is_stored(relay: Relay) -> None:
    """A refused write is the one 5xx (the sender keeps the event and retries); the retry, once writes work
    again, is stored like a first delivery."""
    connection = relay.store._database.connection
    event = envelope(COMPLETED, TASK, event_id="evt-retried")
    await connection.execute("PRAGMA query_only = 1")  # SQLite refuses every write, as on a full disk
    answer = await relay.post(event)
    assert answer == RelayAnswer(500, {"error": "the event could not be stored; retry later"})
    assert (relay.counted, relay.woken) == (["not_stored"], 0)
    await connection.execute("PRAGMA query_only = 0")
    assert await relay.post(event) == RelayAnswer(200, {"status": "stored"})
    assert relay.kept() == [("evt-retried", COMPLETED, TASK)] and relay.woken == 1
