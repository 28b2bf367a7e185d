"""The event relay over HTTP, as an EventBridge API destination drives it: keys, limits, validation, dedup."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import buttons
from harness import RELAY_KEY, Harness, envelope, running_bot, webhook

COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"
OTHER = "ORDER_FULFILLED"  # an event type of no kind the bot runs
ROUTE = "/buy-with-prime/events"
LIMIT = 256 * 1024
TASK = "8c1f7a52-3d1e-4c55-9a0e-5b9f2f0d4e11"


def stored_events(bot: Harness) -> list[str]:
    """The event ids in the bot's inbox, read straight from its database file."""
    uri = f"file:{bot.settings.database_path}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        return [row[0] for row in db.execute("SELECT event_id FROM inbox ORDER BY received_at")]


async def post(bot: Harness, content: Any, headers: dict[str, Any]) -> httpx.Response:
    """POST raw content to the relay with exactly these headers."""
    return await bot.http.post(bot.url + ROUTE, content=content, headers=headers)


def basic(password: str, user: str = "eventbridge") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ----------------------------------------------------------------------------- the key


async def test_wrong_or_missing_key_is_refused_with_401_and_nothing_is_stored(bot: Harness) -> None:
    """A wrong x-api-key, no key at all and a wrong Basic password are all 401, and store nothing."""
    event = envelope(COMPLETED, TASK)
    refused = [
        await bot.relay(event, key="wrong-key"),
        await bot.relay(event, key=None),
        await bot.relay(event, key="wrong-key", basic=True),
        await bot.relay(event, key=RELAY_KEY[:-1]),
        await post(bot, json.dumps(event), {"authorization": "Basic !!not-base64!!"}),
        await post(bot, json.dumps(event), {"authorization": f"Bearer {RELAY_KEY}"}),
    ]
    assert [r.status_code for r in refused] == [401] * len(refused)
    assert stored_events(bot) == []
    assert (await bot.relay(event)).json() == {"status": "stored"}  # the same event id was never kept


