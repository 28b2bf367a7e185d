"""Long content is bounded on purpose, never cut silently, and what is built stays within Slack's limits.

Block Kit is built through ``slack_sdk.models``, which refuses a message Slack would refuse when it is
built; the fake Slack's ``block_problems`` is the independent check (it also counts a field's 2,000
characters, which slack_sdk does not). Amazon's words, a list of cases and the Home tab can each be
longer than a block holds: what they leave out is said ("…and 3 more"), and a shortened text ends in "…".
"""

from __future__ import annotations

import time

import pytest
from fakes import block_problems, buttons, text_of
from slack_sdk.errors import SlackObjectFormationError

from core import RequestKind
from handlers import texts
from handlers.kinds.erasure.rules import OPEN_ORDERS
from handlers.kinds.erasure.texts import ERASURE_TEXTS
from handlers.kinds.retrieval import RETRIEVAL_FLOW
from handlers.kinds.retrieval.texts import failure_reply
from handlers.texts import casework
from handlers.texts.blocks import SECTION_LIMIT, section, sections
from handlers.texts.mrkdwn import escape_clip
from store import Request, RequestStatus, TaskError

NOW = 1_700_000_000.0


def a_request(number: int = 1, **changes: object) -> Request:
    fields: dict[str, object] = {
        "id": number,
        "client_token": "0" * 36,
        "email_masked": f"s{number}***@example.com",
        "requester": "U0ALICE",
        "channel": "C0COMPLY",
        "thread_ts": f"1700000000.{number:06d}",
        "task_id": f"task-{number}",
        "status": RequestStatus.IN_PROGRESS,
        "errors": (),
        "created_at": NOW - number,
        "updated_at": NOW,
        "due_at": NOW + number * 3600,
        "deadline": "30 days",
        "kind": RequestKind.RETRIEVAL,
    }
    fields.update(changes)
    return Request(**fields)  # type: ignore[arg-type]


def test_amazons_many_long_reasons_are_shown_bounded_and_counted() -> None:
    """Eight reasons of 5,000 characters each: five shown, each ending in "…", three counted; Slack accepts it."""
    errors = tuple(TaskError(f"CODE_{n}", f"reason {n} " + "x" * 5000) for n in range(8))
    message = failure_reply(a_request(status=RequestStatus.FAILED, errors=errors))
    assert block_problems(message["blocks"]) == []
    shown = text_of(message["blocks"])
    assert [f"CODE_{n}" in shown for n in range(8)] == [True] * 5 + [False] * 3
    assert "…and 3 more reasons" in shown and shown.count("x…") == 5  # each reason shortened, visibly
    assert message["text"].endswith("CODE_0, CODE_1, CODE_2, CODE_3, CODE_4 and 3 more")


def test_reasons_that_grow_when_escaped_and_carry_a_meaning_spread_over_sections() -> None:
    """Five reasons of 5,000 `&` (five times longer once escaped), each with open orders' explanation: every line
    is cut after escaping, never through an entity, and the lines go in as many sections as Slack's limit needs."""
    errors = tuple(TaskError(OPEN_ORDERS, "&" * 5000) for _ in range(5))
    request = a_request(status=RequestStatus.FAILED, errors=errors, kind=RequestKind.ERASURE)
    message = ERASURE_TEXTS.reply("failed", request)
    assert message is not None and block_problems(message["blocks"]) == []
    shown = text_of(message["blocks"])
    assert shown.count("&amp;…") == 5 and "&amp…" not in shown and "&am…" not in shown


@pytest.mark.parametrize(
    ("text", "limit", "shown"),
    [
        ("a & b", 20, "a &amp; b"),
        ("&" * 10, 12, "&amp;&amp;…"),
        ("&" * 10, 14, "&amp;&amp;…"),
        ("<<<", 9, "&lt;&lt;…"),
        ("x" * 10, 5, "xxxx…"),
    ],
)
def test_escape_clip_bounds_what_slack_receives_and_never_splits_an_entity(text: str, limit: int, shown: str) -> None:
    """The bound counts the escaped text; a cut that would fall inside an entity falls before it."""
    assert escape_clip(text, limit) == shown and len(escape_clip(text, limit)) <= limit


def test_a_long_list_of_cases_is_spread_over_sections_not_cut() -> None:
    """``list`` with 20 long lines: every case is there, in sections of at most 3,000 characters."""
    cases = [a_request(n, email_masked=f"{'s' * 60}{n}***@example.com") for n in range(1, 21)]
    links = {r.id: f"https://slack.example/archives/C0COMPLY/p{r.id:016d}" + "?thread=" + "t" * 80 for r in cases}
    more = "all:20:1.0:20"
    message = casework.open_cases_message(cases, whole_team=True, more=more, total=45, now=NOW, permalinks=links)
    assert block_problems(message["blocks"]) == []
    listed = [b for b in message["blocks"] if b["type"] == "section"][1:]
    assert len(listed) > 1 and all(len(b["text"]["text"]) <= SECTION_LIMIT for b in listed)
    assert all(f"{'s' * 60}{n}***" in text_of(message) for n in range(1, 21))
    assert "Showing 1–20 of 45" in text_of(message)


def test_the_home_tab_shows_a_page_and_counts_the_rest() -> None:
    """A page of 20 of the viewer's 75 open cases and of the team's: each listed, each listing saying how many
    there are in all with its own **More** button; a valid view."""
    mine = [a_request(n) for n in range(1, 21)]
    team = [a_request(n) for n in range(21, 41)]
    view = casework.home_view(
        mine,
        team,
        now=NOW,
        permalinks={},
        mine_more="mine:20:1.0:20",
        team_more="all:20:1.0:40",
        mine_total=75,
        team_total=300,
    )
    assert view["type"] == "home" and block_problems(view["blocks"], 100) == []
    shown = text_of(view)
    assert all(f"s{n}***@example.com" in shown for n in range(1, 41))
    assert "Showing 1–20 of 75" in shown and "Showing 1–20 of 300" in shown
    assert [b["value"] for b in buttons(view)] == ["mine:20:1.0:20", "all:20:1.0:40"]


def test_a_text_too_long_for_slack_fails_where_it_is_built() -> None:
    """Nothing is cut to fit: a section over Slack's limit is refused when built, so a test finds it."""
    section("x" * SECTION_LIMIT)
    with pytest.raises(SlackObjectFormationError):
        section("x" * (SECTION_LIMIT + 1))
    assert sections(["x" * SECTION_LIMIT, "y"]) == [section("x" * SECTION_LIMIT), section("y")]


def test_what_a_user_typed_is_echoed_shortened_visibly() -> None:
    """An unknown option of 200 characters comes back in 80, ending in "…"; a short one comes back whole."""
    long = texts.unknown_option("--" + "z" * 198)["text"]
    assert ("z" * 77 + "…") in long and "z" * 79 not in long
    assert "`--urgent`" in texts.unknown_option("--urgent")["text"]


def test_every_message_of_a_retrieval_is_valid_block_kit_in_each_state() -> None:
    """The thread's first message and the status answer, for every status, closed or not, pass the checks."""
    kind = RETRIEVAL_FLOW.texts
    for status in RequestStatus:
        for closed in (None, time.time()):
            request = a_request(status=status, closed_at=closed, closed_by="U0BOB" if closed else None)
            for message in (
                texts.thread_parent(request, kind),
                texts.status_message(request, kind, permalink=None, now=NOW),
            ):
                assert block_problems(message["blocks"]) == [], (status, closed)
