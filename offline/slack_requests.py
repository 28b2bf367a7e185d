"""What Slack sends to the bot's ``/slack/events`` in HTTP mode, signed as Slack signs it.

The demo and the playground stand where Slack stands: they build these bodies and sign them
with the bot's signing secret, so the bot verifies and handles them exactly as it would
Slack's. Each function returns ``(body, content type)``; ``SlackSender`` signs and posts.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

__all__ = [
    "TEAM",
    "SlackSender",
    "block_actions",
    "global_shortcut",
    "home_opened",
    "slash_command",
    "trigger_id",
    "view_submission",
]

TEAM = "T0LOCAL"
FORM = "application/x-www-form-urlencoded"


def trigger_id() -> str:
    """A fresh trigger id, shaped as Slack's (the bot hands it back to ``views.open``)."""
    return f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def _user(user: str, name: str) -> dict[str, str]:
    return {"id": user, "username": name, "name": name, "team_id": TEAM}


def slash_command(
    *, command: str, text: str, user: str, name: str, channel: str, channel_name: str, response_url: str, trigger: str
) -> tuple[str, str]:
    """A slash command, form-encoded with the fields Slack sends."""
    fields = {
        "command": command,
        "text": text,
        "user_id": user,
        "user_name": name,
        "channel_id": channel,
        "channel_name": channel_name,
        "team_id": TEAM,
        "response_url": response_url,
        "trigger_id": trigger,
    }
    return urlencode(fields), FORM


def block_actions(
    *,
    user: str,
    name: str,
    action: dict[str, Any],
    response_url: str | None,
    trigger: str,
    channel: str | None = None,
    message: dict[str, Any] | None = None,
    ephemeral: bool = False,
    view: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """A click on a message's button (``message``; an ``ephemeral`` one comes without it) or in a ``view``."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user, name),
        "team": {"id": TEAM},
        "trigger_id": trigger,
        "actions": [{**action, "action_ts": f"{time.time():.6f}"}],
        "state": {"values": {}},
    }
    if view is not None:
        payload["container"] = {"type": "view", "view_id": view.get("id", "")}
        payload["view"] = view
    else:
        ts = str((message or {}).get("ts", ""))
        payload["container"] = {"type": "message", "channel_id": channel, "message_ts": ts, "is_ephemeral": ephemeral}
        if (message or {}).get("thread_ts"):
            payload["container"]["thread_ts"] = (message or {})["thread_ts"]
        payload["channel"] = {"id": channel}
        if not ephemeral and message is not None:
            payload["message"] = message
    if response_url is not None:
        payload["response_url"] = response_url
    return urlencode({"payload": json.dumps(payload)}), FORM


def view_submission(
    *,
    user: str,
    name: str,
    view: dict[str, Any],
    values: dict[str, Any],
    response_urls: list[dict[str, str]] | None = None,
) -> tuple[str, str]:
    """A modal's submission: the view as opened, with ``values`` as its ``state.values``, and a response_url
    for each conversation picked in a ``response_url_enabled`` select (``response_urls``)."""
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM},
        "user": _user(user, name),
        "trigger_id": trigger_id(),
        "view": {**view, "state": {"values": values}},
        "response_urls": list(response_urls or []),
    }
    return urlencode({"payload": json.dumps(payload)}), FORM


def global_shortcut(*, callback_id: str, user: str, name: str, trigger: str) -> tuple[str, str]:
    """A global shortcut (from the search bar or the composer's shortcut menu): no channel, a trigger for a modal."""
    payload = {
        "type": "shortcut",
        "team": {"id": TEAM},
        "user": _user(user, name),
        "callback_id": callback_id,
        "trigger_id": trigger,
        "action_ts": f"{time.time():.6f}",
    }
    return urlencode({"payload": json.dumps(payload)}), FORM


def home_opened(*, user: str) -> tuple[str, str]:
    """The ``app_home_opened`` event for the Home tab, as an Events API callback."""
    body = {
        "type": "event_callback",
        "team_id": TEAM,
        "event": {"type": "app_home_opened", "user": user, "tab": "home", "channel": "D" + user[1:]},
        "event_id": "Ev" + secrets.token_hex(6).upper(),
        "event_time": int(time.time()),
    }
    return json.dumps(body), "application/json"


class SlackSender:
    """Sign bodies with the bot's signing secret and post them to its ``/slack/events``."""

    def __init__(self, http: httpx.AsyncClient, *, url: str, signing_secret: str) -> None:
        self._http, self._url, self._signer = http, url, SignatureVerifier(signing_secret)

    async def send(self, body: str, content_type: str) -> httpx.Response:
        """Post ``body`` with Slack's headers: its content type, a timestamp and the v0 signature."""
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": self._signer.generate_signature(timestamp=stamp, body=body) or "",
        }
        return await self._http.post(self._url, content=body, headers=headers)