async def test_wrong_keys_are_one_warning_per_episode_not_a_line_per_request(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Three requests with a wrong key: one WARNING naming RELAY_API_KEY, and no line for the other two; the right
    key ends the episode (one INFO line with the count), and the next wrong key warns again."""
    event = envelope(COMPLETED, TASK)
    with caplog.at_level(logging.DEBUG, logger="handlers.relay"):
        for _ in range(3):
            assert (await bot.relay(event, key="wrong-key")).status_code == 401
        assert (await bot.relay(envelope(OTHER, TASK))).status_code == 200
        assert (await bot.relay(event, key=None)).status_code == 401
    about_keys = [(r.levelname, r.getMessage()) for r in caplog.records if "key" in r.getMessage()]
    assert [level for level, _ in about_keys] == ["WARNING", "INFO", "WARNING"], about_keys
    assert "RELAY_API_KEY" in about_keys[0][1]
    assert "after 3 refused" in about_keys[1][1]


async def test_key_as_x_api_key_header_is_accepted(bot: Harness) -> None:
    """The key sent as ``x-api-key`` stores the event."""
    response = await bot.relay(envelope(COMPLETED, TASK, event_id="evt-header"))
    assert (response.status_code, response.json()) == (200, {"status": "stored"})
    assert stored_events(bot) == ["evt-header"]


async def test_key_as_basic_password_is_accepted(bot: Harness) -> None:
    """The key sent as the password of HTTP Basic auth stores the event."""
    response = await bot.relay(envelope(COMPLETED, TASK, event_id="evt-basic"), basic=True)
    assert (response.status_code, response.json()) == (200, {"status": "stored"})
    assert stored_events(bot) == ["evt-basic"]


async def test_header_name_case_does_not_matter(bot: Harness) -> None:
    """``X-API-Key`` is the same header as ``x-api-key``."""
    response = await post(bot, json.dumps(envelope(COMPLETED, TASK)), {"X-API-Key": RELAY_KEY})
    assert (response.status_code, response.json()) == (200, {"status": "stored"})


async def test_key_that_is_not_utf8_is_401_not_500(bot: Harness) -> None:
    """Bytes that are not text in the key header are a wrong key, not a server error."""
    response = await post(bot, json.dumps(envelope(COMPLETED, TASK)), {"x-api-key": b"\xff\xfe"})
    assert response.status_code == 401


async def test_non_ascii_basic_credentials_are_401(bot: Harness) -> None:
    """Credentials that are not base64 at all (here: not even ASCII) are a wrong key, not a server error."""
    response = await post(bot, json.dumps(envelope(COMPLETED, TASK)), {"authorization": "Basic é€".encode()})
    assert response.status_code == 401


async def test_relay_route_answers_404_when_no_key_is_configured(tmp_path: Path) -> None:
    """Without RELAY_API_KEY the relay does not exist, whatever key is presented; health still answers."""
    async with running_bot(tmp_path, relay_api_key=None) as bot:
        assert (await bot.relay(envelope(COMPLETED, TASK))).status_code == 404
        assert (await bot.relay(envelope(COMPLETED, TASK), key=None)).status_code == 404
        assert (await bot.http.get(bot.url + "/healthz")).status_code == 200
        assert stored_events(bot) == []


# ----------------------------------------------------------------------------- size


def padded_event(size: int) -> bytes:
    """A valid envelope padded with whitespace to exactly ``size`` bytes."""
    raw = json.dumps(envelope(COMPLETED, TASK)).encode()
    return raw + b" " * (size - len(raw))


async def test_body_over_256_kib_is_413(bot: Harness) -> None:
    """One byte over EventBridge's limit, with a Content-Length, is 413 and stores nothing."""
    response = await bot.relay(padded_event(LIMIT + 1))
    assert response.status_code == 413
    assert stored_events(bot) == []


async def test_chunked_body_over_256_kib_is_413(bot: Harness) -> None:
    """Without a Content-Length (chunked transfer) the limit still holds while reading."""
    body = padded_event(LIMIT + 1)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    response = await post(bot, chunks(), {"x-api-key": RELAY_KEY})
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413
    assert stored_events(bot) == []


async def test_body_of_exactly_256_kib_is_accepted(bot: Harness) -> None:
    """The limit itself is allowed: an event of exactly 256 KiB is stored."""
    response = await bot.relay(padded_event(LIMIT))
    assert (response.status_code, response.json()) == (200, {"status": "stored"})


# ----------------------------------------------------------------------------- validation


def _with(**changes: Any) -> dict[str, Any]:
    event = envelope(COMPLETED, TASK)
    event.update(changes)
    return {k: v for k, v in event.items() if v is not None}


MALFORMED: dict[str, bytes | str | dict[str, Any]] = {
    "not JSON": b"this is not json",
    "empty": b"",
    "not UTF-8": b'{"id": "\xff\xfe"}',
    "a JSON array": json.dumps([envelope(COMPLETED, TASK)]),
    "a JSON string": '"hello"',
    "neither shape": {"hello": "world", "resources": []},
    "envelope without id": _with(id=None),
    "id not a string": _with(id=12345),
    "id with spaces": _with(id="an id with spaces"),
    "id of 500 chars": _with(id="e" * 500),
    "detail-type with spaces": _with(**{"detail-type": "PERSONAL DATA"}),
    "detail not an object": _with(detail=["x"]),
    "resources without a task": _with(resources=["businessProduct/amzn1.bp.test/order/123"]),
    "no resources at all": _with(resources=None),
    "resources not a list": _with(resources=f"businessProduct/amzn1.bp.test/personalDataRetrievalTask/{TASK}"),
    "resources not strings": _with(resources=[{"task": TASK}, 7]),
    "task id unsafe": _with(resources=["businessProduct/x/personalDataRetrievalTask/a b"]),
    "webhook without id": {k: v for k, v in webhook(COMPLETED, TASK).items() if k not in ("eventId", "idempotencyKey")},
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_body_is_400_and_not_stored(bot: Harness, body: bytes | str | dict[str, Any]) -> None:
    """Anything that is not a well-formed event is the sender's fault: 400 with a reason, and nothing kept."""
    response = await bot.relay(body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    assert stored_events(bot) == []


async def test_id_with_a_trailing_newline_is_400(bot: Harness) -> None:
    """An id is checked to its last character: a trailing newline is malformed, not a new id."""
    response = await bot.relay(_with(id="evt-1\n"))
    assert response.status_code == 400


@pytest.mark.parametrize(
    "body",
    [envelope(OTHER, TASK), envelope("SOMETHING_AMAZON_ADDS_LATER", TASK), webhook(OTHER, TASK)],
    ids=["other envelope", "unknown detail-type", "other webhook"],
)
async def test_event_types_the_bot_does_not_act_on_are_acknowledged_and_not_stored(
    bot: Harness, body: dict[str, Any]
) -> None:
    """Event types of no kind the bot runs are 200 "ignored", so EventBridge does not retry them; nothing is kept."""
    response = await bot.relay(body)
    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    assert stored_events(bot) == []


# ----------------------------------------------------------------------------- duplicates


async def test_same_event_ten_times_is_stored_once_and_replied_once(bot: Harness) -> None:
    """Redelivery of one event id is "duplicate" after the first, and the thread gets one completion reply."""
    task_id, parent = await bot.request("jane@example.com")
    bot.prime.complete(task_id)
    event = envelope(COMPLETED, task_id, event_id="evt-once")
    statuses = [(await bot.relay(event)).json()["status"] for _ in range(10)]
    assert statuses == ["stored"] + ["duplicate"] * 9
    await bot.download_reply(parent)
    assert stored_events(bot) == ["evt-once"]
    assert await bot.runtime.store.inbox.pending() == []
    assert len([p for p in bot.replies(parent["ts"]) if buttons(p)]) == 1


async def test_same_event_ten_times_at_once_is_stored_once(bot: Harness) -> None:
    """Concurrent redeliveries race to the inbox, and exactly one of them wins."""
    event = envelope(COMPLETED, TASK, event_id="evt-race")
    responses = await asyncio.gather(*(bot.relay(event) for _ in range(10)))
    assert sorted(r.json()["status"] for r in responses) == ["duplicate"] * 9 + ["stored"]
    assert stored_events(bot) == ["evt-race"]


# ----------------------------------------------------------------------------- robustness


def garbage(rng: random.Random) -> bytes:
    """One body of a random kind: noise, cut-off JSON, type confusion, huge numbers, odd unicode."""
    valid = json.dumps(envelope(COMPLETED, TASK)).encode()
    odd_values: list[Any] = [None, True, 0, -1, 1e308, [], {}, "", "é" * 50, "\u202e", "\x00", [[[]]], {"a": {}}]
    kind = rng.randrange(8)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 4096))
    if kind == 1:
        return valid[: rng.randrange(len(valid))]
    if kind == 2:
        flipped = bytearray(valid)
        for _ in range(rng.randrange(1, 8)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        return bytes(flipped)
    if kind == 3:
        event = envelope(COMPLETED, TASK)
        event[rng.choice(list(event))] = rng.choice(odd_values)
        return json.dumps(event).encode()
    if kind == 4:
        number = rng.choice(["9" * 5000, "1e999999", "-" + "9" * 4300, "0." + "0" * 5000 + "1", "NaN", "-Infinity"])
        return f'{{"id": {number}, "detail-type": {number}, "resources": [{number}]}}'.encode()
    if kind == 5:
        text = "".join(chr(rng.choice([rng.randrange(32, 0x2FFF), rng.randrange(0x1F300, 0x1FAFF)])) for _ in range(64))
        encoding = rng.choice(["utf-8", "utf-16", "utf-32"])
        return json.dumps({"id": text, "detail-type": COMPLETED, "resources": [text]}, ensure_ascii=False).encode(
            encoding
        )
    if kind == 6:
        return b'{"id": "\\ud800", "detail-type": "\\udfff", "resources": ["\\ud83d"]}'
    depth = rng.randrange(1, 200)  # deep but within the JSON parser's recursion limit: see the test below
    return (b'{"a":' * depth) + b"1" + (b"}" * depth)


async def test_two_hundred_garbage_bodies_never_get_a_5xx(bot: Harness) -> None:
    """Whatever the body, an authenticated sender gets 200 or 400, never a server error."""
    rng = random.Random(20240611)
    for n in range(200):
        body = garbage(rng)
        response = await bot.relay(body)
        assert response.status_code in (200, 400), (n, body[:200], response.text[:200])
    assert (await bot.http.get(bot.url + "/healthz")).json() == {"ok": True}


async def test_json_nested_ten_thousand_levels_deep_is_400(bot: Harness) -> None:
    """A body nested 10000 levels deep is malformed input, answered 400, not a crash."""
    for deep in (b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000):
        assert (await bot.relay(deep)).status_code == 400


async def test_healthz_answers_ok(bot: Harness) -> None:
    """GET /healthz is 200 {"ok": true} while the database is reachable."""
    response = await bot.http.get(bot.url + "/healthz")
    assert (response.status_code, response.json()) == (200, {"ok": True})
