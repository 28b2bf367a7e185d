"""A fake Slack Web API and response_url endpoint, served for real on loopback.

The bot talks to it through an unpatched ``AsyncWebClient(base_url=...)`` and
``respond()``, so a test sees exactly what would have reached Slack: which
method, which arguments, and what Slack answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web

__all__ = [
    "BOT_ID",
    "BOT_USER",
    "TEAM_ID",
    "Call",
    "FakeSlack",
    "LoopbackServer",
    "ResponsePost",
    "block_problems",
    "buttons",
    "text_of",
]

TEAM_ID = "T0TEST"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"

T = TypeVar("T")

_BLOCK_TYPES = {"section", "actions", "context", "divider", "header", "image", "input", "rich_text", "markdown"}
_POSTING = ("chat.postMessage", "chat.postEphemeral", "chat.update", "views.publish", "views.open")


class LoopbackServer:
    """An aiohttp app on 127.0.0.1 at a port the OS picks, with an awaitable change feed.

    Shared by both fakes: binding port 0 means tests never race for a port, and
    ``wait_for`` wakes on each recorded request instead of polling with sleeps.
    """

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

    async def start(self) -> None:
        """Bind an ephemeral port and serve; after ``stop()``, serve again on the same port (back online)."""
        # handler_cancellation: a client that gives up on a held request cancels it.
        self._runner = web.AppRunner(self._app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
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

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:  # noqa: ASYNC109 (a test helper)
        """Return predicate()'s first truthy value, re-checked at each recorded request.

        A predicate that raises LookupError (``posts()[1]`` too early) counts as
        not yet true. Raises AssertionError, with what was recorded, on timeout.
        """

        def check() -> T | None:
            try:
                return predicate() or None
            except LookupError:
                return None

        async with self._changed:
            try:
                async with asyncio.timeout(timeout):
                    while (value := check()) is None:
                        await self._changed.wait()
            except TimeoutError:
                raise AssertionError(
                    f"{type(self).__name__}.wait_for timed out after {timeout}s; recorded:\n{self._describe()}"
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


def text_of(obj: Any) -> str:
    """Join every string inside a message (text, blocks, attachments), one per line."""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        return "\n".join(text_of(v) for v in obj.values() if v is not None)
    if isinstance(obj, list):
        return "\n".join(text_of(v) for v in obj)
    return ""


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Return each button element of a message, with the block_id it sits in."""
    found = []
    for block in message.get("blocks") or []:
        elements = list(block.get("elements") or [])
        if block.get("accessory"):
            elements.append(block["accessory"])
        found += [{**el, "block_id": block.get("block_id", "")} for el in elements if el.get("type") == "button"]
    return found


def _text_problems(where: str, text: Any, limit: int, *, plain: bool = False) -> list[str]:
    if not isinstance(text, dict) or text.get("type") not in ("plain_text", "mrkdwn"):
        return [f"{where}: not a text object"]
    if plain and text["type"] != "plain_text":
        return [f"{where}: must be plain_text"]
    if not 1 <= len(text.get("text") or "") <= limit:
        return [f"{where}: text must be 1..{limit} characters"]
    return []


def block_problems(blocks: Any, limit: int = 50) -> list[str]:
    """List what Slack would reject in a blocks array (the limits bots most often hit)."""
    if blocks is None:
        return []
    if not isinstance(blocks, list) or len(blocks) > limit:
        return [f"blocks must be a list of at most {limit}"]
    problems: list[str] = []
    ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in _BLOCK_TYPES:
            problems.append(f"{where}: unknown block type {kind!r}")
            continue
        if (block_id := block.get("block_id")) is not None:
            if len(block_id) > 255 or block_id in ids:
                problems.append(f"{where}: block_id too long or repeated")
            ids.add(block_id)
        if kind == "header":
            problems += _text_problems(f"{where}.text", block.get("text"), 150, plain=True)
        elif kind == "section":
            if "text" not in block and not block.get("fields"):
                problems.append(f"{where}: section needs text or fields")
            if "text" in block:
                problems += _text_problems(f"{where}.text", block["text"], 3000)
            for j, f in enumerate(block.get("fields") or []):
                problems += _text_problems(f"{where}.fields[{j}]", f, 2000)
        elif kind in ("actions", "context"):
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= (25 if kind == "actions" else 10):
                problems.append(f"{where}: wrong number of elements")
        for j, el in enumerate([*(block.get("elements") or []), block.get("accessory") or {}]):
            if el.get("type") == "button":
                problems += _text_problems(f"{where}.button[{j}].text", el.get("text"), 75, plain=True)
                if len(el.get("action_id", "")) > 255 or len(el.get("value", "")) > 2000:
                    problems.append(f"{where}.button[{j}]: action_id or value too long")
    return problems


