"""Block Kit building blocks, so every message is built the same way and stays within Slack's limits."""

from __future__ import annotations

from typing import Any

from store import Request

__all__ = ["Block", "Message", "actions", "button", "context", "date", "escape", "fields", "section", "subject"]

Block = dict[str, Any]
Message = dict[str, Any]  # what a Slack message is made of: ``text`` (the notification) and ``blocks``


def escape(text: object) -> str:
    """Outside text (Amazon's words, what a user typed) as inert mrkdwn: no mention, channel ping or link.

    Slack reads ``<…>`` as a control sequence (``<!channel>``, ``<@U…>``, ``<https://…|label>``) and
    ``&`` as the start of an entity; escaping these three, as Slack asks, leaves only literal text.
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def fields(*pairs: tuple[str, str]) -> Block:
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]} for k, v in pairs[:10]]}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def button(text: str, *, action_id: str, value: str, style: str | None = None) -> Block:
    element: Block = {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text[:75]}}
    element["value"] = value
    if style:
        element["style"] = style
    return element


def actions(block_id: str, *elements: Block) -> Block:
    return {"type": "actions", "block_id": block_id, "elements": list(elements)}


def date(epoch: float, fallback: str, *, time: bool = True) -> str:
    """A date Slack shows in each reader's own time zone."""
    shape = "{date_short_pretty} {time}" if time else "{date_short_pretty}"
    return f"<!date^{int(epoch)}^{shape}|{fallback}>"


def subject(request: Request) -> str:
    """The shopper as the channel may see them: masked, or erased after the retention period."""
    return f"`{request.email_masked}`" if request.email_masked else "_(email erased)_"
