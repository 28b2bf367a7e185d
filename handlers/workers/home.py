"""The App Home tab: published when a user opens it, and again (once per burst) when a request changes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core import Background, Foreground
from handlers.desk import Permalinks
from handlers.figures import Period, Report, figures_for
from handlers.listing import Page, read_page
from handlers.slack_errors import slack_error_code
from handlers.texts import casework
from handlers.workers.access import Authorizer
from store import Store, behind

__all__ = ["ANSWERED_SHOWN", "FIGURES_FRESH", "HomeTab"]

ANSWERED_SHOWN = 5  # the viewer's most recently answered cases the tab shows, with the nature of each answer

logger = logging.getLogger(__name__)

FIGURES_FRESH = 60.0  # seconds the Home tab shows the same figures (the tab says as of when)


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
        foreground: Foreground | None = None,
    ) -> None:
        self._store = store
        self._foreground = foreground or Foreground()  # a refresh gives way to the requests being answered
        self._slack = slack
        self._permalinks = permalinks
        self._authorizer = authorizer
        self._background = background
        self._clock = clock
        self._debounce = debounce
        self._nouns = dict(nouns or {})  # what each kind's cases are called in the list
        self._viewers: set[str] = set()
        self._pending: asyncio.Task[None] | None = None
        self._report: Report | None = None  # this year's figures, as of their ``as_of``

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
            await self._foreground.give_way()
            await self.publish(user)

    async def view(self, user: str, *, page: Page | None = None) -> dict[str, Any]:
        """The Home tab for ``user``: page one of each listing, or ``page`` of the one it names (**More**)."""
        mine_page = page if page is not None and page.scope == "mine" else Page("mine")
        mine = await read_page(self._store, self._permalinks, mine_page, user=user)
        links = dict(mine.links)
        restricted = not self._authorizer.everyone_allowed
        team, team_page = None, Page("all")
        allowed = (await self._authorizer.check(user)).allowed
        now = self._clock()
        if restricted and allowed:
            team_page = page if page is not None and page.scope == "all" else team_page
            team = await read_page(self._store, self._permalinks, team_page, user=user)
            links |= team.links
        # This year's figures are the team's record: shown to those who may act, as ``report`` is.
        figures = await self._figures(now) if allowed else None
        answered = await self._store.cases.answered(requester=user, limit=ANSWERED_SHOWN)
        for request in answered:
            if (link := await self._permalinks.get(request)) is not None:
                links[request.id] = link
        return casework.home_view(
            mine.cases,
            team.cases if team is not None else None,
            now=now,
            permalinks=links,
            mine_more=mine.more,
            team_more=team.more if team is not None else None,
            mine_start=mine_page.start,
            team_start=team_page.start,
            mine_total=mine.total,
            team_total=team.total if team is not None else None,
            nouns=self._nouns,
            figures=figures,
            answered=answered,
        )

    async def _figures(self, now: float) -> Report:
        """This year's figures, computed at most once per ``FIGURES_FRESH`` seconds for every viewer: a year of
        cases is a scan of the store's one connection, and the tab is published again on every change."""
        if self._report is None or now - self._report.as_of >= FIGURES_FRESH or now < self._report.as_of:
            self._report = await figures_for(self._store, Period.this_year(now), now=now)
        return self._report

    async def publish(self, user: str, *, page: Page | None = None) -> None:
        view = await self.view(user, page=page)
        try:
            await self._slack.views_publish(user_id=user, view=view)
        except SlackApiError as error:
            logger.warning("home tab for %s not published: %s", user, slack_error_code(error))
