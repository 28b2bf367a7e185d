"""``data-request-bot demo``: the whole flow, offline, printed as the people in Slack would see it.

The real app runs (Bolt handlers, store, relay, workers) on a temporary
database, against the built-in Buy with Prime sandbox and a local stand-in for
Slack. Requests reach it as Slack sends them: signed, over HTTP.

The bot's wiring starts the bot (``start_bot``, from the command line): this
module says what to run it with, in the settings' own environment names, and
plays the scene; it never imports the wiring, so the arrows run one way
(bot -> offline).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import re
import secrets
import sys
import tempfile
import time
import zipfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Protocol, TextIO

import httpx

from handlers.buttons import CLOSE_ACTION
from handlers.kinds.erasure.rules import APPROVE_ACTION, CANCEL_ACTION
from handlers.kinds.retrieval.rules import DOWNLOAD_ACTION
from handlers.texts import COMMAND
from offline.slack import LocalSlack, Posted
from offline.slack_requests import SlackSender, block_actions, slash_command, trigger_id
from store import Store

__all__ = ["RunningBot", "StartBot", "run_demo"]

COMPLETE_AFTER = 2.0  # seconds the sandbox's tasks take
HOLD_SECONDS = 0.5  # one day of a deletion's hold, in the sandbox

CHANNEL = "C0COMPLY"
NAMES = {"U0ALICE": "alice", "U0BOB": "bob", "U0MALLORY": "mallory", "U0BOT": "data-request"}
_HEADINGS = {
    "post": "data-request (bot) posted in #compliance:",
    "update": "the thread's first message now reads:",
    "reply": "data-request (bot) replied in the thread:",
}


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
    ":raised_hand:": "✋",
    ":pause_button:": "⏸",
    ":wastebasket:": "🗑",
    ":no_entry_sign:": "🚫",
    ":arrows_counterclockwise:": "🔄",
}


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


class _Transcript:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def say(self, text: str = "") -> None:
        with contextlib.suppress(BrokenPipeError):  # the reader (| head) has gone; the scene still ends
            print(text, file=self.out, flush=True)

    def act(self, who: str, what: str) -> None:
        self.say(f"\n▶ @{NAMES[who]} {what}")

    def show(self, kind: str, message: Posted) -> None:
        heading = _HEADINGS.get(kind) or f"only @{NAMES.get(message.visible_to or '', '?')} sees:"
        self.say(f"  {heading}")
        for line in render(message, NAMES):
            self.say(f"    │ {line}")


class RunningBot(Protocol):
    """The real bot as the scene drives it: the port it serves Slack's requests on, its store, and its end."""

    @property
    def port(self) -> int: ...

    @property
    def store(self) -> Store: ...

    async def posted(self) -> None:
        """Return once every Slack post queued so far has been sent."""

    async def stop(self) -> None: ...


StartBot = Callable[[Mapping[str, str]], Awaitable[RunningBot]]
"""Start the real bot on loopback with the sandbox, configured by these environment variables."""


async def run_demo(out: TextIO = sys.stdout, *, start_bot: StartBot) -> int:
    """Play the scene; return 0 when every step showed what it should."""
    transcript = _Transcript(out)
    token = "xoxb-demo-" + secrets.token_hex(8)
    signing_secret = secrets.token_hex(16)
    slack = LocalSlack(token=token, show=transcript.show)
    await slack.start()
    with tempfile.TemporaryDirectory(prefix="data-request-demo-") as workdir:
        env = {
            "SLACK_BOT_TOKEN": token,
            "SLACK_SIGNING_SECRET": signing_secret,
            "SLACK_API_URL": slack.base_url + "/api/",
            "DATABASE_PATH": str(Path(workdir) / "demo.db"),
            "ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "ALLOWED_USERS": "U0ALICE,U0BOB",
            "PORT": "0",
            "SANDBOX_COMPLETE_AFTER": str(COMPLETE_AFTER),
            "SANDBOX_HOLD_SECONDS": str(HOLD_SECONDS),
            "LOG_LEVEL": "ERROR",
            "IDENTITY_VERIFICATION": "required",
        }
        runtime = await start_bot(env)
        try:
            async with httpx.AsyncClient(timeout=15) as http:
                url = f"http://127.0.0.1:{runtime.port}/slack/events"
                scene = _Scene(runtime, slack, SlackSender(http, url=url, signing_secret=signing_secret), transcript)
                await scene.play()
        finally:
            await runtime.stop()
            await slack.stop()
    transcript.say("\nDemo finished: no Slack workspace, no Amazon account and no network were used.")
    return 0


