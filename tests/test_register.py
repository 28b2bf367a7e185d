"""``register``: every Slack input reaches its handler, through a bare Bolt app and no web server.

Bolt gives a listener the arguments its parameters name; a listener registered under the wrong id, or
one whose parameters Bolt cannot fill, fails here with Bolt's own answer (404, 500) instead of a
command that silently does nothing in the end-to-end tests.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeSlack, block_actions_body, slash_body
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from core import Background
from handlers import texts
from handlers.buttons import CLOSE_ACTION
from handlers.desk import Desk, Permalinks
from handlers.flow import Flow
from handlers.kinds.registry import KINDS
from handlers.kinds.retrieval.rules import DOWNLOAD_ACTION
from handlers.register import register
from handlers.workers.access import Authorizer
from handlers.workers.home import HomeTab
from prime import Operations, TaskState
from store import EmailCipher, Store

HELP_KINDS = [kind.texts for kind in KINDS.values()]
FORM = {"content-type": ["application/x-www-form-urlencoded"]}


class NoAmazon:
    """No listener here gets as far as Amazon: a call fails the test."""

    async def start_task(
        self, operations: Operations, *, email: str, client_token: str, extra: Mapping[str, Any] | None = None
    ) -> str:
        raise AssertionError("a listener asked Amazon to start a task")

    async def task(self, operations: Operations, task_id: str) -> TaskState:
        raise AssertionError(f"a listener asked Amazon about task {task_id}")


@dataclass
class Registered:
    app: AsyncApp
    desk: Desk
    slack: FakeSlack
    store: Store

    async def dispatch(self, body: str, headers: dict[str, list[str]]) -> BoltResponse:
        """Hand one request to Bolt, as the web server does."""
        return await self.app.async_dispatch(AsyncBoltRequest(body=body, headers=headers))

    async def settle(self) -> None:
        """Wait for the work the listeners spawned (and take no more)."""
        assert await self.desk.background.drain(5.0) == 0, "a listener's background work did not finish"

    async def click(self, action_id: str, *, user: str, value: str = "1") -> BoltResponse:
        body = block_actions_body(
            user=user,
            channel="C0COMPLY",
            message_ts="1700000000.000100",
            action_id=action_id,
            value=value,
            block_id="b",
            response_url=self.slack.response_url(user),
        )
        return await self.dispatch(body, FORM)


@pytest.fixture
async def registered(tmp_path: Path) -> AsyncIterator[Registered]:
    async with FakeSlack() as slack:
        store = await Store.open(tmp_path / "requests.db", cipher=EmailCipher(os.urandom(32)))
        web = AsyncWebClient(token=slack.token, base_url=slack.api_url)
        flow = Flow(
            store=store, prime=NoAmazon(), reconcile_interval=3600.0, retry_soon=0.0, retry_cap=0.0, kinds=KINDS
        )
        background = Background()
        authorizer = Authorizer(allowed_users=frozenset({"U0ALICE"}), usergroup=None, slack=web)
        permalinks = Permalinks(web)
        desk = Desk(
            flow=flow,
            slack=web,
            authorizer=authorizer,
            background=background,
            permalinks=permalinks,
            deadline_days=30,
            verification_required=False,
        )
        home = HomeTab(
            store=store,
            slack=web,
            permalinks=permalinks,
            authorizer=authorizer,
            background=background,
            clock=flow.clock,
        )

        async def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
            return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=slack.token)

        app = AsyncApp(
            client=web, authorize=authorize, request_verification_enabled=False, process_before_response=True
        )
        register(app, desk, home=home)
        try:
            yield Registered(app, desk, slack, store)
        finally:
            await background.drain(1.0)
            await store.close()


async def test_the_slash_command_reaches_handle_command(registered: Registered) -> None:
    """``/data-request help`` is answered by the command's handler, in the acknowledgement."""
    body = slash_body("help", user="U0ALICE", channel="C0COMPLY", response_url=registered.slack.response_url("U0ALICE"))
    response = await registered.dispatch(body, FORM)
    assert response.status == 200, response.body
    assert json.loads(response.body)["text"] == texts.help_message(HELP_KINDS, everyone_allowed=False)["text"]


@pytest.mark.parametrize(("action_id", "action"), [(DOWNLOAD_ACTION, "download"), (CLOSE_ACTION, "close")])
async def test_each_button_reaches_its_handler(registered: Registered, action_id: str, action: str) -> None:
    """A click on each button is acknowledged and handled by its own handler: a user not allowed is refused,
    and the refusal is audited under that button's action."""
    response = await registered.click(action_id, user="U0MALLORY")
    assert response.status == 200, response.body
    await registered.settle()
    (entry,) = await registered.store.audit.entries()
    assert (entry.actor, entry.action, entry.detail) == ("U0MALLORY", "refused", f"{action}: not allowed")
    (refusal,) = registered.slack.ephemerals_to("U0MALLORY")
    assert refusal["text"] == texts.not_allowed("")["text"]


async def test_a_button_nobody_registered_is_not_handled(registered: Registered) -> None:
    """An action id with no listener is Bolt's 404: the two buttons above are found by their ids, not by luck."""
    response = await registered.click("no_such_action", user="U0ALICE")
    assert response.status == 404


async def test_opening_the_home_tab_publishes_it(registered: Registered) -> None:
    """``app_home_opened`` on the Home tab publishes the user's view; on the Messages tab it does not."""
    for tab in ("messages", "home"):
        event = {"type": "app_home_opened", "user": "U0ALICE", "channel": "D0ALICE", "tab": tab}
        body = json.dumps({"type": "event_callback", "team_id": "T0TEST", "api_app_id": "A0TEST", "event": event})
        response = await registered.dispatch(body, {"content-type": ["application/json"]})
        assert response.status == 200, response.body
    await registered.settle()
    (published,) = registered.slack.calls_to("views.publish")
    assert published.args["user_id"] == "U0ALICE" and published.ok
