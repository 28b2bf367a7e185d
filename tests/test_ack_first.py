"""Acknowledge first, always: with ALLOWED_USERGROUP, no command waits for Slack's usergroups.users.list.

Each test holds the fake's answer to ``usergroups.users.list`` and shows the
ordering: the command's acknowledgement arrives while that call is still held.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import httpx
from fakes import FakePrime, FakeSlack, text_of
from harness import Harness, ack_text, eventually, make_settings

from bot.runtime import Runtime
from bot.tuning import Tuning

GROUP = "S0COMPLY"
LOOKUP = "usergroups.users.list"


@asynccontextmanager
async def group_bot(tmp_path: Path, slack: FakeSlack, *, ttl: float = 60.0) -> AsyncIterator[Harness]:
    """The bot with ALLOWED_USERGROUP alone (no ALLOWED_USERS), against ``slack``."""
    async with FakePrime() as prime:
        settings = make_settings(slack, prime, tmp_path, allowed_users=frozenset(), allowed_usergroup=GROUP)
        tuning = replace(Tuning.fast(), usergroup_ttl=ttl)
        runtime = await Runtime.start(settings, host="127.0.0.1", tuning=tuning)
        async with httpx.AsyncClient(timeout=10) as http:
            bot = Harness(slack, prime, runtime, http, settings)
            try:
                yield bot
            finally:
                for gate in slack.hold.values():
                    gate.set()
                await runtime.stop()


async def test_on_a_cold_cache_the_command_is_answered_first_and_decided_after(tmp_path: Path) -> None:
    """Before Slack has named the group's members once, a command is acknowledged at once; the decision follows."""
    async with FakeSlack(usergroups={GROUP: ["U0CAROL"]}) as slack:
        gate = slack.hold[LOOKUP] = asyncio.Event()
        async with group_bot(tmp_path, slack) as bot:
            await slack.wait_for(lambda: slack.held)  # the bot's first read of the group is under way, held
            member = await bot.slash("cold@example.com", user="U0CAROL")
            outsider = await bot.slash("nosy@example.com", user="U0DAVE")
            assert slack.held == [LOOKUP]  # both answered while Slack still holds the group lookup
            for response in (member, outsider):
                assert response.status_code == 200 and "checking with Slack" in ack_text(response)
            assert not bot.parents() and not bot.prime.starts()

            gate.set()
            parent = await slack.wait_for(lambda: bot.parents()[0])
            assert "c***@example.com" in str(parent) and "<@U0CAROL>" in str(parent)
            refusal = await slack.wait_for(
                lambda: [e for e in slack.ephemerals_to("U0DAVE") if "not allowed" in text_of(e)]
            )
            assert refusal
            await bot.prime.wait_for(lambda: bot.prime.starts())
            assert [t.email for t in bot.prime.tasks.values()] == ["cold@example.com"]
            assert "refused" in [e.action for e in await bot.runtime.store.audit.entries()]


async def test_a_slow_group_refresh_never_delays_an_answer_and_the_last_list_decides(tmp_path: Path) -> None:
    """The list is stale and its refresh held: a member's command is stored, answered and threaded meanwhile."""
    async with FakeSlack(usergroups={GROUP: ["U0CAROL"]}) as slack, group_bot(tmp_path, slack, ttl=0.05) as bot:
        await slack.wait_for(lambda: [c for c in slack.calls_to(LOOKUP) if c.ok])  # the list is known
        gate = slack.hold[LOOKUP] = asyncio.Event()
        await slack.wait_for(lambda: slack.held)  # the next refresh is under way, held

        response = await bot.slash("warm@example.com", user="U0CAROL")
        assert response.status_code == 200 and ack_text(response) == ""
        await slack.wait_for(lambda: bot.parents()[0])
        refused = await bot.slash("warm.nosy@example.com", user="U0DAVE")
        assert "not allowed" in ack_text(refused)
        assert slack.held == [LOOKUP]  # all of it while the refresh was still held

        slack.usergroups[GROUP] = []  # Carol leaves the group; the refresh brings the news
        gate.set()
        calls = len(slack.calls_to(LOOKUP))
        await slack.wait_for(lambda: len(slack.calls_to(LOOKUP)) > calls)

        async def carol_refused() -> bool:
            return "not allowed" in ack_text(await bot.slash("again@example.com --new", user="U0CAROL"))

        await eventually(carol_refused)
