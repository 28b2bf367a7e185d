"""``/data-request report [YYYY]``: the year's figures, to an allowed person alone."""

from __future__ import annotations

import re

from handlers.desk import Desk
from handlers.figures import Period, figures_for
from handlers.guard import allowed
from handlers.lifecycle import Reply
from handlers.texts.figures import figures_message

__all__ = ["FIRST_YEAR", "parse_year", "show_report"]

FIRST_YEAR = 2000  # no case the bot keeps was received before
_YEAR = re.compile(r"[0-9]{4}")  # ASCII digits only, as the deadlines read them


def parse_year(word: str) -> int | None:
    """``2025`` → 2025; None for anything that is not a year from ``FIRST_YEAR`` on."""
    return int(word) if _YEAR.fullmatch(word) and int(word) >= FIRST_YEAR else None


async def show_report(deps: Desk, year: int | None, *, user: str, reply: Reply) -> None:
    """Answer ``user`` alone with the figures for ``year`` (this year when None), if they are allowed."""
    if not await allowed(deps, user, action="report", reply=reply):
        return
    now = deps.flow.clock()
    period = Period.this_year(now) if year is None else Period.year(year)
    await reply(figures_message(await figures_for(deps.flow.store, period, now=now)))
