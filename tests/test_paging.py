"""Long lists page: ``list all`` and the Home tab show 20 cases at a time, overdue first, with a **More** button.

Through the real bot and the fake Slack: the command's answer has a **More** button, a signed click on it
brings the next page as a new message (or the Home tab published again), every case is shown exactly once
in due order, and the last page says it is the last, so nothing is cut without saying so.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fakes import block_actions_body, buttons, slack_headers, text_of
from harness import SIGNING_SECRET, Harness, SettableClock, running_bot

from core import RequestKind, mask_email
from handlers.buttons import HOME_MORE_ACTION, LIST_MORE_ACTION

DAY = 86_400.0
CASES = 45  # three pages: 20, 20 and 5
_SHOPPER = re.compile(r"s\*\*\*(\d+)@example\.com")


async def open_cases(bot: Harness, clock: SettableClock) -> list[int]:
    """CASES open requests for U0ALICE, due on days in shuffled order, a third of them overdue: the
    shopper numbers in the order a page must show them (soonest due, so overdue, first)."""
    due_in = {n: ((n * 17) % CASES - CASES // 3) * DAY for n in range(CASES)}
    for n in range(CASES):
        email = f"s{n}@example.com"
        await bot.runtime.store.requests.create(
            kind=RequestKind.RETRIEVAL,
            email=email,
            email_masked=f"s***{n}@example.com",
            requester="U0ALICE",
            channel="C0CASES",
            due_at=clock.now + due_in[n],
            deadline="30 days",
        )
        assert mask_email(email).endswith("@example.com")
    return sorted(range(CASES), key=lambda n: due_in[n])


def shoppers(message: Any) -> list[int]:
    return [int(n) for n in _SHOPPER.findall(text_of(message))]


async def click_more(bot: Harness, button: dict[str, Any], *, message_ts: str) -> None:
    body = block_actions_body(
        user="U0ALICE",
        channel="C0CASES",
        message_ts=message_ts,
        action_id=button["action_id"],
        value=button["value"],
        block_id=button["block_id"],
        response_url=bot.slack.response_url("U0ALICE"),
    )
    response = await bot.http.post(bot.url + "/slack/events", content=body, headers=slack_headers(body, SIGNING_SECRET))
    assert response.status_code == 200


async def next_page(bot: Harness, index: int) -> dict[str, Any]:
    """The ``index``-th answer U0ALICE is shown, once it arrives."""
    page: dict[str, Any] = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE")[index])
    return page


async def test_list_all_pages_with_more_until_the_last_page_says_so(tmp_path: Path) -> None:
    """``list all`` with 45 open cases: 1–20 with **More**, then 21–40 with **More**, then 41–45 marked as
    the last page and without a button; together every case once, overdue first, then by due date."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock) as bot:
        order = await open_cases(bot, clock)
        await bot.slash("list all", user="U0ALICE")
        pages = [await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE")[0])]
        while more := [b for b in buttons(pages[-1]) if b["action_id"] == LIST_MORE_ACTION]:
            assert len(pages) < 5, "More never ends"
            await click_more(bot, more[0], message_ts=pages[-1].get("ts", "0"))
            pages.append(await next_page(bot, len(pages)))
        assert [len(shoppers(page)) for page in pages] == [20, 20, 5]
        assert [n for page in pages for n in shoppers(page)] == order
        assert "overdue" in text_of(pages[0]) and "that is the last page" in text_of(pages[-1])
        assert "Showing 41–45" in text_of(pages[-1])
        assert all(len(page["blocks"]) <= 50 for page in pages)


async def test_home_tab_more_publishes_the_next_page_of_that_listing(tmp_path: Path) -> None:
    """The Home tab shows 20 of the viewer's 45 cases with **More**; clicking it publishes the tab again
    with cases 21–40 of that listing, within the view's 100 blocks."""
    clock = SettableClock()
    async with running_bot(tmp_path, clock=clock) as bot:
        order = await open_cases(bot, clock)
        await bot.runtime.workers.home.opened("U0ALICE")
        view = (await bot.slack.wait_for(lambda: bot.slack.calls_to("views.publish")))[-1].args["view"]
        mine = [b for b in buttons(view) if b["action_id"] == HOME_MORE_ACTION and b["value"].startswith("mine:")]
        assert shoppers(view)[:20] == order[:20] and len(view["blocks"]) <= 100
        before = len(bot.slack.calls_to("views.publish"))
        await click_more(bot, mine[0], message_ts="0")
        await bot.slack.wait_for(lambda: len(bot.slack.calls_to("views.publish")) > before)
        view = bot.slack.calls_to("views.publish")[-1].args["view"]
        assert shoppers(view)[:20] == order[20:40]
        assert "Showing 21–40" in text_of(view) and len(view["blocks"]) <= 100
