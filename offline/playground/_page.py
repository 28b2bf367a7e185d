"""The playground's web page and the few calls it makes, each turned into what Slack would send the bot.

The page never talks to the bot: it tells this server what a person did (typed a command,
clicked a button, submitted a form, opened the Home tab), and this server, standing where
Slack stands, signs the request and posts it to the bot's ``/slack/events``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib import resources
from typing import Any

from aiohttp import web

from handlers.intake_form import NEW_REQUEST_SHORTCUT
from offline.playground._slack import PlaygroundSlack
from offline.slack import BOT_ID, BOT_USER, Posted
from offline.slack_requests import (
    SlackSender,
    block_actions,
    global_shortcut,
    home_opened,
    slash_command,
    trigger_id,
    view_submission,
)

__all__ = ["CHANNEL", "CHANNEL_NAME", "Page"]

CHANNEL = "C0COMPLY"
CHANNEL_NAME = "compliance"
_FILES = {"index.html": "text/html", "playground.css": "text/css", "playground.js": "text/javascript"}


def _file(name: str) -> bytes:
    return resources.files("offline.playground").joinpath("static", name).read_bytes()


class Page:
    """The routes of the page (``/``, ``/playground/…``) on the playground's Slack server."""

    def __init__(self, slack: PlaygroundSlack) -> None:
        self.slack = slack
        self.sender: SlackSender | None = None  # set once the bot runs

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self._index),
            web.get("/playground/{name}", self._static),
            web.get("/playground/api/state", self._state),
            web.post("/playground/api/command", self._command),
            web.post("/playground/api/shortcut", self._shortcut),
            web.post("/playground/api/action", self._action),
            web.post("/playground/api/submit", self._submit),
            web.post("/playground/api/close", self._close),
            web.post("/playground/api/home", self._home),
        ]

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(body=_file("index.html"), content_type="text/html")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _FILES:
            raise web.HTTPNotFound()
        return web.Response(body=_file(name), content_type=_FILES[name])

    async def _state(self, request: web.Request) -> web.Response:
        user = self._person(request.query.get("user", ""))
        after = int(request.query.get("after") or -1)
        await self.slack.next_version(after)
        shortcuts = [{"callback_id": NEW_REQUEST_SHORTCUT, "name": "New data request"}]
        return web.json_response(
            {**self.slack.view_for(user), "channels": {CHANNEL: CHANNEL_NAME}, "shortcuts": shortcuts}
        )

    async def _read(self, request: web.Request) -> tuple[str, dict[str, Any], SlackSender]:
        """The person and what they did; only JSON is taken, so another site's form cannot post here."""
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send JSON")
        if self.sender is None:
            raise web.HTTPServiceUnavailable(text="the bot is starting")
        said = await request.json()
        return self._person(str(said.get("user", ""))), said, self.sender

    def _person(self, user: str) -> str:
        if user not in self.slack.people:
            raise web.HTTPBadRequest(text="no such person in the playground")
        return user

    def _trigger(self, user: str) -> str:
        trigger = trigger_id()
        self.slack.triggered_by(trigger, user)
        return trigger

    async def _command(self, request: web.Request) -> web.Response:
        user, said, sender = await self._read(request)
        body = slash_command(
            command=str(said.get("command", "")),
            text=str(said.get("text", "")),
            user=user,
            name=self.slack.people[user],
            channel=CHANNEL,
            channel_name=CHANNEL_NAME,
            response_url=self.slack.response_url_in(user, CHANNEL, None),
            trigger=self._trigger(user),
        )
        answer = await sender.send(*body)
        await self._acknowledged(user, answer.status_code, answer.text)
        return web.json_response({"ok": True})

    async def _shortcut(self, request: web.Request) -> web.Response:
        user, said, sender = await self._read(request)
        callback_id = str(said.get("callback_id", ""))
        body = global_shortcut(
            callback_id=callback_id, user=user, name=self.slack.people[user], trigger=self._trigger(user)
        )
        answer = await sender.send(*body)
        await self._acknowledged(user, answer.status_code, "")
        return web.json_response({"ok": True})

    async def _action(self, request: web.Request) -> web.Response:
        user, said, sender = await self._read(request)
        action, where = dict(said.get("action") or {}), said.get("where")
        name, trigger = self.slack.people[user], self._trigger(user)
        if where in ("home", "modal"):
            view = self.slack.homes.get(user) if where == "home" else (self.slack.modals.get(user) or {}).get("view")
            if view is None:
                raise web.HTTPConflict(text="that view is not open")
            body = block_actions(user=user, name=name, action=action, response_url=None, trigger=trigger, view=view)
        else:
            message = self._message(user, str(said.get("ts", "")))
            body = block_actions(
                user=user,
                name=name,
                action=action,
                response_url=self.slack.response_url_in(user, CHANNEL, message.thread_ts),
                trigger=trigger,
                channel=CHANNEL,
                message=_as_sent(message),
                ephemeral=message.visible_to is not None,
            )
        answer = await sender.send(*body)
        await self._acknowledged(user, answer.status_code, "")
        return web.json_response({"ok": True})

    def _message(self, user: str, ts: str) -> Posted:
        if found := self.slack.messages.get(ts):
            return found
        for seen in self.slack.seen:
            if seen.visible_to == user and seen.ts == ts:
                return seen
        raise web.HTTPNotFound(text="no such message")

    async def _submit(self, request: web.Request) -> web.Response:
        user, said, sender = await self._read(request)
        modal = self.slack.modals.get(user)
        if modal is None:
            raise web.HTTPConflict(text="no form is open")
        values = dict(said.get("values") or {})
        urls = self._response_urls(user, modal["view"], values)
        body = view_submission(
            user=user, name=self.slack.people[user], view=modal["view"], values=values, response_urls=urls
        )
        answer = await sender.send(*body)
        reply: dict[str, Any] = json.loads(answer.text) if answer.text.strip().startswith("{") else {}
        what = reply.get("response_action")
        if answer.status_code != 200:
            modal["errors"] = {"": f"The bot answered HTTP {answer.status_code}."}
        elif what == "errors":
            modal["errors"] = dict(reply.get("errors") or {})
        elif what in ("update", "push"):
            self.slack.modals[user] = {"view": {"id": modal["view"].get("id"), **reply["view"]}, "errors": {}}
        else:
            self.slack.modals.pop(user, None)
        await self.slack.changed()
        return web.json_response({"ok": True})

    def _response_urls(self, user: str, view: dict[str, Any], values: dict[str, Any]) -> list[dict[str, str]]:
        """What Slack adds for each conversation picked in a select with ``response_url_enabled``: a response_url
        whose answers reach the person alone in that conversation."""
        urls = []
        for block in view.get("blocks") or []:
            element = block.get("element") or {}
            if block.get("type") != "input" or not element.get("response_url_enabled"):
                continue
            picked = (values.get(block.get("block_id")) or {}).get(element.get("action_id")) or {}
            channel = str(picked.get("selected_conversation") or picked.get("selected_channel") or "")
            if channel:
                url = self.slack.response_url_in(user, channel, None)
                urls.append(
                    {
                        "block_id": block["block_id"],
                        "action_id": element["action_id"],
                        "channel_id": channel,
                        "response_url": url,
                    }
                )
        return urls

    async def _close(self, request: web.Request) -> web.Response:
        user, _, _ = await self._read(request)
        self.slack.modals.pop(user, None)
        await self.slack.changed()
        return web.json_response({"ok": True})

    async def _home(self, request: web.Request) -> web.Response:
        user, _, sender = await self._read(request)
        answer = await sender.send(*home_opened(user=user))
        await self._acknowledged(user, answer.status_code, "")
        return web.json_response({"ok": True})

    async def _acknowledged(self, user: str, status: int, text: str) -> None:
        """Show what the bot answered in its acknowledgement to the person alone, as Slack does."""
        if status != 200:
            self.slack.show_to(user, CHANNEL, {"text": f"The bot answered HTTP {status}: {text[:200]}"})
        elif text.strip():
            body = json.loads(text) if text.strip().startswith("{") else {"text": text}
            self.slack.show_to(user, CHANNEL, body)
        await self.slack.changed()


def _as_sent(message: Posted) -> dict[str, Any]:
    """A message as Slack puts it in a click's payload."""
    sent = {k: v for k, v in asdict(message).items() if k not in ("channel", "visible_to") and v}
    return {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, **sent}
