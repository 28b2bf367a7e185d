"""Open cases a page at a time: ``list``, ``list all`` and the Home tab, each with a **More** button.

A page is read after the last case shown (its due date and id, the cursor the button carries), so the
tenth page costs what the first does and a case that closes meanwhile shifts nothing. Overdue cases come
first because the order is the due date's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from handlers.desk import Desk, Permalinks
from handlers.guard import allowed, clicked_by, ephemeral_reply, saving
from handlers.lifecycle import Reply
from handlers.texts import casework
from store import Request, Store

__all__ = ["Page", "Shown", "handle_list_more", "list_page", "read_page"]

logger = logging.getLogger(__name__)

Scope = Literal["mine", "all"]


@dataclass(frozen=True, slots=True)
class Page:
    """Which page of which list: ``mine`` or ``all``; the cases before it (``start``) and the last one's key."""

    scope: Scope
    start: int = 0
    after: tuple[float, int] | None = None

    def value(self) -> str:
        """The **More** button's value: short, and nothing personal in it."""
        due, last = self.after or (0.0, 0)
        return f"{self.scope}:{self.start}:{due!r}:{last}"

    @classmethod
    def read(cls, value: str) -> Page | None:
        """The page a button's value names; None for anything else (a value Slack would not send us)."""
        parts = value.split(":")
        if len(parts) != 4 or parts[0] not in ("mine", "all"):
            return None
        try:
            start, due, last = int(parts[1]), float(parts[2]), int(parts[3])
        except ValueError:
            return None
        scope: Scope = "mine" if parts[0] == "mine" else "all"
        return cls(scope, max(0, start), (due, last))


@dataclass(frozen=True, slots=True)
class Shown:
    """A page read: its cases, the next page's button value (None on the last), how many in all, the links."""

    cases: list[Request]
    more: str | None
    total: int | None  # counted only when there is more than this page
    links: dict[int, str]


async def read_page(store: Store, permalinks: Permalinks, page: Page, *, user: str) -> Shown:
    """One page of open cases, and what the page needs to say where it stands."""
    requester = user if page.scope == "mine" else None
    cases = await store.cases.open(requester=requester, limit=casework.PAGE + 1, after=page.after)
    shown = cases[: casework.PAGE]
    more, total = None, None
    if len(cases) > casework.PAGE:
        last = shown[-1]
        more = Page(page.scope, page.start + len(shown), (last.due_at, last.id)).value()
        total = await store.cases.open_count(requester=requester)
    links = {r.id: link for r in shown if (link := await permalinks.get(r))}
    return Shown(shown, more, total, links)


async def list_page(deps: Desk, page: Page, *, user: str, reply: Reply) -> None:
    """Answer ``list``/``list all`` (page one) or a **More** click (the page after) to the asker alone."""
    if not await allowed(deps, user, action="list", reply=reply):
        return
    shown = await read_page(deps.flow.store, deps.permalinks, page, user=user)
    message = casework.open_cases_message(
        shown.cases,
        whole_team=page.scope == "all",
        more=shown.more,
        start=page.start,
        total=shown.total,
        now=deps.flow.clock(),
        permalinks=shown.links,
        nouns={kind: flow.texts.noun for kind, flow in deps.flow.kinds.items()},
    )
    await reply(message)


async def handle_list_more(deps: Desk, *, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
    """**More** under a list: the next page appears as a new message, for the one who clicked."""
    await ack()
    user = clicked_by(deps, body)
    reply = ephemeral_reply(respond)
    value = str(((body.get("actions") or [{}])[0]).get("value", ""))
    page = Page.read(value)
    if page is None:
        logger.warning("list: a More button with an unreadable value")
        await reply(casework.list_cannot_continue())
        return
    deps.background.spawn(saving(list_page(deps, page, user=user, reply=reply), reply=reply), name="list more")
