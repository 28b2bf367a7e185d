"""The buttons that keep a case rather than move a request: **Mark as sent to shopper** and the Home tab's **More**.

Whatever the kind, a case closes the same way once the shopper has their answer.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck

from handlers.desk import Desk
from handlers.guard import Clicked, clicked_by, request_button
from handlers.listing import Page
from handlers.record.actions import close_case
from handlers.workers.home import HomeTab

__all__ = ["handle_close", "handle_home_more"]

logger = logging.getLogger(__name__)


@request_button(action="close", name="close case")
async def handle_close(deps: Desk, click: Clicked) -> None:
    """**Mark as sent to shopper**: allowed users only, any kind; a second press changes nothing. The case's
    outcome is ``complied`` (``no data`` when Amazon found no shopper)."""
    await close_case(deps, click.request, user=click.user, partly=False, reply=click.reply)


async def handle_home_more(deps: Desk, home: HomeTab, *, ack: AsyncAck, body: dict[str, Any]) -> None:
    """**More** under a Home tab listing: the tab is published again with that listing's next page."""
    await ack()
    user = clicked_by(deps, body)
    page = Page.read(str(((body.get("actions") or [{}])[0]).get("value", "")))
    deps.background.spawn(home.publish(user, page=page), name="home more")
