"""A local stand-in for the Slack Web API, for the offline demo: it keeps messages and shows them as text.

Only what the bot calls is here. It is not a test fake (``tests/fakes`` has
those): it has no failure injection and no checks, just a readable transcript
of what each person in the workspace would see.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

__all__ = ["LocalSlack", "Posted", "render"]

_DATE = re.compile(r"<!date\^(\d+)\^[^|>]*\|[^>]*>")
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")
_MENTION = re.compile(r"<@(\w+)>")
_BOLD = re.compile(r"\*([^*\n]+)\*")
_ITALIC = re.compile(r"(?<![\w])_([^_\n]+)_(?![\w])")
_EMOJI = {
    ":hourglass_flowing_sand:": "⏳",
    ":white_check_mark:": "✅",
    ":x:": "❌",
    ":no_entry:": "⛔",
    ":arrow_down:": "⬇",
    ":lock:": "🔒",
    ":alarm_clock:": "⏰",
    ":rotating_light:": "🚨",
    ":tada:": "🎉",
}


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


def render(message: Posted, names: dict[str, str]) -> list[str]:
    """Block Kit as plain lines: sections, fields, context, and buttons in brackets."""

    def clean(text: str) -> str:
        text = _DATE.sub(lambda m: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(m.group(1)))), text)
        text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", text)
        text = _MENTION.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)
        text = _ITALIC.sub(r"\1", _BOLD.sub(r"\1", text)).replace("`", "")
        for code, emoji in _EMOJI.items():
            text = text.replace(code, emoji)
        return text

    lines: list[str] = []
    for block in message.blocks or [{"type": "section", "text": {"text": message.text}}]:
        if block.get("text"):
            lines += clean(block["text"]["text"]).splitlines()
        for item in block.get("fields") or []:
            lines.append(clean(item["text"]).replace("\n", ": ", 1))
        if block.get("type") == "context":
            lines += [clean(e.get("text", "")) for e in block.get("elements") or []]
        if block.get("type") == "actions":
            lines.append("  ".join(f"[ {e['text']['text']} ]" for e in block.get("elements") or []))
    return lines


class LocalSlack:
    """The Web API methods the bot uses, on loopback, calling ``show`` for everything a person would see."""

    def __init__(self, *, token: str, show: Callable[[str, Posted], None]) -> None:
        self.token = token
        self.messages: dict[str, Posted] = {}  # what is in the channel, by ts (updated in place)
        self.seen: list[Posted] = []  # everything anyone was shown, ephemeral messages included, in order
        self._show = show
        self._changed = asyncio.Condition()
        self._responses: dict[str, tuple[str, str]] = {}  # response_url key -> (user, channel)
        self._ts = int(time.time())
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def response_url(self, user: str, channel: str) -> str:
        key = secrets.token_hex(8)
        self._responses[key] = (user, channel)
        return f"{self.base_url}/response/{key}"

    async def wait_for(self, predicate: Callable[[], Any], within: float = 30.0) -> Any:
        """Wait until ``predicate()`` is truthy, re-checked whenever a message arrives."""
        async with self._changed, asyncio.timeout(within):
            while not (value := predicate()):
                await self._changed.wait()
            return value

    async def _record(self, kind: str, message: Posted) -> None:
        self._show(kind, message)
        self.seen.append(message)
        async with self._changed:
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        raw = await request.read()
        args: dict[str, Any] = dict(request.query)
        if raw:
            args.update(json.loads(raw) if "json" in request.content_type else dict(parse_qsl(raw.decode())))
        for key in ("blocks", "metadata"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        method = request.match_info["method"]
        if method == "auth.test":
            return web.json_response(
                {
                    "ok": True,
                    "team": "Demo",
                    "team_id": "T0DEMO",
                    "user": "data-request",
                    "user_id": "U0BOT",
                    "bot_id": "B0BOT",
                    "url": "https://demo.slack.local/",
                }
            )
        if method in ("chat.postMessage", "chat.postEphemeral"):
            self._ts += 1
            ts = f"{self._ts}.000100"
            posted = Posted(
                str(args.get("channel")),
                ts,
                args.get("blocks") or [],
                str(args.get("text", "")),
                args.get("thread_ts"),
                args.get("user") if method == "chat.postEphemeral" else None,
                args.get("metadata") or {},
            )
            if posted.visible_to is None:
                self.messages[ts] = posted
            await self._record("ephemeral" if posted.visible_to else "reply" if posted.thread_ts else "post", posted)
            return web.json_response({"ok": True, "channel": posted.channel, "ts": ts, "message_ts": ts})
        if method == "chat.update":
            posted = self.messages[str(args["ts"])]
            posted.blocks, posted.text = args.get("blocks") or [], str(args.get("text", ""))
            await self._record("update", posted)
            return web.json_response({"ok": True, "channel": posted.channel, "ts": posted.ts})
        if method == "chat.getPermalink":
            ts = str(args.get("message_ts", "")).replace(".", "")
            return web.json_response(
                {"ok": True, "permalink": f"https://demo.slack.local/archives/{args['channel']}/p{ts}"}
            )
        if method == "conversations.replies":
            thread = [m for m in self.messages.values() if args.get("ts") in (m.ts, m.thread_ts)]
            return web.json_response(
                {"ok": True, "messages": [{"ts": m.ts, "text": m.text, "metadata": m.metadata} for m in thread]}
            )
        return web.json_response({"ok": True})

    async def _response(self, request: web.Request) -> web.Response:
        user, channel = self._responses.get(request.match_info["key"], ("?", "?"))
        args = json.loads(await request.read())
        self._ts += 1
        posted = Posted(
            channel,
            f"{self._ts}.000100",
            args.get("blocks") or [],
            str(args.get("text", "")),
            None,
            None if args.get("response_type") == "in_channel" else user,
        )
        await self._record("ephemeral" if posted.visible_to else "post", posted)
        return web.Response(text="ok")
