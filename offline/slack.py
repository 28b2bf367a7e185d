"""The Slack Web API on loopback: the methods the bot calls, with messages kept as Slack keeps them.

One implementation for everything that needs a Slack without a workspace: the offline demo
(``data-request-bot demo``) shows what each person would see through ``show``; the tests'
fake (``tests/fakes/slack.py``) subclasses it to add failure injection and checks of what
the bot sends; the benchmarks subclass that. The bot reaches it through an unpatched
``AsyncWebClient(base_url=...)`` and ``respond()``, exactly as it reaches Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web

__all__ = ["BOT_ID", "BOT_USER", "Call", "LocalSlack", "LoopbackServer", "Posted", "ResponsePost"]

BOT_USER = "U0BOT"
BOT_ID = "B0BOT"
RESPONSE_URL_USES = 5  # Slack accepts five posts per response_url
_CURSOR = "before:"  # conversations.history's next page: the messages older than this ts

T = TypeVar("T")


class LoopbackServer:
    """An aiohttp app on 127.0.0.1 at a port the OS picks, with an awaitable change feed.

    Binding port 0 means parallel runs never race for a port, and ``wait_for`` wakes on each
    recorded request instead of polling with sleeps.
    """

    wait_timeout = 5.0  # seconds ``wait_for`` waits unless told

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._changed = asyncio.Condition()

    def _app(self) -> web.Application:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """Return ``http://127.0.0.1:<port>``; only valid after ``start()``."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started: await start() first")
        return f"http://127.0.0.1:{self._port}"

    async def start(self, listening: socket.socket | None = None) -> None:
        """Bind an ephemeral port (or serve on ``listening``, a socket bound already) and serve; after
        ``stop()``, serve again on the same port (back online)."""
        # handler_cancellation: a client that gives up on a held request cancels it.
        self._runner = web.AppRunner(self._app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        sock = listening
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self._port or 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        """Stop serving (connections are then refused, as when the host is unreachable); safe to call twice."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _describe(self) -> str:
        return ""

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float | None = None) -> T:  # noqa: ASYNC109
        """Return predicate()'s first truthy value, re-checked at each recorded request.

        A predicate that raises LookupError (``posts()[1]`` too early) counts as not yet true.
        Raises TimeoutError, saying what was recorded, after ``timeout`` (``wait_timeout``) seconds.
        """

        def check() -> T | None:
            try:
                return predicate() or None
            except LookupError:
                return None

        limit = self.wait_timeout if timeout is None else timeout
        async with self._changed:
            try:
                async with asyncio.timeout(limit):
                    while (value := check()) is None:
                        await self._changed.wait()
            except TimeoutError:
                raise TimeoutError(
                    f"{type(self).__name__}.wait_for timed out after {limit}s; recorded:\n{self._describe()}"
                ) from None
        return value


@dataclass(frozen=True, slots=True)
class Call:
    """One Web API call: its method, decoded arguments, HTTP status and Slack's answer."""

    method: str
    args: dict[str, Any]
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether Slack answered ok: true."""
        return bool(self.response.get("ok"))


@dataclass(frozen=True, slots=True)
class ResponsePost:
    """One POST to a response_url, with the user that URL was handed to."""

    url: str
    user: str | None
    body: dict[str, Any]


@dataclass
class Posted:
    """One message as a person would see it."""

    channel: str
    ts: str
    blocks: list[dict[str, Any]]
    text: str
    thread_ts: str | None = None
    visible_to: str | None = None  # a user id for ephemeral messages
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, channel: str, message: dict[str, Any], *, visible_to: str | None = None) -> Posted:
        """A message as Slack stores it (or a response_url body), as a person sees it."""
        return cls(
            channel,
            str(message.get("ts", "")),
            message.get("blocks") or [],
            str(message.get("text", "")),
            message.get("thread_ts"),
            visible_to,
            message.get("metadata") or {},
        )


class LocalSlack(LoopbackServer):
    """The Slack Web API (``/api/<method>``) and response_urls (``/response/<key>``), answering as Slack does.

    Records every call (``calls``), every response_url post (``responses``) and everything a
    person was shown, in order (``seen``; ``show`` is called with each). Slack's own refusals
    are kept (a wrong token, no channel, no text, an unknown message or response_url); the
    hooks ``_answer``, ``_channel_refuses`` and ``_block_problems`` are where a subclass injects failures and checks.
    """

    team_id = "T0LOCAL"
    workspace_url = "https://slack.local/"
    wait_timeout = 30.0  # a scene's steps include Amazon's (sandboxed) work

    def __init__(
        self,
        token: str,
        *,
        usergroups: dict[str, list[str]] | None = None,
        show: Callable[[str, Posted], None] | None = None,
    ) -> None:
        super().__init__()
        self.token = token
        self.usergroups: dict[str, list[str]] = dict(usergroups or {})
        self.calls: list[Call] = []
        self.responses: list[ResponsePost] = []
        self.seen: list[Posted] = []
        self.response_owner: dict[str, str] = {}  # response_url -> user it was handed to
        self._response_channel: dict[str, str] = {}
        self._response_uses: dict[str, int] = {}
        self._messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel -> ts -> message, updated in place
        self._show = show
        self._clock = int(time.time())

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response)
        return app

    @property
    def api_url(self) -> str:
        """Return the base URL for ``AsyncWebClient(base_url=...)``, ending in ``/api/``."""
        return f"{self.base_url}/api/"

    @property
    def messages(self) -> dict[str, Posted]:
        """What is in the channels now, by ts, in the order it was posted (updates applied)."""
        return {ts: Posted.of(channel, m) for channel, kept in self._messages.items() for ts, m in kept.items()}

    def response_url(self, user: str, channel: str = "") -> str:
        """Make a fresh response_url, remembered as handed to ``user`` (in ``channel``)."""
        url = f"{self.base_url}/response/{secrets.token_hex(8)}"
        self.response_owner[url] = user
        self._response_channel[url] = channel
        return url

    def _describe(self) -> str:
        lines = [f"  {c.method} {c.status} {c.response.get('error', 'ok')}" for c in self.calls[-20:]]
        lines += [f"  response_url for {r.user}: {r.body.get('text', '')[:60]!r}" for r in self.responses[-10:]]
        return "\n".join(lines) or "  (nothing)"

    # ------------------------------------------------------------------ serving
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        token = args.pop("token", None)
        status, headers, answer = self._answer(method, args, request.headers.get("Authorization"), token)
        self.calls.append(Call(method, args, status, answer))
        if answer.get("ok"):
            self._shown(method, args, answer)
        await self._notify()
        return web.json_response(answer, status=status, headers=headers)

    def _answer(
        self, method: str, args: dict[str, Any], auth: str | None, token: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        """HTTP status, headers and body for one call (a subclass answers failures here)."""
        if auth != f"Bearer {self.token}" and token != self.token:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        return 200, {}, self._handle(method, args)

    def _block_problems(self, where: str, blocks: Any, limit: int) -> list[str]:
        """What Slack would reject in ``blocks``; this stand-in trusts them (the tests' fake checks)."""
        return []

    def _channel_refuses(self, channel: str) -> str | None:
        """Slack's error code when a post to ``channel`` is refused; here every channel takes posts."""
        return None

    def _handle(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if method in ("chat.postMessage", "chat.postEphemeral", "chat.update", "views.publish", "views.open"):
            view = method.startswith("views.")
            blocks = (args.get("view") or {}).get("blocks") if view else args.get("blocks")
            if problems := self._block_problems(method, blocks, 100 if view else 50):
                return {"ok": False, "error": "invalid_blocks", "errors": problems}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            if not channel:
                return {"ok": False, "error": "channel_not_found"}
            if refused := self._channel_refuses(channel):
                return {"ok": False, "error": refused}
            if not (args.get("text") or args.get("blocks") or args.get("attachments")):
                return {"ok": False, "error": "no_text"}
        if method == "auth.test":
            return {"ok": True, "url": self.workspace_url, "team": "Local", "user": "data-request",
                    "team_id": self.team_id, "user_id": BOT_USER, "bot_id": BOT_ID}  # fmt: skip
        if method == "chat.postMessage":
            args["ts"] = ts = self._next_ts()
            message: dict[str, Any] = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "ts": ts}
            message.update(
                {k: args[k] for k in ("text", "blocks", "attachments", "thread_ts", "metadata") if k in args}
            )
            self._messages.setdefault(channel, {})[ts] = message
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.update":
            stored = self._messages.get(channel, {}).get(str(args.get("ts", "")))
            if stored is None:
                return {"ok": False, "error": "message_not_found"}
            stored.update({k: args[k] for k in ("text", "blocks", "attachments", "metadata") if k in args})
            return {"ok": True, "channel": channel, "ts": stored["ts"], "text": stored.get("text", "")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "chat.getPermalink":
            ts = str(args.get("message_ts", ""))
            link = f"{self.workspace_url}archives/{channel}/p{ts.replace('.', '')}"
            return {"ok": True, "channel": channel, "permalink": link}
        if method == "conversations.replies":
            return _with_metadata(self._replies(channel, str(args.get("ts", ""))), args)
        if method == "conversations.history":
            return _with_metadata(self._history(channel, args), args)
        if method == "usergroups.users.list":
            users = self.usergroups.get(str(args.get("usergroup", "")))
            if users is None:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": list(users)}
        if method == "views.open" and not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        if method in ("views.publish", "views.open"):
            return {"ok": True, "view": {"id": "V" + secrets.token_hex(5).upper(), **(args.get("view") or {})}}
        return {"ok": True}

    def _replies(self, channel: str, ts: str) -> dict[str, Any]:
        messages = self._messages.get(channel, {})
        if ts not in messages:
            return {"ok": False, "error": "thread_not_found"}
        thread = [m for m in messages.values() if m.get("thread_ts") == ts and m["ts"] != ts]
        parent = dict(messages[ts])
        if thread:
            parent.update(thread_ts=ts, reply_count=len(thread))
        return {"ok": True, "messages": [parent, *thread], "has_more": False, "response_metadata": {"next_cursor": ""}}

    def _history(self, channel: str, args: dict[str, Any]) -> dict[str, Any]:
        """The channel's messages, newest first, as Slack pages them: top-level only, between ``oldest`` and
        ``latest`` (both exclusive), ``limit`` at a time, the next page behind ``response_metadata.next_cursor``."""
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or "inf")
        limit = max(1, min(int(args.get("limit") or 100), 999))
        if cursor := str(args.get("cursor") or ""):
            latest = min(latest, float(cursor.removeprefix(_CURSOR)))
        kept = self._messages.get(channel, {}).values()
        found = [m for m in kept if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
        found = sorted((m for m in found if oldest < float(m["ts"]) < latest), key=lambda m: float(m["ts"]))[::-1]
        page, more = found[:limit], len(found) > limit
        next_cursor = f"{_CURSOR}{page[-1]['ts']}" if more else ""
        return {"ok": True, "messages": page, "has_more": more, "response_metadata": {"next_cursor": next_cursor}}

    async def _response(self, request: web.Request) -> web.Response:
        url = f"{self.base_url}{request.path}"
        if url not in self.response_owner:
            return web.Response(status=404, text="no_such_url")
        self._response_uses[url] = uses = self._response_uses.get(url, 0) + 1
        if uses > RESPONSE_URL_USES:
            return web.Response(status=404, text="used_url")
        raw = await request.text()
        try:
            body = json.loads(raw)
        except ValueError:
            body = json.loads(dict(parse_qsl(raw)).get("payload", "{}"))
        if self._block_problems("response_url", body.get("blocks"), 50):
            return web.Response(status=400, text="invalid_blocks")
        user = self.response_owner[url]
        self.responses.append(ResponsePost(url, user, body))
        private = body.get("response_type") != "in_channel"
        shown = Posted.of(self._response_channel.get(url, ""), body, visible_to=user if private else None)
        self._see("ephemeral" if private else "post", shown)
        await self._notify()
        return web.Response(text="ok")

    def _shown(self, method: str, args: dict[str, Any], answer: dict[str, Any]) -> None:
        """Record what a successful call put in front of people."""
        channel = str(args.get("channel", ""))
        if method == "chat.postMessage":
            self._see("reply" if args.get("thread_ts") else "post", Posted.of(channel, answer["message"]))
        elif method == "chat.update":
            self._see("update", Posted.of(channel, self._messages[channel][answer["ts"]]))
        elif method == "chat.postEphemeral":
            shown = {**args, "ts": answer["message_ts"]}
            self._see("ephemeral", Posted.of(channel, shown, visible_to=str(args.get("user", ""))))

    def _see(self, kind: str, message: Posted) -> None:
        self.seen.append(message)
        if self._show is not None:
            self._show(kind, message)

    def _next_ts(self) -> str:
        self._clock += 1
        return f"{self._clock}.000100"


def _with_metadata(answer: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """Slack returns messages' metadata only to a reader that asks for it (``include_all_metadata``)."""
    if "messages" not in answer or str(args.get("include_all_metadata", "")).lower() in ("1", "true"):
        return answer
    return {**answer, "messages": [{k: v for k, v in m.items() if k != "metadata"} for m in answer["messages"]]}


async def _read_args(request: web.Request) -> dict[str, Any]:
    """Merge query string and body (JSON, urlencoded or multipart) and decode JSON-valued fields."""
    args: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if "json" in request.content_type:
            args.update(await request.json())
        else:
            args.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    for key in ("blocks", "attachments", "view", "metadata"):
        if isinstance(args.get(key), str):
            with contextlib.suppress(ValueError):  # else leave it as sent; a check reports it
                args[key] = json.loads(args[key])
    return args