class _Scene:
    def __init__(self, runtime: RunningBot, slack: LocalSlack, sender: SlackSender, t: _Transcript) -> None:
        self.runtime, self.slack, self.sender, self.t = runtime, slack, sender, t

    async def play(self) -> None:
        t = self.t
        t.say("A compliance team handles a shopper's GDPR access request in #compliance.")
        t.say(f"(Buy with Prime is the built-in sandbox: tasks finish after {COMPLETE_AFTER:g} s.)")

        # The shopper emailed three days ago: the answer's due date counts from then, not from the command.
        asked = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 3 * 86_400))
        typed = f"jane.doe@example.com gdpr --received {asked} --via email --ref ZD-4711"
        await self.act("U0ALICE", f"types  {COMMAND} {typed}")
        await self.command("U0ALICE", typed)
        parent = await self.slack.wait_for(lambda: self._parent(0))
        t.say("\n… Amazon works on the task; when it is done, its event reaches the bot's relay …")
        reply = await self.slack.wait_for(lambda: self._reply_with_button(parent.ts))

        await self.act("U0ALICE", "clicks Download before recording how she verified the shopper's identity")
        await self.click("U0ALICE", reply)
        await self.act(
            "U0ALICE",
            f"checks the order number the shopper quoted, then types  {COMMAND} verify jane.doe@example.com order"
            " --note quoted order number and delivery town",
        )
        await self.answered("U0ALICE", "verify jane.doe@example.com order --note quoted order number and delivery town")

        await self.act("U0ALICE", "clicks Download")
        before = len(self.slack.messages)
        shown = await self.click("U0ALICE", reply)
        link = next(u for u in _urls(shown) if "X-Amz-Signature" in u)
        async with httpx.AsyncClient(timeout=10) as browser:
            download = await browser.get(link)
        names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
        t.say(
            f"  (the browser downloads data_retrieval.zip: HTTP {download.status_code}, {len(download.content)} bytes,"
            f" files: {', '.join(names)})"
        )
        assert len(self.slack.messages) == before, "a link must never be posted in the channel"

        await self.act("U0MALLORY", "(not on the allow-list) clicks Download too")
        await self.click("U0MALLORY", reply)

        await self.act("U0ALICE", "sends the shopper their data, then clicks Mark as sent to shopper")
        await self.click("U0ALICE", reply, action=CLOSE_ACTION)
        await self.slack.wait_for(lambda: "Closed" in json.dumps(self.slack.messages[parent.ts].blocks))

        await self.act("U0BOB", f"types  {COMMAND} notfound.shopper@example.com")
        await self.command("U0BOB", "notfound.shopper@example.com")
        parent2 = await self.slack.wait_for(lambda: self._parent(1))
        failed = await self.slack.wait_for(lambda: self._reply_with_button(parent2.ts))
        await self.act("U0BOB", "tells the shopper no data is held about them, and clicks Mark as answered to shopper")
        await self.click("U0BOB", failed, action=CLOSE_ACTION)
        await self.erasures()
        await self.denial()

        await self.settled()
        t.say("\nThe audit log (who touched which shopper's data, and when):")
        for entry in await self.runtime.store.audit.entries():
            stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(entry.at))
            who = f"@{entry.actor_name} ({entry.actor})" if entry.actor_name else entry.actor
            t.say(f"    {stamp}  request {entry.request_id or '-'}  {who:<20} {entry.action}  {entry.detail}".rstrip())

    async def erasures(self) -> None:
        """An erasure approved by a second person and deleted after its hold; another cancelled during its hold."""
        t = self.t
        await self.settled()
        t.say("\nThe same team erases a shopper's data (GDPR erasure): two people decide, and Amazon holds it first.")
        t.say(f"(In the sandbox one day of the holding period lasts {HOLD_SECONDS:g} s.)")
        erase_typed = "delete erase.me@example.com ccpa --via form --reason shopper asked by email"
        await self.act("U0ALICE", f"types  {COMMAND} {erase_typed}")
        await self.command("U0ALICE", erase_typed)
        erase = await self.slack.wait_for(lambda: self._parent(2))
        await self.act("U0ALICE", "clicks Approve on her own erasure")
        await self.click("U0ALICE", self.slack.messages[erase.ts], action=APPROVE_ACTION)
        await self.act("U0BOB", "clicks Approve")
        await self.click("U0BOB", self.slack.messages[erase.ts], action=APPROVE_ACTION)
        await self.act(
            "U0BOB", f"replies to the shopper's email, then types  {COMMAND} verify erase.me@example.com email"
        )
        await self.answered("U0BOB", "verify erase.me@example.com email")
        await self.act("U0BOB", "clicks Approve")
        await self.click("U0BOB", self.slack.messages[erase.ts], action=APPROVE_ACTION)
        t.say("\n… Amazon holds the deletion for its holding period, then deletes; its event reaches the relay …")
        await self.slack.wait_for(lambda: "Deleted" in json.dumps(self.slack.messages[erase.ts].blocks), timeout=30)

        await self.act("U0ALICE", f"types  {COMMAND} delete cancel.me@example.com --hold 30d")
        await self.command("U0ALICE", "delete cancel.me@example.com --hold 30d")
        cancel = await self.slack.wait_for(lambda: self._parent(3))
        await self.act("U0ALICE", f"types  {COMMAND} verify cancel.me@example.com document")
        await self.answered("U0ALICE", "verify cancel.me@example.com document")
        await self.act("U0BOB", "clicks Approve")
        await self.click("U0BOB", self.slack.messages[cancel.ts], action=APPROVE_ACTION)
        await self.slack.wait_for(lambda: CANCEL_ACTION in json.dumps(self.slack.messages[cancel.ts].blocks))
        await self.act("U0ALICE", "learns the shopper changed their mind, and clicks Cancel deletion during the hold")
        await self.click("U0ALICE", self.slack.messages[cancel.ts], action=CANCEL_ACTION)
        await self.slack.wait_for(lambda: "Cancelled by" in json.dumps(self.slack.messages[cancel.ts].blocks))

    async def denial(self) -> None:
        """An erasure asked twice for the same shopper, denied as a duplicate: nothing reaches Amazon."""
        t = self.t
        await self.settled()
        t.say("\nA request the team refuses: denied with a reason, recorded for the privacy notice's figures.")
        await self.act("U0ALICE", f"types  {COMMAND} delete twice.asked@example.com")
        await self.command("U0ALICE", "delete twice.asked@example.com")
        await self.slack.wait_for(lambda: self._parent(4))
        await self.act("U0BOB", f"types  {COMMAND} deny twice.asked@example.com duplicate --note asked again by phone")
        await self.answered("U0BOB", "deny twice.asked@example.com duplicate --note asked again by phone")

    async def act(self, who: str, what: str) -> None:
        """Print the next step once the last step's thread posts are out, so each shows under its own step."""
        await self.settled()
        self.t.act(who, what)

    async def settled(self) -> None:
        """Wait until the outbox has sent every post queued so far (LocalSlack has shown each as it arrived)."""
        async with asyncio.timeout(self.slack.wait_timeout):
            await self.runtime.posted()

    # ----------------------------------------------------------------- what Slack sends

    async def command(self, user: str, text: str) -> None:
        body = slash_command(
            command=COMMAND,
            text=text,
            user=user,
            name=NAMES[user],
            channel=CHANNEL,
            channel_name="compliance",
            response_url=self.slack.response_url(user, CHANNEL),
            trigger=trigger_id(),
        )
        response = await self.sender.send(*body)
        if response.content:
            self.t.show("ephemeral", Posted(CHANNEL, "", [], response.text, visible_to=user))

    async def answered(self, user: str, text: str) -> Posted:
        """Run a command answered after its acknowledgement; return what ``user`` alone is then shown."""
        already = len(self.slack.seen)
        await self.command(user, text)
        shown: Posted = await self.slack.wait_for(
            lambda: next((m for m in self.slack.seen[already:] if m.visible_to == user), None)
        )
        return shown

    async def click(self, user: str, message: Posted, action: str = DOWNLOAD_ACTION) -> Posted:
        """Click the message's ``action`` button as ``user``; return what that user alone is then shown."""
        button = next(
            e for b in message.blocks if b.get("type") == "actions" for e in b["elements"] if e["action_id"] == action
        )
        body = block_actions(
            user=user,
            name=NAMES[user],
            action={"action_id": action, "block_id": "demo", "value": button["value"], "type": "button"},
            response_url=self.slack.response_url(user, CHANNEL),
            trigger=trigger_id(),
            channel=CHANNEL,
            message={"ts": message.ts, "thread_ts": message.thread_ts, "text": message.text},
        )
        already = len(self.slack.seen)
        await self.sender.send(*body)
        shown: Posted = await self.slack.wait_for(
            lambda: next((m for m in self.slack.seen[already:] if m.visible_to == user), None)
        )
        return shown

    def _parent(self, index: int) -> Posted | None:
        tops = [m for m in self.slack.messages.values() if m.thread_ts is None]
        return tops[index] if len(tops) > index else None

    def _reply_with_button(self, thread_ts: str) -> Posted | None:
        return next(
            (
                m
                for m in self.slack.messages.values()
                if m.thread_ts == thread_ts and any(b.get("type") == "actions" for b in m.blocks)
            ),
            None,
        )


def _urls(message: Posted) -> list[str]:
    return re.findall(r"https?://[^|>\s\"]+", json.dumps(message.blocks))
