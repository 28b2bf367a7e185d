"""Deadlines that fit the law: an erasure's hold checked against its due date at approval, GDPR's extension
reminder in the first month, and ``extend --told`` recording that the shopper was told.

Through signed slash commands and clicks to the running bot, on a settable clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from erasures import approve, ask, request_of
from fakes import text_of
from harness import Harness, SettableClock, running_bot

DAY = 86_400.0
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(NOW)


@pytest.fixture
async def bot(tmp_path: Path, clock: SettableClock) -> Any:
    async with running_bot(tmp_path, clock=clock) as harness:
        yield harness


def hold_warnings(bot: Harness, parent: dict[str, Any]) -> list[str]:
    return [text_of(p) for p in bot.replies(parent["ts"]) if "longest hold" in text_of(p) or "Not even" in text_of(p)]


async def test_an_approval_whose_hold_would_pass_the_due_date_says_the_longest_hold_that_fits(bot: Harness) -> None:
    """35 days to answer, a 10-day hold and Amazon's 30 days do not fit: the approver (alone) and the thread are
    told that 5 days is the longest hold that fits, and the deletion still starts."""
    parent = await ask(bot, "delete tight@example.com --deadline 35d --hold 10d")
    task = await approve(bot, parent, "tight@example.com", user="U0BOB")
    assert task.holding_period == 10  # told, not refused: the approval goes on
    said = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0BOB"))
    assert "The longest hold that fits is 5 days" in text_of(said[-1])
    thread = await bot.slack.wait_for(lambda: hold_warnings(bot, parent))
    assert "The longest hold that fits is 5 days" in thread[0] and "<@U0ALICE>" in thread[0]


async def test_an_approval_that_cannot_fit_at_all_says_to_extend(bot: Harness) -> None:
    """Received 20 days ago with 30 days to answer: even no hold leaves Amazon too little time; extend."""
    parent = await ask(bot, "delete late@example.com --deadline 30d --received 2026-02-18 --hold 0d")
    await approve(bot, parent, "late@example.com", user="U0BOB")
    thread = await bot.slack.wait_for(lambda: hold_warnings(bot, parent))
    assert "Not even a deletion started at once ends in time" in thread[0]


async def test_an_approval_whose_hold_fits_says_nothing_more(bot: Harness) -> None:
    """60 days to answer, a 10-day hold and 30 days at Amazon fit: no warning anywhere."""
    parent = await ask(bot, "delete roomy@example.com --deadline 60d --hold 10d")
    await approve(bot, parent, "roomy@example.com", user="U0BOB")
    said = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0BOB"))
    assert "Approved" in text_of(said[-1]) and "longest hold" not in text_of(said[-1])
    assert hold_warnings(bot, parent) == []


def extension_reminders(bot: Harness, parent: dict[str, Any]) -> list[str]:
    return [text_of(p) for p in bot.replies(parent["ts"]) if "told of the extension" in text_of(p)]


async def test_a_gdpr_case_is_reminded_once_to_tell_the_shopper_of_an_extension_in_its_first_month(
    bot: Harness, clock: SettableClock
) -> None:
    """Received 1 March under GDPR: on 25 March (a week before 1 April) the thread says an extension must be told
    to the shopper by then, once; a CCPA case received the same day is not."""
    _, gdpr = await bot.request("eu@example.com gdpr --received 2026-03-01", email="eu@example.com")
    _, ccpa = await bot.request("ca@example.com ccpa --received 2026-03-01", email="ca@example.com")
    sender = bot.runtime.workers.reminders
    assert await sender.send_due() == 0
    clock.now = datetime(2026, 3, 25, 0, 0, 1, tzinfo=UTC).timestamp()
    assert await sender.send_due() == 1
    said = await bot.slack.wait_for(lambda: extension_reminders(bot, gdpr))
    assert "<@U0ALICE>" in said[0] and "extend <email or task id> 60d --told" in said[0]
    clock.advance(DAY)
    await sender.send_due()
    assert len(extension_reminders(bot, gdpr)) == 1 and extension_reminders(bot, ccpa) == []


async def test_a_gdpr_case_whose_shopper_was_told_gets_no_extension_reminder(
    bot: Harness, clock: SettableClock
) -> None:
    """``extend <case> --told`` before the reminder: the record says so, and the reminder never comes."""
    _, parent = await bot.request("told@example.com gdpr --received 2026-03-01", email="told@example.com")
    await bot.slash("extend told@example.com --told", user="U0BOB")
    said = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0BOB"))
    assert "was told of the extension" in text_of(said[-1])
    clock.now = datetime(2026, 3, 25, 0, 0, 1, tzinfo=UTC).timestamp()
    await bot.runtime.workers.reminders.send_due()
    assert extension_reminders(bot, parent) == []


async def test_extend_with_told_records_when_the_shopper_was_told_and_audits_it(
    bot: Harness, clock: SettableClock
) -> None:
    """``extend <case> 60d --told`` extends and records the telling (who and when, audited, in the thread's facts);
    an extension without ``--told`` says how to record it, and records nothing of the kind."""
    _, parent = await bot.request("eu2@example.com gdpr", email="eu2@example.com")
    await bot.slash("extend eu2@example.com 30d", user="U0BOB")
    said = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0BOB"))
    assert "extend <email or task id> --told" in text_of(said[-1])
    case = (await bot.runtime.store.cases.open())[0]
    assert case.extension_told_at is None
    clock.advance(60)
    await bot.slash("extend eu2@example.com 30d --again --told", user="U0BOB")
    said = await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0BOB")[1:])
    assert "Recorded that the shopper was told" in text_of(said[-1])
    case = (await bot.runtime.store.cases.open())[0]
    assert case.extension_told_at == clock.now
    told = [e for e in await bot.runtime.store.audit.entries() if e.action == "shopper told of extension"]
    assert [e.actor for e in told] == ["U0BOB"]
    await bot.slack.wait_for(
        lambda: [u for u in bot.slack.updates() if u.get("ts") == parent["ts"] and "told of the extension" in str(u)]
    )


async def test_the_hold_check_counts_from_the_received_date(bot: Harness) -> None:
    """The stored erasure's due date is received + period: the check at approval reads that date."""
    parent = await ask(bot, "delete rec@example.com --deadline 45d --received 2026-03-01 --hold 10d")
    case = await request_of(bot, parent)
    assert case.due_at == datetime(2026, 3, 1, tzinfo=UTC).timestamp() + 45 * DAY
    await approve(bot, parent, "rec@example.com", user="U0BOB")
    thread = await bot.slack.wait_for(lambda: hold_warnings(bot, parent))
    assert "The longest hold that fits is 5 days" in thread[0]  # 35½ days left at noon on 10 March, less 30
