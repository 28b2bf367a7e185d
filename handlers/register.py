"""Every Bolt listener in one place: which Slack input reaches which handler.

Bolt hands a listener the arguments its parameters name (``ack``, ``command``, ``body``, ``respond``,
``event``), so each listener here keeps those names and types and passes the input on, with the
``Desk``, to the handler that decides. The bot's wiring builds the ``AsyncApp`` (signing, authorize,
its logger) and calls ``register`` once; the web server answers the slash command over HTTP without
Bolt's dispatch (bot/slash.py) through the same ``command_listener``. A kind's own buttons come from
its entry in the registry (``KindFlow.actions``): a new kind's button needs no line here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from handlers.buttons import CLOSE_ACTION, DENY_ACTION, HOME_MORE_ACTION, LIST_MORE_ACTION, VERIFY_ACTION
from handlers.cases import handle_close, handle_home_more
from handlers.commands import handle_command
from handlers.desk import Desk
from handlers.form_submit import submit_form
from handlers.intake_form import NEW_REQUEST_SHORTCUT, on_shortcut
from handlers.kinds import Click, ViewSubmit
from handlers.listing import handle_list_more
from handlers.record import actions as record
from handlers.record.rules import DENY_VIEW, VERIFY_VIEW
from handlers.texts import COMMAND
from handlers.texts.form import FORM_VIEW
from handlers.workers.home import HomeTab

__all__ = ["CommandListener", "command_listener", "register"]

CommandListener = Callable[[AsyncAck, dict[str, Any], AsyncRespond], Awaitable[None]]


def command_listener(deps: Desk) -> CommandListener:
    """The slash command's listener, with the parameter names Bolt fills in."""

    async def on_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await handle_command(deps, ack=ack, command=command, respond=respond)

    return on_command


def register(app: AsyncApp, deps: Desk, *, home: HomeTab) -> None:
    """Route the slash command, the new-request shortcut and form, every kind's buttons and modals, Close,
    Verify identity and Deny (with their forms), the lists' **More** and the Home tab to their handlers."""

    async def on_close(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await handle_close(deps, ack=ack, body=body, respond=respond)

    async def on_list_more(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await handle_list_more(deps, ack=ack, body=body, respond=respond)

    async def on_home_more(ack: AsyncAck, body: dict[str, Any]) -> None:
        await handle_home_more(deps, home, ack=ack, body=body)

    async def on_new_request_shortcut(ack: AsyncAck, body: dict[str, Any]) -> None:
        await on_shortcut(deps, ack=ack, body=body)

    async def on_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await submit_form(deps, ack=ack, body=body, view=view)

    async def on_home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and event.get("user"):
            deps.background.spawn(home.opened(str(event["user"])), name="home opened")

    app.command(COMMAND)(command_listener(deps))
    app.shortcut(NEW_REQUEST_SHORTCUT)(on_new_request_shortcut)
    app.view(FORM_VIEW)(on_form)
    for kind in deps.flow.kinds.values():
        for action_id, click in kind.actions.items():
            app.action(action_id)(_on_click(click, deps))
        for callback_id, submit in kind.views.items():
            app.view(callback_id)(_on_submit(submit, deps))
    app.action(CLOSE_ACTION)(on_close)
    for action_id, click in ((VERIFY_ACTION, record.on_verify), (DENY_ACTION, record.on_deny)):
        app.action(action_id)(_on_click(click, deps))
    for callback_id, submit in ((VERIFY_VIEW, record.on_verify_submitted), (DENY_VIEW, record.on_deny_submitted)):
        app.view(callback_id)(_on_submit(submit, deps))
    app.action(LIST_MORE_ACTION)(on_list_more)
    app.action(HOME_MORE_ACTION)(on_home_more)
    app.event("app_home_opened")(on_home_opened)


def _on_click(click: Click, deps: Desk) -> Callable[[AsyncAck, dict[str, Any], AsyncRespond], Awaitable[None]]:
    """The listener for one of a kind's buttons, with the parameter names Bolt fills in."""

    async def on_click(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await click(deps, ack=ack, body=body, respond=respond)

    return on_click


def _on_submit(submit: ViewSubmit, deps: Desk) -> Callable[[AsyncAck, dict[str, Any], dict[str, Any]], Awaitable[None]]:
    """The listener for one of a kind's modals being submitted, with the parameter names Bolt fills in."""

    async def on_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await submit(deps, ack=ack, body=body, view=view)

    return on_submit
