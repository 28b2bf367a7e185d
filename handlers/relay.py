"""The event relay: Amazon's events, checked strictly and stored before they are acknowledged.

Accepted shapes (the two deliveries "Wiring events" in docs/operating.md sets up):

- an EventBridge API destination envelope (``id``, ``detail-type``, ``resources``),
  whose ``detail`` may be empty or hold a webhook body;
- a Buy with Prime webhook body (``eventId``, ``eventDescriptor``, ``resources``).

Events are thin: they only name the task. This module finds the task id and
stores the event; the inbox worker asks Amazon for the task's state. Which event
types the bot acts on, and where their task id is, is each kind's
(``Operations.events``, ``resource_marker``); any other type is answered 2xx and
not stored.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from core import RelayRejected, StoreUnavailable, log_ids
from handlers.kinds import KindFlow
from prime import Operations

__all__ = [
    "EventInbox",
    "RelayAnswer",
    "RelayCounters",
    "RelayEvent",
    "WrongKeys",
    "accept",
    "authorized",
    "parse_event",
]

logger = logging.getLogger(__name__)

_SAFE_ID = re.compile(r"[A-Za-z0-9._:/@+=-]{1,200}")
_SAFE_TYPE = re.compile(r"[A-Za-z0-9._:-]{1,200}")


@dataclass(frozen=True, slots=True)
class RelayEvent:
    """What the bot keeps of an event: its id (to deduplicate), its type, and the task it names.

    ``task_id`` and ``kind`` are None for event types the bot does not act on (answered 2xx, not stored).
    """

    event_id: str
    event_type: str
    task_id: str | None
    kind: str | None = None


def authorized(headers: Mapping[str, str], api_key: str) -> bool:
    """The request carries the relay key as ``x-api-key`` or as the HTTP Basic password.

    ``headers`` must look names up case-insensitively, as aiohttp's request headers do.
    """
    presented = headers.get("x-api-key")
    if presented is None:
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                presented = base64.b64decode(credentials, validate=True).decode().partition(":")[2]
            except (binascii.Error, ValueError):  # not base64, not ASCII, not UTF-8
                presented = None
    if presented is None:
        return False
    # surrogateescape: a header that is not UTF-8 is simply a wrong key, never an error.
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), api_key.encode())


def parse_event(raw: bytes, kinds: Mapping[str, KindFlow]) -> RelayEvent:
    """Read one relayed event; RelayRejected(400) for anything that is not one."""
    by_type = {event: flow.operations for flow in kinds.values() for event in flow.operations.events}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise RelayRejected(400, "the body is not JSON (or is nested too deeply)") from error
    if not isinstance(body, dict):
        raise RelayRejected(400, "the body is not a JSON object")
    if "detail-type" in body:
        return _envelope(body, by_type)
    if "eventDescriptor" in body:
        return _webhook(body, by_type)
    raise RelayRejected(400, "neither an EventBridge envelope nor a Buy with Prime webhook body")


class EventInbox(Protocol):
    """Where an accepted event is kept (the store's ``inbox``): False when this event id was kept before."""

    async def add(self, *, event_id: str, event_type: str, task_id: str) -> bool: ...


class RelayCounters(Protocol):
    """What the relay counts for /metrics (the bot's ``Metrics``), by result."""

    def relay_event(self, result: str) -> None: ...


@dataclass(frozen=True, slots=True)
class RelayAnswer:
    """What the relay answers the sender: an HTTP status and a JSON body."""

    status: int
    body: dict[str, str]


class WrongKeys:
    """Requests refused for their key, told once per episode: a WARNING at the first, a line when the key is right.

    A sender holding a wrong key (EventBridge's connection, after RELAY_API_KEY changed) retries each event
    for a day, and strangers may knock all the time: a line per request would bury the log. The relay's
    counters count every one (``unauthorized``).
    """

    def __init__(self) -> None:
        self.refused = 0  # since the last request with the right key

    def refused_one(self) -> None:
        if not self.refused:
            logger.warning(
                "relay: refused a request with a missing or wrong API key (401); while EventBridge's events are "
                "refused, its connection's key is not RELAY_API_KEY. Further refusals are counted in /metrics, "
                "not logged, until a request brings the right key"
            )
        self.refused += 1

    def right_key(self) -> None:
        if self.refused:
            logger.info("relay: a request with the right API key, after %d refused for theirs", self.refused)
            self.refused = 0


_REFUSED = {401: "unauthorized", 400: "malformed", 408: "too_slow", 413: "too_large"}


async def accept(
    *,
    inbox: EventInbox,
    api_key: str,
    headers: Mapping[str, str],
    read_body: Callable[[], Awaitable[bytes]],
    on_stored: Callable[[], None],
    counters: RelayCounters,
    wrong_keys: WrongKeys,
    kinds: Mapping[str, KindFlow],
) -> RelayAnswer:
    """Refuse one relayed event (4xx), ignore it (2xx), or store it and only then answer 2xx.

    The key is checked before the body is read: ``read_body`` raises RelayRejected(413) once the body
    is known to be too large. A store that refuses the write is the one 5xx (500): the sender keeps
    the event and retries it (EventBridge: for 24 hours). ``on_stored`` says a new event waits. The event
    types taken are those of ``kinds``; any other is ignored. Refusals for the key are logged by
    ``wrong_keys``, once per episode.
    """
    try:
        if not authorized(headers, api_key):
            raise RelayRejected(401, "missing or wrong API key")
        wrong_keys.right_key()
        event = parse_event(await read_body(), kinds)
    except RelayRejected as rejected:
        counters.relay_event(_REFUSED.get(rejected.status, "refused"))
        if rejected.status == 401:
            wrong_keys.refused_one()
        else:
            logger.info("relay: refused with %s (%s)", rejected.status, rejected.reason)
        return RelayAnswer(rejected.status, {"error": rejected.reason})
    if event.task_id is None:
        counters.relay_event("ignored")
        logger.info("relay: event %s of type %s ignored", event.event_id, event.event_type)
        return RelayAnswer(200, {"status": "ignored"})
    try:
        stored = await inbox.add(event_id=event.event_id, event_type=event.event_type, task_id=event.task_id)
    except StoreUnavailable:
        logger.warning("relay: event %s not stored (the database refused the write); answered 500", event.event_id)
        counters.relay_event("not_stored")
        return RelayAnswer(500, {"error": "the event could not be stored; retry later"})
    counters.relay_event("stored" if stored else "duplicate")
    if stored:
        logger.info(
            "relay: event %s stored (%s, task %s)",
            event.event_id,
            event.event_type,
            event.task_id,
            extra={"event_id": event.event_id, **log_ids(task_id=event.task_id)},
        )
        on_stored()
    return RelayAnswer(200, {"status": "stored" if stored else "duplicate"})


def _envelope(body: dict[str, Any], by_type: Mapping[str, Operations]) -> RelayEvent:
    event_id = _string(body, "id", _SAFE_ID)
    event_type = _string(body, "detail-type", _SAFE_TYPE)
    detail = body.get("detail", {})
    if not isinstance(detail, dict):
        raise RelayRejected(400, "'detail' must be an object")
    resources = body.get("resources")
    if not resources and "eventDescriptor" in detail:
        # API version 2024-11-01 may carry the webhook body in detail; EventBridge's id still deduplicates.
        resources = detail.get("resources")
    return _event(event_id, event_type, resources, by_type)


def _webhook(body: dict[str, Any], by_type: Mapping[str, Operations]) -> RelayEvent:
    event_type = _string(body, "eventDescriptor", _SAFE_TYPE)
    key = "eventId" if "eventId" in body else "idempotencyKey"
    event_id = _string(body, key, _SAFE_ID)
    return _event(event_id, event_type, body.get("resources"), by_type)


def _event(event_id: str, event_type: str, resources: Any, by_type: Mapping[str, Operations]) -> RelayEvent:
    operations = by_type.get(event_type)
    if operations is None:
        return RelayEvent(event_id, event_type, None)
    return RelayEvent(event_id, event_type, _task_id(resources, operations), operations.kind)


def _string(body: dict[str, Any], key: str, pattern: re.Pattern[str]) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise RelayRejected(400, f"'{key}' is missing or malformed")
    return value


def _task_id(resources: Any, operations: Operations) -> str:
    """The task id from ``businessProduct/<id>/personalDataRetrievalTask/<taskId>`` (the kind's marker)."""
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise RelayRejected(400, "'resources' must be a list of strings")
    marker = operations.resource_marker
    for resource in resources:
        assert isinstance(resource, str)
        if resource.startswith("businessProduct/") and marker in resource:
            task_id = resource.split(marker, 1)[1].split("/", 1)[0]
            if _SAFE_ID.fullmatch(task_id) and "/" not in task_id:
                return task_id
    raise RelayRejected(400, f"no {operations.task_field} in 'resources'")
