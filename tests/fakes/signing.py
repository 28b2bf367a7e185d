"""Requests as Slack sends them in HTTP mode: signed, form-encoded, field for field.

The bot verifies every request with Bolt, so tests sign theirs with
``slack_sdk``'s own ``SignatureVerifier`` rather than skipping verification.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from .slack import BOT_ID, BOT_USER, TEAM_ID

__all__ = ["APP_ID", "block_actions_body", "shortcut_body", "slack_headers", "slash_body", "view_submission_body"]

APP_ID = "A0TEST"
_TEAM_DOMAIN = "fake"


def slack_headers(
    body: str,
    signing_secret: str,
    *,
    timestamp: int | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, str]:
    """Return the headers Slack sends with ``body``: content type, timestamp and v0 signature."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None  # None only without a secret
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}


def _trigger_id() -> str:
    return f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def slash_body(text: str, *, user: str, channel: str, response_url: str, command: str = "/data-request") -> str:
    """Return a slash command body, urlencoded with the fields Slack sends."""
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": TEAM_ID,
            "team_domain": _TEAM_DOMAIN,
            "channel_id": channel,
            "channel_name": "compliance",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": _trigger_id(),
        }
    )


def block_actions_body(
    *,
    user: str,
    channel: str,
    message_ts: str,
    action_id: str,
    value: str,
    block_id: str,
    response_url: str,
    thread_ts: str | None = None,
    message: dict[str, Any] | None = None,
    ephemeral: bool = False,
) -> str:
    """Return a button click body: ``payload=<json>`` as Slack sends block_actions.

    ``message`` is the clicked message as posted (e.g. from ``FakeSlack.posts()``);
    without it a minimal bot message with that ts stands in. An ``ephemeral`` message (shown to one
    person, kept by no channel) comes as Slack sends it: marked in the container, without the message.
    """
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel,
        "is_ephemeral": ephemeral,
    }
    shown: dict[str, Any] = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "text": "", "ts": message_ts}
    if message:
        shown.update({k: v for k, v in message.items() if k not in ("channel", "token")})
    if thread_ts:
        container["thread_ts"] = shown["thread_ts"] = thread_ts
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "deprecated-verification-token",
        "container": container,
        "trigger_id": _trigger_id(),
        "team": {"id": TEAM_ID, "domain": _TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "compliance"},
        "message": shown,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": "Download", "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    if ephemeral:
        del payload["message"]
    return urlencode({"payload": json.dumps(payload)})


def _element_state(element: dict[str, Any], typed: str) -> dict[str, Any]:
    """One input's state as Slack sends it for its element type: ``typed`` is the text, date, option value or
    conversation id chosen."""
    kind = element.get("type", "plain_text_input")
    if kind == "datepicker":
        return {"type": kind, "selected_date": typed or None}
    if kind in ("static_select", "radio_buttons"):
        chosen = next((o for o in element.get("options") or [] if o.get("value") == typed), None)
        return {"type": kind, "selected_option": chosen}
    if kind == "conversations_select":
        return {"type": kind, "selected_conversation": typed or None}
    return {"type": kind, "value": typed or None}


def view_submission_body(
    *,
    user: str,
    view: dict[str, Any],
    values: dict[str, dict[str, str]],
    selected: dict[str, dict[str, str]] | None = None,
    response_url: str | None = None,
) -> str:
    """Return a modal's submission body as Slack sends it: ``view`` as opened, with each input's value.

    ``values`` maps block id -> action id -> what was typed or chosen (text, ``YYYY-MM-DD``, an option's value,
    a conversation id), put in the state the way Slack does for that input's element type; an input not in
    ``values`` is sent with its initial value, or empty. A conversation picked in an input with
    ``response_url_enabled`` comes with ``response_url`` for it, in ``response_urls``. ``selected`` is more of
    the same, for a test that names its choices apart from its text.
    """
    values = {
        block: {**values.get(block, {}), **(selected or {}).get(block, {})} for block in {*values, *(selected or {})}
    }
    state: dict[str, dict[str, Any]] = {}
    response_urls: list[dict[str, str]] = []
    for block in view.get("blocks") or []:
        if block.get("type") != "input":
            continue
        element = block["element"]
        action = element["action_id"]
        initial = element.get("initial_date") or (element.get("initial_option") or {}).get("value") or ""
        typed = values.get(block["block_id"], {}).get(action, initial)
        state[block["block_id"]] = {action: _element_state(element, typed)}
        if element.get("response_url_enabled") and typed and response_url:
            response_urls.append(
                {"block_id": block["block_id"], "action_id": action, "channel_id": typed, "response_url": response_url}
            )
    for block_id, inputs in values.items():  # inputs the view does not name (a test's own modal)
        for action, typed in inputs.items():
            state.setdefault(block_id, {}).setdefault(action, {"type": "plain_text_input", "value": typed})
    payload: dict[str, Any] = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": _TEAM_DOMAIN},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "deprecated-verification-token",
        "trigger_id": _trigger_id(),
        "view": {
            "id": "V" + secrets.token_hex(5).upper(),
            "team_id": TEAM_ID,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
            **view,
            "state": {"values": state},
            "hash": secrets.token_hex(8),
        },
        "response_urls": response_urls,
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return urlencode({"payload": json.dumps(payload)})


def shortcut_body(callback_id: str, *, user: str) -> str:
    """Return a global shortcut's body as Slack sends it: no channel, a trigger id for a modal."""
    payload = {
        "type": "shortcut",
        "token": "deprecated-verification-token",
        "action_ts": f"{time.time():.6f}",
        "team": {"id": TEAM_ID, "domain": _TEAM_DOMAIN},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": _trigger_id(),
    }
    return urlencode({"payload": json.dumps(payload)})