class FakeSlack(LoopbackServer):
    """The Slack Web API (``/api/<method>``) and response_urls (``/response/<key>``).

    Knobs, all plain attributes a test may set at any time:
    ``hold`` (method -> an asyncio.Event the call waits for before it is answered;
    ``held`` lists the calls waiting now),
    ``not_in`` and ``archived`` (channel ids that refuse posts), ``fail``
    (per-method queue of injected failures: an int is an HTTP status, a str a
    Slack error code), ``down`` (every Web API call answers 503) and
    ``retry_after`` (the Retry-After header sent with an injected 429).
    """

    def __init__(
        self,
        token: str = "xoxb-test-token",
        *,
        usergroups: dict[str, list[str]] | None = None,
        retry_after: str = "1",
    ) -> None:
        super().__init__()
        self.token = token
        self.usergroups: dict[str, list[str]] = dict(usergroups or {})
        self.retry_after = retry_after
        self.not_in: set[str] = set()
        self.archived: set[str] = set()
        self.fail: dict[str, list[int | str]] = {}
        self.hold: dict[str, asyncio.Event] = {}
        self.held: list[str] = []
        self.down = False
        self.calls: list[Call] = []
        self.responses: list[ResponsePost] = []
        self.invalid_blocks: list[str] = []
        self.response_owner: dict[str, str] = {}  # response_url -> user it was handed to
        self._messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel -> ts -> message
        self._response_uses: dict[str, int] = {}
        self._clock = 1_700_000_000

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response)
        return app

    @property
    def api_url(self) -> str:
        """Return the base URL for ``AsyncWebClient(base_url=...)``, ending in ``/api/``."""
        return f"{self.base_url}/api/"

    def response_url(self, user: str) -> str:
        """Make a fresh response_url, remembered as handed to ``user``."""
        url = f"{self.base_url}/response/{secrets.token_hex(8)}"
        self.response_owner[url] = user
        return url

    # ------------------------------------------------------------------ queries
    def calls_to(self, method: str) -> list[Call]:
        """Return every call to one Web API method, in order."""
        return [c for c in self.calls if c.method == method]

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Return the arguments of successful chat.postMessage calls (with their ``ts``)."""
        return [c.args for c in self.calls_to("chat.postMessage") if c.ok and channel in (None, c.args.get("channel"))]

    def updates(self) -> list[dict[str, Any]]:
        """Return the arguments of successful chat.update calls."""
        return [c.args for c in self.calls_to("chat.update") if c.ok]

    def ephemerals_to(self, user: str) -> list[dict[str, Any]]:
        """Return everything shown to ``user`` alone: chat.postEphemeral and private response_url posts."""
        out = [c.args for c in self.calls_to("chat.postEphemeral") if c.ok and c.args.get("user") == user]
        out += [r.body for r in self.responses if r.user == user and r.body.get("response_type") != "in_channel"]
        return out

    def public_text(self) -> str:
        """Return all text sent towards a channel (posts, updates, in_channel responses), for leak checks."""
        parts = [text_of(c.args) for c in self.calls if c.method in ("chat.postMessage", "chat.update")]
        parts += [text_of(r.body) for r in self.responses if r.body.get("response_type") == "in_channel"]
        return "\n".join(parts)

    def _describe(self) -> str:
        lines = [f"  {c.method} {c.status} {c.response.get('error', 'ok')}" for c in self.calls[-20:]]
        lines += [f"  response_url for {r.user}: {r.body.get('text', '')[:60]!r}" for r in self.responses[-10:]]
        return "\n".join(lines) or "  (nothing)"

    # ------------------------------------------------------------------ serving
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        if (gate := self.hold.get(method)) is not None and not gate.is_set():
            self.held.append(method)
            await self._notify()
            try:
                await gate.wait()
            finally:
                self.held.remove(method)
        token = args.pop("token", None)
        status, headers, answer = self._answer(method, args, request.headers.get("Authorization"), token)
        self.calls.append(Call(method, args, status, answer))
        await self._notify()
        return web.json_response(answer, status=status, headers=headers)

    def _answer(
        self, method: str, args: dict[str, Any], auth: str | None, token: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if self.down:
            return 503, {}, {"ok": False, "error": "service_unavailable"}
        if auth != f"Bearer {self.token}" and token != self.token:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        if queue := self.fail.get(method):
            injected = queue.pop(0)
            if isinstance(injected, str):
                return 200, {}, {"ok": False, "error": injected}
            if injected == 429:
                return 429, {"Retry-After": self.retry_after}, {"ok": False, "error": "ratelimited"}
            return injected, {}, {"ok": False, "error": "fatal_error"}
        return 200, {}, self._handle(method, args)

    def _handle(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if method in _POSTING:
            view = method.startswith("views.")
            blocks = (args.get("view") or {}).get("blocks") if view else args.get("blocks")
            if problems := block_problems(blocks, 100 if view else 50):
                self.invalid_blocks += [f"{method}: {p}" for p in problems]
                return {"ok": False, "error": "invalid_blocks", "errors": problems}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            if not channel:
                return {"ok": False, "error": "channel_not_found"}
            if channel in self.archived:
                return {"ok": False, "error": "is_archived"}
            if channel in self.not_in:
                return {"ok": False, "error": "not_in_channel"}
            if not (args.get("text") or args.get("blocks") or args.get("attachments")):
                return {"ok": False, "error": "no_text"}
        if method == "auth.test":
            return {"ok": True, "url": "https://fake.slack.test/", "team": "Fake", "user": "data-request",
                    "team_id": TEAM_ID, "user_id": BOT_USER, "bot_id": BOT_ID}  # fmt: skip
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
            link = f"https://fake.slack.test/archives/{channel}/p{ts.replace('.', '')}"
            return {"ok": True, "channel": channel, "permalink": link}
        if method == "conversations.replies":
            return self._replies(channel, str(args.get("ts", "")))
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
        if channel in self.not_in:
            return {"ok": False, "error": "not_in_channel"}
        messages = self._messages.get(channel, {})
        if ts not in messages:
            return {"ok": False, "error": "thread_not_found"}
        thread = [m for m in messages.values() if m.get("thread_ts") == ts and m["ts"] != ts]
        parent = dict(messages[ts])
        if thread:
            parent.update(thread_ts=ts, reply_count=len(thread))
        return {"ok": True, "messages": [parent, *thread], "has_more": False, "response_metadata": {"next_cursor": ""}}

    async def _response(self, request: web.Request) -> web.Response:
        url = f"{self.base_url}{request.path}"
        if url not in self.response_owner:
            return web.Response(status=404, text="no_such_url")
        self._response_uses[url] = uses = self._response_uses.get(url, 0) + 1
        if uses > 5:  # Slack accepts five posts per response_url
            return web.Response(status=404, text="used_url")
        raw = await request.text()
        try:
            body = json.loads(raw)
        except ValueError:
            body = json.loads(dict(parse_qsl(raw)).get("payload", "{}"))
        if problems := block_problems(body.get("blocks")):
            self.invalid_blocks += [f"response_url: {p}" for p in problems]
            return web.Response(status=400, text="invalid_blocks")
        self.responses.append(ResponsePost(url, self.response_owner[url], body))
        await self._notify()
        return web.Response(text="ok")

    def _next_ts(self) -> str:
        self._clock += 1
        return f"{self._clock}.000100"


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
            with contextlib.suppress(ValueError):  # else leave it as sent; block_problems reports it
                args[key] = json.loads(args[key])
    return args
