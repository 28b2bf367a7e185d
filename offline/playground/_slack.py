"""The loopback Slack, keeping what each person of the playground sees: ephemerals, modals, Home tabs.

``LocalSlack`` already keeps the channel as Slack keeps it; this adds the parts Slack shows to one
person only, so the page can draw the channel as that person sees it. Every change wakes the
page's long poll through the same change feed the tests wait on.
"""

from __future__ import annotations

import socket
from dataclasses import asdict
from typing import Any

from aiohttp import web

from offline.slack import BOT_USER, LocalSlack, Posted

__all__ = ["PlaygroundSlack"]

POLL_SECONDS = 20.0  # a page's long poll returns after this long with nothing new, and asks again


class PlaygroundSlack(LocalSlack):
    """``LocalSlack`` on the socket it is given, remembering each person's ephemerals, open modal and Home tab."""

    def __init__(self, token: str, *, listening: socket.socket, people: dict[str, str]) -> None:
        super().__init__(token)
        self._listening = listening
        self.people = dict(people)
        self.version = 0
        self.modals: dict[str, dict[str, Any]] = {}  # user -> {"view": ..., "errors": {...}}
        self.homes: dict[str, dict[str, Any]] = {}  # user -> the Home tab view last published
        self._triggers: dict[str, str] = {}  # trigger_id -> the user whose action it came with
        self._threads: dict[str, str] = {}  # response_url -> the thread it was handed out in
        self.page_routes: list[web.RouteDef] = []  # the page's, served beside the Web API

    async def start(self, listening: socket.socket | None = None) -> None:
        """Serve on the socket given at construction (bound to PORT by the command line)."""
        await super().start(listening or self._listening)

    def _app(self) -> web.Application:
        app = super()._app()
        app.add_routes(self.page_routes)
        return app

    def triggered_by(self, trigger: str, user: str) -> None:
        """Remember that ``trigger`` came with ``user``'s action: a modal opened with it is theirs."""
        self._triggers[trigger] = user

    def response_url_in(self, user: str, channel: str, thread_ts: str | None) -> str:
        """A response_url for ``user``'s action in a thread: what is answered through it shows in that thread."""
        url = self.response_url(user, channel)
        if thread_ts:
            self._threads[url] = thread_ts
        return url

    async def changed(self) -> None:
        """Wake the pages: something the playground keeps (not a Web API call) changed."""
        await self._notify()

    async def _notify(self) -> None:
        self.version += 1
        await super()._notify()

    async def next_version(self, after: int) -> int:
        """Return the version once it is past ``after``, or after ``POLL_SECONDS`` unchanged."""
        try:
            return await self.wait_for(lambda: self.version if self.version > after else None, timeout=POLL_SECONDS)
        except TimeoutError:
            return self.version

    def _handle(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        answer = super()._handle(method, args)
        if not answer.get("ok"):
            return answer
        if method == "views.open" and (user := self._triggers.get(str(args.get("trigger_id", "")))):
            self.modals[user] = {"view": answer["view"], "errors": {}}
        elif method == "views.publish":
            self.homes[str(args.get("user_id", ""))] = answer["view"]
        elif method == "views.update":
            for modal in self.modals.values():
                if modal["view"].get("id") == args.get("view_id"):
                    modal.update(view={**(args.get("view") or {}), "id": args.get("view_id")}, errors={})
        return answer

    def _see(self, kind: str, message: Posted) -> None:
        if message.visible_to and not message.ts:  # an answer through a response_url, just recorded
            message.ts = self._next_ts()  # it has no ts of its own; this places it in the channel's order
            if self.responses and (thread := self._threads.get(self.responses[-1].url)):
                message.thread_ts = thread
        super()._see(kind, message)

    def show_to(self, user: str, channel: str, body: dict[str, Any]) -> None:
        """Show ``body`` (an ephemeral answer, such as a slash command's acknowledgement) to ``user``."""
        message = Posted.of(channel, body, visible_to=user)
        message.ts = self._next_ts()
        self._see("ephemeral", message)

    def view_for(self, user: str) -> dict[str, Any]:
        """Everything ``user`` sees now: the channel's messages with their own ephemerals, modal and Home tab."""
        shown = [asdict(m) for m in self.messages.values()]
        shown += [asdict(m) for m in self.seen if m.visible_to == user]
        replies: dict[str, int] = {}
        for message in shown:
            if message["thread_ts"] and message["thread_ts"] != message["ts"] and not message["visible_to"]:
                replies[message["thread_ts"]] = replies.get(message["thread_ts"], 0) + 1
        for message in shown:
            message["reply_count"] = replies.get(message["ts"], 0)
            message.pop("metadata", None)
        shown.sort(key=lambda m: float(m["ts"] or 0))
        return {
            "version": self.version,
            "user": user,
            "people": self.people,
            "bot": BOT_USER,
            "messages": shown,
            "modal": self.modals.get(user),
            "home": self.homes.get(user),
        }
