"""Which request a button names, and whether a click on it still means that request.

A button's value is ``<id>.<ref>``: the request's row id and its random reference (``Request.ref``). The id
alone is not enough: a database restored from a backup hands out again the ids of the requests made after
that backup, while their threads, buttons and all, stay in Slack. A reference is never handed out twice, so
such a button names no case. A click on a message posted in a channel must also come from its request's own
thread (the first message or a reply); an ephemeral answer (``status``), the App Home and a form belong to
no thread, and there the reference alone says which request it is. A bare id is a button posted before
values carried a reference: it is taken only in its request's own thread.

The shared buttons' action ids are here too (a kind's own are in its ``rules``). Values are made and read
here alone; ``guard.clicked_request`` turns a click into its request, or a refusal.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any

from store import Request

__all__ = [
    "CLOSE_ACTION",
    "DENY_ACTION",
    "HOME_MORE_ACTION",
    "LIST_MORE_ACTION",
    "VERIFY_ACTION",
    "Named",
    "Pressed",
    "Thread",
    "button_value",
    "form_metadata",
    "mismatch",
    "named",
    "pressed",
    "submitted",
]

CLOSE_ACTION = "close_case"  # **Mark as sent/answered to shopper**, on every kind's last reply
VERIFY_ACTION = "record_verify"  # **Verify identity**, on the thread's first message until it is recorded
DENY_ACTION = "record_deny"  # **Deny**, on the thread's first message while the case can be denied
LIST_MORE_ACTION = "list_more"  # the **More** button under a list's page
HOME_MORE_ACTION = "home_more"  # the **More** button under one of the Home tab's listings
_MAX_ID = 2**63 - 1  # SQLite's largest row id: a longer number is no request's, and could not even be looked up
_REF_LIMIT = 64  # characters of a reference; the store's are shorter, anything longer is no reference of ours


@dataclass(frozen=True, slots=True)
class Thread:
    """A thread in a channel: its first message's ts."""

    channel: str
    ts: str


@dataclass(frozen=True, slots=True)
class Pressed:
    """A button as clicked: its value, and the thread it was in (None: an ephemeral answer, the App Home, a form)."""

    value: str
    thread: Thread | None


@dataclass(frozen=True, slots=True)
class Named:
    """What a value says: the request's id and reference ("" for a button from before references)."""

    request_id: int
    ref: str


def button_value(request: Request) -> str:
    """The value of every button that acts on ``request``."""
    return f"{request.id}.{request.ref}"


def pressed(body: dict[str, Any]) -> Pressed:
    """The button a block_actions payload says was clicked, and where."""
    action = (body.get("actions") or [{}])[0]
    return Pressed(str(action.get("value") or ""), _thread_of(body))


def _thread_of(body: dict[str, Any]) -> Thread | None:
    """The thread of the message clicked, if it is one posted in a channel (not ephemeral, not a view)."""
    container = body.get("container") or {}
    if container.get("type") != "message" or container.get("is_ephemeral"):
        return None
    message = body.get("message") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    ts = container.get("thread_ts") or message.get("thread_ts") or container.get("message_ts") or message.get("ts")
    return Thread(str(channel or ""), str(ts or ""))


def named(value: str) -> Named | None:
    """The id and reference ``value`` says; None for a value no button of this bot carries (checked before
    anything is looked up, so an id too long for the database is refused like any other odd value)."""
    digits, dot, ref = value.partition(".")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > len(str(_MAX_ID)):
        return None
    if int(digits) > _MAX_ID or str(int(digits)) != digits:  # the bot writes no leading zeros
        return None
    if dot and not (0 < len(ref) <= _REF_LIMIT and ref.isascii() and ref.isalnum()):
        return None
    return Named(int(digits), ref)


def mismatch(request: Request | None, name: Named, thread: Thread | None) -> str | None:
    """Why a click does not act on ``request`` (the row with the id ``name`` says), for the audit log; None: it does."""
    if request is None:
        return f"button for request {name.request_id}, which this database does not hold"
    if name.ref and not hmac.compare_digest(name.ref, request.ref):
        return f"button for a request {request.id} this database does not hold (its id is another's now: a restore?)"
    if thread is not None and thread != Thread(request.channel, request.thread_ts or ""):
        return f"button for request {request.id} clicked outside its thread"
    if not name.ref and thread is None:
        return f"button for request {request.id} without a reference, outside its thread"
    return None


def form_metadata(request: Request) -> str:
    """A form's private_metadata: the request, as its buttons name it, and its thread (where the form is answered)."""
    return json.dumps({"request": button_value(request), "channel": request.channel, "thread_ts": request.thread_ts})


def submitted(metadata: str) -> Pressed:
    """A form's private_metadata read back as the click that opened it (a bare id: a form of an older version)."""
    try:
        data = json.loads(metadata)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Pressed(metadata, None)
    channel, ts = data.get("channel"), data.get("thread_ts")
    thread = Thread(channel, ts) if isinstance(channel, str) and isinstance(ts, str) else None
    return Pressed(str(data.get("request") or ""), thread)
