"""``/data-request`` over HTTP is answered before Bolt's dispatch (bot/slash.py), verified as Bolt verifies it.

Every other test's command takes this path, so what a command does is shown there; these show that the
path is taken, what it refuses, what it leaves to Bolt, and that its listener gets the fields Bolt's
parse of the same body gives.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from fakes import slack_headers, slash_body
from harness import CHANNEL, SIGNING_SECRET, Harness
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slash import FORM, SlashCommand
from handlers.texts import COMMAND

EMAIL = "jane@example.com"


async def stored(bot: Harness, email: str = EMAIL) -> bool:
    return bool(await bot.runtime.store.requests.for_email(email))


async def test_a_signed_command_is_answered_without_bolts_dispatch(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With Bolt's dispatch failing every request, a signed command is still acknowledged and stored."""

    async def no_dispatch(self: AsyncApp, req: AsyncBoltRequest) -> None:
        raise AssertionError("the command went through Bolt's dispatch")

    monkeypatch.setattr(AsyncApp, "async_dispatch", no_dispatch)
    response = await bot.slash(EMAIL)
    assert (response.status_code, response.text) == (200, "")
    assert await stored(bot)


async def test_a_command_signed_over_five_minutes_ago_is_refused(bot: Harness) -> None:
    """A signature Slack made more than five minutes ago is a replay: 401, and nothing is stored or started."""
    body = slash_body(EMAIL, user="U0ALICE", channel=CHANNEL, response_url=bot.slack.response_url("U0ALICE"))
    headers = slack_headers(body, SIGNING_SECRET, timestamp=int(time.time()) - 5 * 60 - 30)
    response = await bot.http.post(bot.url + "/slack/events", content=body, headers=headers)
    assert response.status_code == 401
    assert not await stored(bot) and not bot.prime.starts()


async def test_a_command_changed_after_it_was_signed_is_refused(bot: Harness) -> None:
    """The signature covers the body: another email under Slack's signature for the first is a 401."""
    url = bot.slack.response_url("U0ALICE")
    signed = slash_body(EMAIL, user="U0ALICE", channel=CHANNEL, response_url=url)
    sent = signed.replace("jane%40", "mallory%40")
    headers = slack_headers(signed, SIGNING_SECRET)
    response = await bot.http.post(bot.url + "/slack/events", content=sent, headers=headers)
    assert response.status_code == 401
    assert not await stored(bot, "mallory@example.com") and not bot.prime.starts()


async def test_slacks_ssl_check_is_answered_by_bolt_and_stores_nothing(bot: Harness) -> None:
    """Slack's certificate check names the command but is no command: Bolt answers it 200, as before."""
    body = urlencode({"ssl_check": "1", "token": "deprecated-verification-token", "command": COMMAND, "text": EMAIL})
    response = await bot.http.post(bot.url + "/slack/events", content=body, headers={"Content-Type": FORM})
    assert response.status_code == 200
    assert not await stored(bot)


async def test_a_command_the_bot_does_not_have_is_left_to_bolt(bot: Harness) -> None:
    """Another slash command, signed, reaches Bolt, which has no listener for it: its 404, nothing stored."""
    url = bot.slack.response_url("U0ALICE")
    body = slash_body(EMAIL, user="U0ALICE", channel=CHANNEL, response_url=url, command="/something-else")
    response = await bot.http.post(bot.url + "/slack/events", content=body, headers=slack_headers(body, SIGNING_SECRET))
    assert response.status_code == 404
    assert not await stored(bot)


async def test_a_listener_that_raises_is_answered_500_and_logged(
    bot: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A listener that raises is a 500 with the traceback in the log, as Bolt answers and logs it."""

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the handler broke")

    monkeypatch.setattr("handlers.register.handle_command", broken)
    caplog.set_level(logging.ERROR)
    response = await bot.slash(EMAIL)
    assert response.status_code == 500
    assert any(r.exc_info and "the handler broke" in str(r.exc_info[1]) for r in caplog.records)


@pytest.mark.parametrize(
    "text",
    ["", "help", "jane+tag@example.com --received 2026-01-02", "status café", "a%20b & c=d", "  spaced  "],
)
async def test_the_listener_gets_the_fields_bolt_parses_from_the_same_body(text: str) -> None:
    """For a signed command the fields are Bolt's own parse of the body: the same input, the same command."""
    body = slash_body(text, user="U0ALICE", channel=CHANNEL, response_url="https://hooks.slack.test/r/1")
    headers = slack_headers(body, SIGNING_SECRET)

    async def listener(*args: Any) -> None:
        raise AssertionError("not called here")

    slash = SlashCommand(
        signing_secret=SIGNING_SECRET, command=COMMAND, listener=listener, slack=AsyncWebClient(token="xoxb-test")
    )
    fields = slash.fields(body, content_type=FORM, headers=headers)
    assert fields == AsyncBoltRequest(body=body, headers=headers).body
    assert fields["text"] == text
