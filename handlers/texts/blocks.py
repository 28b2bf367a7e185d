"""Block Kit through ``slack_sdk.models``: every message built the same way, and checked against Slack's limits.

slack_sdk's block objects refuse what Slack would refuse (a section over 3,000 characters, more than
10 fields, a button label over 75, a view of more than 100 blocks) when ``to_dict()`` builds the
message: a text that grew too long fails where it is built, in a test, instead of being cut in front of
a user. Long lists and outside text are bounded on purpose before they get here (``handlers/texts/mrkdwn.py``:
``clip``, ``more``; ``sections`` spreads many lines over several sections).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Required, TypedDict

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

__all__ = [
    "SECTION_LIMIT",
    "Block",
    "Button",
    "Message",
    "actions",
    "button",
    "context",
    "divider",
    "fields",
    "header",
    "home",
    "modal",
    "section",
    "sections",
]

SECTION_LIMIT = 3000  # characters of a section's text, as Slack and slack_sdk count them

Block = dict[str, Any]  # one block as Slack receives it (a model's ``to_dict()``)
Button = ButtonElement


class Message(TypedDict, total=False):
    """A Slack message as the bot sends it: the notification ``text`` (always) and its ``blocks``."""

    text: Required[str]
    blocks: list[Block]


def section(text: str) -> Block:
    return SectionBlock(text=MarkdownTextObject(text=text)).to_dict()


def sections(lines: Iterable[str]) -> list[Block]:
    """Lines of one list in as few sections as fit Slack's limit, none of them cut."""
    out: list[Block] = []
    chunk = ""
    for line in lines:
        if chunk and len(chunk) + 1 + len(line) > SECTION_LIMIT:
            out.append(section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        out.append(section(chunk))
    return out


def fields(*pairs: tuple[str, str]) -> Block:
    return SectionBlock(fields=[MarkdownTextObject(text=f"*{name}*\n{value}") for name, value in pairs]).to_dict()


def context(text: str) -> Block:
    return ContextBlock(elements=[MarkdownTextObject(text=text)]).to_dict()


def button(text: str, *, action_id: str, value: str, style: str | None = None) -> Button:
    return ButtonElement(text=text, action_id=action_id, value=value, style=style)


def actions(block_id: str, *elements: Button) -> Block:
    return ActionsBlock(block_id=block_id, elements=list(elements)).to_dict()


def header(text: str) -> Block:
    return HeaderBlock(text=text).to_dict()


def divider() -> Block:
    return DividerBlock().to_dict()


def home(blocks: Sequence[Block]) -> dict[str, Any]:
    """An App Home view of these blocks (at most 100: slack_sdk refuses more)."""
    return View(type="home", blocks=list(blocks)).to_dict()


def modal(
    *, callback_id: str, metadata: str, title: str, submit: str, blocks: Sequence[Block], close: str = "Back"
) -> Block:
    """A form (``views.open``): ``metadata`` comes back with its submission, as ``private_metadata``."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": close},
        "blocks": list(blocks),
    }
