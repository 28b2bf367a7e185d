"""Running a case to its close: the close button, reminders, retention, and the Home tab.

Reminders and retention are timers; both read the injected clock and keep
their progress in the database, so they survive restarts and never repeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core import Background
from handlers import case_texts, notices
from handlers.access import Authorizer
from handlers.buttons import Pressed, pressed
from handlers.context import Counters, Desk, Permalinks
from handlers.deadlines import next_reminder_at, reminders_due
from handlers.guard import about_request, clicked_by, clicked_request, ephemeral_reply
from handlers.lifecycle import Reply
from handlers.listing import Page, read_page
from handlers.slack_errors import slack_error_code
from store import Store, behind

__all__ = ["HomeTab", "Reminders", "Retention", "handle_close", "handle_home_more"]

logger = logging.getLogger(__name__)

INBOX_KEEP = 7 * 86_400.0  # relayed events are remembered (to spot re-deliveries) for a week


async def handle_close(deps: Desk, *, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
    """**Mark as sent to shopper**: allowed users only; a second press changes nothing."""
    await ack()
    user = clicked_by(deps, body)
    reply = ephemeral_reply(respond)
    click = pressed(body)
    with about_request(click):
        deps.background.spawn(_close(deps, click, user=user, reply=reply), name="close case")


async def _close(deps: Desk, click: Pressed, *, user: str, reply: Reply) -> None:
    request = await clicked_request(deps, click, user=user, action="close", reply=reply)
    if request is None:
        return
    closed, changed = await deps.flow.store.cases.close(request.id, user=user, notices=notices.thread_update())
    if changed and closed is not None:
        deps.flow.wake_outbox()
        deps.flow.home_changed()
        await reply(case_texts.closed_ack(closed))
    elif closed is not None and closed.closed_at is not None:
        await reply(case_texts.already_closed(closed))
    else:
        await reply(case_texts.cannot_close_yet(request))


class Reminders:
    """Posts each due reminder once into its thread: 7 and 2 days before the due date, and on it."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Callable[[], float],
        wake_outbox: Callable[[], None],
        counters: Counters,
        every: float = 60.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._wake_outbox = wake_outbox
        self._counters = counters
        self._every = every

    async def run(self) -> None:
        while True:
            await self.send_due()
            await asyncio.sleep(self._every)

    async def send_due(self, *, page: int = 100) -> int:
        """Queue every reminder due now; after downtime only the most urgent is posted. Returns how many.

        Reads the cases whose next reminder time has come, a page at a time, until a page is short: each is
        reminded or, when nothing is due yet (after an extension, or the upgrade that added the times), given
        its next time, so every case read leaves the page and a pass always ends.
        """
        sent = 0
        now = self._clock()
        while True:
            due = await self._store.cases.reminders_due(limit=page)
            moved = 0
            for request in due:
                kinds = reminders_due(request.due_at, request.reminders_sent, now=now)
                next_at = next_reminder_at(request.due_at, request.reminders_sent | set(kinds))
                if not kinds:
                    moved += await self._store.cases.remind_later(request, at=next_at)
                elif await self._store.cases.record_reminder(
                    request, kinds, notices=notices.reminder(kinds[-1]), next_at=next_at
                ):
                    moved += 1
                    sent += 1
                    self._counters.reminder_sent()
            if len(due) < page or not moved:  # a short page is the last; a page nothing moved would come again
                break
        if sent:
            self._wake_outbox()
        return sent


class Retention:
    """Erases shopper emails from cases closed or finished more than ``retention_days`` ago, daily."""

    def __init__(
        self, *, store: Store, clock: Callable[[], float], retention_days: int, every: float = 86_400.0
    ) -> None:
        self._store = store
        self._clock = clock
        self._retention = retention_days * 86_400.0
        self._every = every

    async def run(self) -> None:
        while True:
            await self.purge()
            await asyncio.sleep(self._every)

    async def purge(self) -> list[int]:
        now = self._clock()
        await self._store.inbox.prune(older_than=now - INBOX_KEEP)
        purged = await self._store.cases.purge_expired(older_than=now - self._retention)
        if purged:
            logger.info("retention: erased the email of %d requests", len(purged))
        return purged


class HomeTab:
    """The bot's Home tab, published when a user opens it and again when a request changes."""

    def __init__(
        self,
        *,
        store: Store,
        slack: AsyncWebClient,
        permalinks: Permalinks,
        authorizer: Authorizer,
        background: Background,
        clock: Callable[[], float],
        debounce: float = 1.0,
        nouns: Mapping[str, str] | None = None,
    ) -> None:
        self._store = store
        self._slack = slack
        self._permalinks = permalinks
        self._authorizer = authorizer
        self._background = background
        self._clock = clock
        self._debounce = debounce
        self._nouns = dict(nouns or {})  # what each kind's cases are called in the list
        self._viewers: set[str] = set()
        self._pending: asyncio.Task[None] | None = None

    async def opened(self, user: str) -> None:
        self._viewers.add(user)
        await self.publish(user)

    def changed(self) -> None:
        """A request changed: refresh the tab of everyone who has opened it (once per burst of changes)."""
        if self._viewers and (self._pending is None or self._pending.done()):
            self._pending = self._background.spawn(behind(self._refresh_soon()), name="home refresh")

    async def _refresh_soon(self) -> None:
        await asyncio.sleep(self._debounce)
        for user in list(self._viewers):
            await self.publish(user)

    async def view(self, user: str, *, page: Page | None = None) -> dict[str, Any]:
        """The Home tab for ``user``: page one of each listing, or ``page`` of the one it names (**More**)."""
        mine_page = page if page is not None and page.scope == "mine" else Page("mine")
        mine = await read_page(self._store, self._permalinks, mine_page, user=user)
        links = dict(mine.links)
        restricted = not self._authorizer.everyone_allowed
        team, team_page = None, Page("all")
        if restricted and (await self._authorizer.check(user)).allowed:
            team_page = page if page is not None and page.scope == "all" else team_page
            team = await read_page(self._store, self._permalinks, team_page, user=user)
            links |= team.links
        return case_texts.home_view(
            mine.cases,
            team.cases if team is not None else None,
            now=self._clock(),
            permalinks=links,
            mine_more=mine.more,
            team_more=team.more if team is not None else None,
            mine_start=mine_page.start,
            team_start=team_page.start,
            mine_total=mine.total,
            team_total=team.total if team is not None else None,
            nouns=self._nouns,
        )

    async def publish(self, user: str, *, page: Page | None = None) -> None:
        view = await self.view(user, page=page)
        try:
            await self._slack.views_publish(user_id=user, view=view)
        except SlackApiError as error:
            logger.warning("home tab for %s not published: %s", user, slack_error_code(error))


async def handle_home_more(deps: Desk, home: HomeTab, *, ack: AsyncAck, body: dict[str, Any]) -> None:
    """**More** under a Home tab listing: the tab is published again with that listing's next page."""
    await ack()
    user = clicked_by(deps, body)
    page = Page.read(str(((body.get("actions") or [{}])[0]).get("value", "")))
    deps.background.spawn(home.publish(user, page=page), name="home more")
