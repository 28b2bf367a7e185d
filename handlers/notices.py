"""What a change tells Slack: queued as a notice with the change, put into words only when it is sent.

A state change and what it tells the thread commit together (the outbox), but the words are not
written then: the transaction stores a ``Notice`` (which message, and the little it needs beyond the
request), and the outbox sender calls ``render`` when it sends it, with the request as it stands at
that moment. So nothing renders inside a database transaction, the queue holds no Slack payloads, and
texts and Block Kit can change while posts wait.

The notices: ``opener`` (the thread's first message), ``parent`` (that message refreshed), ``reply``
(a reply in the thread, by name: the kind's or a shared one), ``reminder`` (before the due date) and
``abandoned`` (a direct message to the requester that a post was given up).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers import texts
from handlers.kinds import KindFlow
from handlers.texts import casework
from handlers.workers.outbox import SlackCall
from store import NOTICE, OPENS_THREAD, Notice, OutboxEntry, Request

__all__ = ["abandoned", "opener", "reminder", "render", "thread_update"]

_UNFURL = {"unfurl_links": False, "unfurl_media": False}


def opener() -> Notice:
    """The message that opens a request's thread; its ts becomes the thread's."""
    return Notice("opener", purpose=OPENS_THREAD)


def thread_update(reply: str | None = None, *, parent: bool = True) -> list[Notice]:
    """A state change's posts: refresh the thread's first message, and maybe reply in it (a reply's name)."""
    notices = [Notice("parent")] if parent else []
    if reply is not None:
        notices.append(Notice("reply", {"name": reply}))
    return notices


def reminder(when: str, *, extension: bool = False) -> list[Notice]:
    """A reminder in the thread (``when``: one of ``deadlines.REMINDERS`` or ``EXTENSION_REMINDER``), the first
    message left as it is; ``extension``: it also says that an extension must be told to the shopper now."""
    return [Notice("reminder", {"when": when, "extension": "yes" if extension else ""})]


def abandoned(code: str) -> Notice:
    """A direct message to the requester: a post of theirs was given up (Slack's ``code``)."""
    return Notice("abandoned", {"code": code}, purpose=NOTICE)


def render(entry: OutboxEntry, kinds: Mapping[str, KindFlow]) -> SlackCall:
    """The Slack call for a queued entry, in the words of its request's kind as the request stands now.

    Raises LookupError for an entry it cannot put into words (its request or kind is unknown).
    """
    request = entry.request
    if request is None:
        raise LookupError(f"outbox {entry.id}: request {entry.request_id} is not stored")
    words = kinds[request.kind].texts
    args = entry.payload
    if entry.method == "opener":
        parent = _m(texts.thread_parent(request, words))
        return SlackCall("chat.postMessage", {"channel": request.channel, **_UNFURL, **parent})
    if entry.method == "parent":
        parent = _m(texts.thread_parent(request, words))
        return SlackCall("chat.update", {"channel": request.channel, "ts": request.thread_ts, **parent})
    if entry.method == "reply":
        return _in_thread(request, texts.thread_reply(str(args["name"]), request, words))
    if entry.method == "reminder":
        said = casework.reminder_message(request, str(args["when"]), extension=bool(args.get("extension")))
        return _in_thread(request, said)
    if entry.method == "abandoned":
        said = texts.post_abandoned(request, str(args["code"]))
        return SlackCall("chat.postMessage", {"channel": request.requester, **_UNFURL, **_m(said)})
    raise LookupError(f"outbox {entry.id}: no notice is called {entry.method!r}")


def _in_thread(request: Request, message: texts.Message) -> SlackCall:
    payload = {"channel": request.channel, "thread_ts": request.thread_ts, **_UNFURL, **_m(message)}
    return SlackCall("chat.postMessage", payload)


def _m(message: texts.Message) -> dict[str, Any]:
    return dict(message)
