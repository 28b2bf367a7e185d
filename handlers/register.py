"""Every Bolt listener in one place: which Slack input reaches which handler.

Bolt hands a listener the arguments its parameters name (``ack``, ``command``, ``body``, ``respond``,
``event``), so each listener here keeps those names and types and passes the input on, with the
``Desk``, to the handler that decides. The bot's wiring builds the ``AsyncApp`` (signing, authorize,
its logger) and calls ``register`` once; a new button is a line here, not an edit to the wiring.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from handlers.cases import HomeTab, handle_close
from handlers.commands import handle_command
from handlers.context import Desk
from handlers.download import handle_download
from handlers.texts import CLOSE_ACTION, COMMAND, DOWNLOAD_ACTION

__all__ = ["register"]


def register(app: AsyncApp, deps: Desk, *, home: HomeTab) -> None:
    """Route the slash command, both buttons and the opening of the Home tab to their handlers."""

    async def on_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await handle_command(deps, ack=ack, command=command, respond=respond)

    async def on_download(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await handle_download(deps, ack=ack, body=body, respond=respond)

    async def on_close(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await handle_close(deps, ack=ack, body=body, respond=respond)

    async def on_home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and event.get("user"):
            deps.background.spawn(home.opened(str(event["user"])), name="home opened")

    app.command(COMMAND)(on_command)
    app.action(DOWNLOAD_ACTION)(on_download)
    app.action(CLOSE_ACTION)(on_close)
    app.event("app_home_opened")(on_home_opened)
