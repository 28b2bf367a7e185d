"""The tests' fake Slack: the loopback Slack Web API (``offline.slack``) plus failure injection and checks.

The bot talks to it through an unpatched ``AsyncWebClient(base_url=...)`` and
``respond()``, so a test sees exactly what would have reached Slack: which
method, which arguments, and what Slack answered. On top of the shared
implementation it injects failures (held calls, refused channels, error codes,
an outage) and checks every blocks array the bot sends against Slack's limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from offline.slack import BOT_ID, BOT_USER, Call, LocalSlack, LoopbackServer, ResponsePost

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

_BLOCK_TYPES = {"section", "actions", "context", "divider", "header", "image", "input", "rich_text", "markdown"}


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


class FakeSlack(LocalSlack):
    """The Slack Web API (``/api/<method>``) and response_urls (``/response/<key>``), with knobs and checks.

    Knobs, all plain attributes a test may set at any time:
    ``hold`` (method -> an asyncio.Event the call waits for before it is answered;
    ``held`` lists the calls waiting now), ``hold_answers`` (the same, but the call is
    carried out first and only its answer waits, as when Slack posted and the answer
    is lost on the way; ``answers_held`` lists them; ``hold_answers_of`` picks, by the
    call's arguments, whose answers are held: every call's unless set),
    ``not_in`` and ``archived`` (channel ids that refuse posts), ``fail``
    (per-method queue of injected failures: an int is an HTTP status, a str a
    Slack error code), ``down`` (every Web API call answers 503) and
    ``retry_after`` (the Retry-After header sent with an injected 429).
    Every blocks array sent is checked (``block_problems``): what Slack would
    refuse is answered ``invalid_blocks`` and listed in ``invalid_blocks``.
    """

    team_id = TEAM_ID
    workspace_url = "https://fake.slack.test/"
    wait_timeout = 5.0

    def __init__(
        self,
        token: str = "xoxb-test-token",
        *,
        usergroups: dict[str, list[str]] | None = None,
        retry_after: str = "1",
    ) -> None:
        super().__init__(token, usergroups=usergroups)
        self.retry_after = retry_after
        self.not_in: set[str] = set()
        self.archived: set[str] = set()
        self.fail: dict[str, list[int | str]] = {}
        self.hold: dict[str, asyncio.Event] = {}
        self.held: list[str] = []
        self.hold_answers: dict[str, asyncio.Event] = {}
        self.answers_held: list[str] = []
        self.hold_answers_of: Callable[[dict[str, Any]], bool] = lambda _args: True
        self.down = False
        self.invalid_blocks: list[str] = []

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

    # ------------------------------------------------------------------ failures and checks
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if (gate := self.hold.get(method)) is not None and not gate.is_set():
            self.held.append(method)
            await self._notify()
            try:
                await gate.wait()
            finally:
                self.held.remove(method)
        response = await super()._api(request)
        gate = self.hold_answers.get(method)
        if gate is not None and not gate.is_set() and self.hold_answers_of(await _arguments(request)):
            self.answers_held.append(method)
            await self._notify()
            try:
                await gate.wait()
            finally:
                self.answers_held.remove(method)
        return response

    def _answer(
        self, method: str, args: dict[str, Any], auth: str | None, token: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if self.down:
            return 503, {}, {"ok": False, "error": "service_unavailable"}
        signed = auth == f"Bearer {self.token}" or token == self.token
        if signed and (queue := self.fail.get(method)):  # an injected failure, once the token is right
            injected = queue.pop(0)
            if isinstance(injected, str):
                return 200, {}, {"ok": False, "error": injected}
            if injected == 429:
                return 429, {"Retry-After": self.retry_after}, {"ok": False, "error": "ratelimited"}
            return injected, {}, {"ok": False, "error": "fatal_error"}
        return super()._answer(method, args, auth, token)

    def _channel_refuses(self, channel: str) -> str | None:
        if channel in self.archived:
            return "is_archived"
        if channel in self.not_in:
            return "not_in_channel"
        return None

    def _replies(self, channel: str, ts: str) -> dict[str, Any]:
        if channel in self.not_in:
            return {"ok": False, "error": "not_in_channel"}
        return super()._replies(channel, ts)

    def _history(self, channel: str, args: dict[str, Any]) -> dict[str, Any]:
        if channel in self.not_in:
            return {"ok": False, "error": "not_in_channel"}
        return super()._history(channel, args)

    def _block_problems(self, where: str, blocks: Any, limit: int) -> list[str]:
        problems = block_problems(blocks, limit)
        self.invalid_blocks += [f"{where}: {p}" for p in problems]
        return problems


async def _arguments(request: web.Request) -> dict[str, Any]:
    """A call's arguments as sent (JSON or a form; its body is read already, and kept by aiohttp)."""
    if "json" in request.content_type:
        return dict(await request.json())
    return {key: value for key, value in (await request.post()).items() if isinstance(value, str)}
