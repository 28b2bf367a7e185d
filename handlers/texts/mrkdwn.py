"""Slack's mrkdwn, said once: outside text made inert, dates in each reader's time zone, bounds made visible.

What a Slack text may hold is limited (3,000 characters in a section, 2,000 in a field); text from
outside (Amazon's words, what a user typed, a task id) has no limit of its own, and grows when escaped.
Nothing here cuts a text silently: ``clip`` and ``escape_clip`` end a shortened text with ``…``, and
``more`` says how many items a list left out.
"""

from __future__ import annotations

from store import Request

__all__ = ["clip", "date", "escape", "escape_clip", "more", "subject"]


def escape(text: object) -> str:
    """Outside text (Amazon's words, what a user typed) as inert mrkdwn: no mention, channel ping or link.

    Slack reads ``<…>`` as a control sequence (``<!channel>``, ``<@U…>``, ``<https://…|label>``) and
    ``&`` as the start of an entity; escaping these three, as Slack asks, leaves only literal text.
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: whole, or cut with a visible ``…`` at the end."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape_clip(text: object, limit: int) -> str:
    """Outside text made inert, then in at most ``limit`` characters as Slack receives it.

    Escaping grows a text (``&`` is five characters once escaped), so the bound is applied after it, and a
    cut never splits an entity: a half ``&am`` would show as text, or take the ``…`` into it.
    """
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    entity = cut.rfind("&")  # after escaping, every "&" starts an entity that ends with ";"
    if entity != -1 and ";" not in cut[entity:]:
        cut = cut[:entity]
    return cut + "…"


def more(left_out: int, what: str = "more") -> str:
    """The line that says a list was bounded: ``…and 3 more``; empty when nothing was left out."""
    return f"…and {left_out} {what}" if left_out > 0 else ""


def date(epoch: float, fallback: str, *, time: bool = True) -> str:
    """A date Slack shows in each reader's own time zone."""
    shape = "{date_short_pretty} {time}" if time else "{date_short_pretty}"
    return f"<!date^{int(epoch)}^{shape}|{fallback}>"


def subject(request: Request) -> str:
    """The shopper as the channel may see them: masked, or erased after the retention period."""
    return f"`{request.email_masked}`" if request.email_masked else "_(email erased)_"
