"""The compliance record and its figures: ``records``, ``report``, ``/data-request report`` and the Home tab.

A set of cases whose answers are known is made through the store's API; the figures ``report`` gives are
checked against numbers worked out by hand, and against a count of the rows ``records`` exports.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import os
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fakes import text_of
from harness import SettableClock, ack_text, running_bot
from processes import clean_env, run_bot

from bot.cli import main
from bot.records import RECORD_COLUMNS
from core import mask_email
from handlers.deadlines import DeadlineSpec
from handlers.figures import Period, figures_for
from handlers.kinds.registry import KINDS
from handlers.texts.figures import figures_table
from handlers.workers.home import FIGURES_FRESH
from store import Notice, RequestStatus, Store, open_verified

DAY = 86_400.0
KEY = os.urandom(32)


def at(day: str, hour: int = 10) -> float:
    """Epoch seconds of ``day`` (YYYY-MM-DD) at ``hour`` UTC."""
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00").timestamp()


@dataclass(frozen=True)
class Case:
    """A case to make, and how it was answered (``answered``: the day; None: still open)."""

    kind: str
    received: str
    law: str | None  # "gdpr", "ccpa" or None (a plain --deadline)
    answered: str | None = None
    outcome: str | None = None
    reason: str | None = None
    due: float | None = None  # instead of the law's
    extend: bool = False


async def record_answer(store: Store, request_id: int, *, outcome: str, reason: str | None, answered: float) -> None:
    """Test only: the outcome columns set directly, on either backend, so one table covers every outcome."""
    await store._db.call(
        lambda db: db.execute(
            "UPDATE requests SET outcome = ?, denial_reason = ?, closed_at = COALESCE(closed_at, ?),"
            " closed_by = COALESCE(closed_by, 'U0BOB') WHERE id = ?",
            (outcome, reason, answered, request_id),
        )
    )


async def make(store: Store, clock: SettableClock, path: Path | str, n: int, case: Case) -> int:
    """One case through the store's API, as the bot moves it: stored, thread, task, (extended), completed,
    closed; then its outcome recorded."""
    clock.now = at(case.received)
    deadline = DeadlineSpec(jurisdiction=case.law, days=None if case.law else 30).resolve(clock.now, default_days=30)
    email = f"shopper{n}@example.com"
    request, _ = await store.requests.create(
        kind=case.kind,
        email=email,
        email_masked=mask_email(email),
        requester="U0ALICE",
        channel="C0COMPLY",
        due_at=case.due or deadline.due_at,
        deadline=deadline.label,
        received_on=case.received,
        received_via="email",
        outside_ref=f"TICKET-{n}",
        verified_how="order",
    )
    await store.outbox.thread_opened(request.id, f"{clock.now:.6f}", to=KINDS[case.kind].opened)
    if case.kind == "erasure":
        await store.decisions.approve(request.id, user="U0BOB", notices=QUIET)
    await store.requests.record_task_started(request.id, f"task-{n:04d}", notices=QUIET)
    if case.extend:
        clock.now += DAY
        done = await store.cases.extend_deadline(request.id, days=45, user="U0BOB", notices=QUIET)
        assert done.outcome == "extended"
    if case.answered is None:
        return request.id
    clock.now = at(case.answered, 15)
    if case.outcome != "denied":
        await store.requests.record_task_state(
            request.id,
            from_={RequestStatus.IN_PROGRESS},
            to=RequestStatus.COMPLETED,
            errors=[],
            action="completed",
            notices=QUIET,
        )
        await store.cases.close(request.id, user="U0BOB", notices=QUIET)
    assert case.outcome is not None
    await record_answer(store, request.id, outcome=case.outcome, reason=case.reason, answered=clock.now)
    return request.id


QUIET: list[Notice] = []  # nothing queued for Slack: these threads were never posted anywhere
FAR = at("2099-01-01")  # a due date no test run reaches
CASES = (
    Case("retrieval", "2025-03-01", "gdpr", "2025-03-11", "complied"),  # 10 days
    Case("retrieval", "2025-03-05", "gdpr", "2025-03-25", "complied in part"),  # 20
    Case("retrieval", "2025-04-01", "gdpr", "2025-04-04", "denied", "unverifiable"),  # 3
    Case("retrieval", "2025-06-01", "gdpr"),  # open, overdue since 2025-07-01
    Case("retrieval", "2025-02-10", "ccpa", "2025-03-20", "complied", extend=True),  # 38
    Case("retrieval", "2025-05-01", "ccpa", "2025-05-02", "no data"),  # 1
    Case("retrieval", "2025-12-20", None, due=FAR),  # open, not overdue
    Case("erasure", "2025-01-15", "gdpr", "2025-02-10", "complied"),  # 26
    Case("erasure", "2025-08-01", "gdpr", "2025-08-05", "denied", "exempt"),  # 4
    Case("erasure", "2025-09-09", None, "2025-09-10", "denied", "other"),  # 1
    Case("erasure", "2025-10-10", None, "2025-10-17", "complied"),  # 7
    Case("retrieval", "2024-12-31", "gdpr", "2025-01-05", "complied"),  # received the year before
)
Z = {"unverifiable": 0, "exempt": 0, "withdrawn": 0, "duplicate": 0, "unfounded": 0, "other": 0}
# (kind, law): received, complied, in part, no data, denied, denied by reason, open, overdue, median, mean:
# worked out by hand from CASES for 2025.
EXPECTED = {
    ("access", "GDPR"): (4, 2, 1, 0, 1, Z | {"unverifiable": 1}, 1, 1, 10.0, 11.0),
    ("access", "CCPA"): (2, 1, 0, 1, 0, Z, 0, 0, 19.5, 19.5),
    ("access", "none"): (1, 0, 0, 0, 0, Z, 1, 0, None, None),
    ("access", "all"): (7, 3, 1, 1, 1, Z | {"unverifiable": 1}, 2, 1, 10.0, 14.4),
    ("erasure", "GDPR"): (2, 1, 0, 0, 1, Z | {"exempt": 1}, 0, 0, 15.0, 15.0),
    ("erasure", "CCPA"): (0, 0, 0, 0, 0, Z, 0, 0, None, None),
    ("erasure", "none"): (2, 1, 0, 0, 1, Z | {"other": 1}, 0, 0, 4.0, 4.0),
    ("erasure", "all"): (4, 2, 0, 0, 2, Z | {"exempt": 1, "other": 1}, 0, 0, 5.5, 9.5),
    ("all", "all"): (11, 5, 1, 1, 3, Z | {"unverifiable": 1, "exempt": 1, "other": 1}, 2, 1, 7.0, 12.2),
}
FIELDS = (
    "received",
    "complied",
    "complied_in_part",
    "no_data",
    "denied",
    "denied_by_reason",
    "open",
    "overdue",
    "median_days",
    "mean_days",
)


async def made(path: Path | str, clock: SettableClock) -> list[int]:
    """CASES in a database at ``path``, and a request that never started (not a case); their ids."""
    store = await open_verified(path, configured=KEY, create_key=True, clock=clock)
    try:
        ids = [await make(store, clock, path, n, case) for n, case in enumerate(CASES)]
        clock.now = at("2025-05-05")
        request, _ = await store.requests.create(
            kind="retrieval",
            email="never@example.com",
            email_masked="n***@example.com",
            requester="U0ALICE",
            channel="C0GONE",
            due_at=clock.now + 30 * DAY,
            deadline="30 days",
        )
        await store.requests.abandon(request.id, actor="bot", reason="not in the channel")
    finally:
        await store.close()
    return ids


@pytest.fixture(params=["sqlite", "postgresql"])
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path | str:
    """CASES in a database (a SQLite file, then PostgreSQL: the figures' SQL is each backend's own), and the
    environment an operator sets to run the CLI on it (the CLI runs its own loop)."""
    where: Path | str = tmp_path / "data-requests.db"
    if request.param == "postgresql":
        where = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("DATABASE_URL", where)
    asyncio.run(made(where, SettableClock(at("2025-01-01"))))
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "data-requests.db"))
    monkeypatch.setenv("ENCRYPTION_KEY", base64.urlsafe_b64encode(KEY).decode())
    return where


def where_set(database: Path | str) -> dict[str, str]:
    """The setting an operator gives for ``database``: DATABASE_URL for PostgreSQL, else DATABASE_PATH."""
    return {"DATABASE_URL": database} if isinstance(database, str) else {"DATABASE_PATH": str(database)}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The CLI's entry function, as ``data-request-bot <argv>`` runs it; what it printed."""
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def counted(rows: list[dict[str, str]], *, first: str, last: str, as_of: str) -> dict[tuple[str, str], tuple]:
    """The figures as a person counts them from the records export: rows received in the period, by kind and law."""
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        if first <= row["received"] <= last:
            for key in ((row["kind"], row["law"]), (row["kind"], "all"), ("all", "all")):
                groups[key].append(row)
    figures = {}
    for kind in ("access", "erasure"):
        for law in ("GDPR", "CCPA", "none", "all"):
            group = groups[(kind, law)]
            figures[(kind, law)] = _count(group, as_of=as_of)
    figures[("all", "all")] = _count(groups[("all", "all")], as_of=as_of)
    return figures


def _count(group: list[dict[str, str]], *, as_of: str) -> tuple:
    answered = [r for r in group if r["answered_at"]]
    days = [int(r["days_to_answer"]) for r in answered]
    open_ = [r for r in group if not r["answered_at"]]
    return (
        len(group),
        sum(r["outcome"] in ("complied", "complied in part") for r in answered),
        sum(r["outcome"] == "complied in part" for r in answered),
        sum(r["outcome"] == "no data" for r in answered),
        sum(r["outcome"] == "denied" for r in answered),
        {reason: sum(r["denial_reason"] == reason for r in answered if r["outcome"] == "denied") for reason in Z},
        len(open_),
        sum(r["due"] < as_of for r in open_),
        float(statistics.median(days)) if days else None,
        round(statistics.mean(days), 1) if days else None,
    )


def from_json(report: dict[str, Any]) -> dict[tuple[str, str], tuple]:
    return {(row["kind"], row["law"]): tuple(row[name] for name in FIELDS) for row in report["rows"]}


def test_report_figures_are_what_counting_the_records_gives(
    database: Path | str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``report --year 2025 --format json`` gives the hand-worked figures, and so does counting ``records``."""
    rows = list(csv.DictReader(io.StringIO(run(capsys, "records"))))
    report = json.loads(run(capsys, "report", "--year", "2025", "--format", "json"))
    assert (report["from"], report["to"]) == ("2025-01-01", "2025-12-31")
    assert from_json(report) == EXPECTED
    assert counted(rows, first="2025-01-01", last="2025-12-31", as_of=report["as_of"]) == EXPECTED
    in_range = json.loads(run(capsys, "report", "--from", "2024-12-01", "--to", "2025-03-31", "--format", "json"))
    assert from_json(in_range) == counted(rows, first="2024-12-01", last="2025-03-31", as_of=in_range["as_of"])
    assert from_json(in_range)[("access", "GDPR")][:2] == (3, 3)


def test_records_has_the_contracts_columns_one_row_per_case_and_no_email(
    database: Path | str, capsys: pytest.CaptureFixture[str]
) -> None:
    """One row per case (the request that never started is none), the contract's columns, no shopper email."""
    out = run(capsys, "records")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert tuple(rows[0]) == RECORD_COLUMNS
    assert len(rows) == len(CASES) and "@" not in out
    extended = rows[4]  # the CCPA retrieval, extended by 45 days a day after it came
    assert extended == {
        "request": "5",
        "kind": "access",
        "law": "CCPA",
        "received": "2025-02-10",
        "via": "email",
        "ref": "TICKET-4",
        "requested_at": "2025-02-10T10:00:00+00:00",
        "requested_by": "U0ALICE",
        "verified_by": "U0ALICE",
        "verified_how": "order",
        "verified_at": "2025-02-10T10:00:00+00:00",
        "due": "2025-05-11T10:00:00+00:00",  # 45 days, and 45 more
        "extended": "2025-02-11T10:00:00+00:00",
        "answered_at": "2025-03-20T15:00:00+00:00",
        "outcome": "complied",
        "denial_reason": "",
        "days_to_answer": "38",
        "tasks": "task-0004",
    }
    lines = [
        json.loads(line) for line in run(capsys, "records", "--format", "jsonl", "--since", "2025-10-01").splitlines()
    ]
    assert [(r["request"], r["days_to_answer"], r["tasks"]) for r in lines] == [
        (7, None, ["task-0006"]),
        (11, 7, ["task-0010"]),
    ]


async def test_report_command_answers_allowed_people_alone_with_the_same_table(tmp_path: Path) -> None:
    """``/data-request report 2025`` answers the asker alone with the CLI's table; others are refused, audited."""
    clock = SettableClock(at("2025-01-01"))
    await made(tmp_path / "data-requests.db", clock)
    clock.now = at("2026-02-01")
    async with running_bot(tmp_path, clock=clock, encryption_key=KEY) as bot:
        expected = figures_table(await figures_for(bot.runtime.store, Period.year(2025), now=clock.now), title=False)
        assert "all      all         11         5" in expected
        await bot.slash("report 2025", user="U0ALICE")
        said = text_of(await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE")[0]))
        assert expected in said and "received 2025-01-01 to 2025-12-31" in said
        await bot.slash("report", user="U0ALICE")  # this year's: nothing received yet
        this_year = text_of(await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0ALICE")[1]))
        assert "received 2026-01-01 to 2026-12-31" in this_year and "all      all          0" in this_year
        await bot.slash("report 2025", user="U0MALLORY")
        refusal = text_of(await bot.slack.wait_for(lambda: bot.slack.ephemerals_to("U0MALLORY")[0]))
        assert "not allowed" in refusal and "received" not in refusal
        entries = await bot.runtime.store.audit.entries()
        assert any(e.actor == "U0MALLORY" and e.detail == "report: not allowed" for e in entries)
        for typed in ("report 25", "report 2025 2026", "report this"):
            assert "`report` takes a year" in ack_text(await bot.slash(typed))
        assert not bot.slack.ephemerals_to("U0BOB")


async def test_home_tab_shows_this_years_figures_to_allowed_people_only(tmp_path: Path) -> None:
    """An allowed person's Home tab carries this year's table, the same as ``report``; anyone else's does not."""
    clock = SettableClock(at("2025-01-01"))
    await made(tmp_path / "data-requests.db", clock)
    clock.now = at("2025-12-31")
    async with running_bot(tmp_path, clock=clock, encryption_key=KEY) as bot:
        expected = figures_table(await figures_for(bot.runtime.store, Period.year(2025), now=clock.now), title=False)
        for user in ("U0ALICE", "U0MALLORY"):
            await bot.runtime.workers.home.opened(user)
        published = {c.args["user_id"]: text_of(c.args["view"]) for c in bot.slack.calls_to("views.publish")}
        assert expected in published["U0ALICE"] and "Requests and answers" in published["U0ALICE"]
        assert "Requests and answers" not in published["U0MALLORY"] and "received" not in published["U0MALLORY"]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("records", "--since", "last week"), "--since"),
        (("report", "--year", "25"), "--year"),
        (("report", "--from", "2025-01-01"), "--from and --to"),
        (("report", "--from", "2025-02-01", "--to", "2025-01-01"), "give the earlier day first"),
        (("report", "--year", "2025", "--to", "2025-01-01"), "not both"),
    ],
)
async def test_a_wrong_option_exits_2_with_one_line_naming_it(
    database: Path | str, args: tuple[str, ...], names: str, tmp_path: Path
) -> None:
    """A wrong date or period: exit 2, one line on stderr naming the option and the fix, nothing on stdout."""
    env = clean_env(**where_set(database))
    done = await run_bot(*args, env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1 and names in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["records", "report"])
async def test_a_missing_database_exits_2_naming_database_path_and_creates_nothing(
    tmp_path: Path, command: str
) -> None:
    """Pointed at no database, both commands say so in one line naming DATABASE_PATH, and make no file."""
    missing = tmp_path / "nowhere.db"
    done = await run_bot(command, env=clean_env(DATABASE_PATH=str(missing)), cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"data-request-bot: DATABASE_PATH {missing} does not exist: point DATABASE_PATH at the bot's database "
        "(serve creates it)"
    ]
    assert not missing.exists()


async def test_records_and_report_need_no_key_and_run_beside_the_bot(database: Path | str, tmp_path: Path) -> None:
    """A compliance officer without the shoppers' key gets the record and the figures (no email is read)."""
    env = clean_env(**where_set(database))  # no ENCRYPTION_KEY, and no key file
    records = await run_bot("records", "--format", "jsonl", env=env, cwd=tmp_path)
    assert records.returncode == 0, records.stderr
    assert len(records.lines) == len(CASES) and "@" not in records.stdout
    report = await run_bot("report", "--year", "2025", env=env, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert report.lines[0].startswith("Shopper data requests received 2025-01-01 to 2025-12-31")
    assert any(line.split()[:3] == ["all", "all", "11"] for line in report.lines)


async def test_home_tab_figures_are_computed_once_a_minute_for_every_viewer(tmp_path: Path) -> None:
    """Within FIGURES_FRESH seconds Home shows the figures it computed; after, an answer given meanwhile counts."""
    clock = SettableClock(at("2025-01-01"))
    await made(tmp_path / "data-requests.db", clock)
    clock.now = at("2025-12-31")
    async with running_bot(tmp_path, clock=clock, encryption_key=KEY) as bot:
        home = bot.runtime.workers.home
        before = "all      all         11         5        1        1       3     2"
        assert before in text_of(await home.view("U0ALICE"))
        await record_answer(bot.runtime.store, 4, outcome="complied", reason=None, answered=clock.now)
        clock.advance(FIGURES_FRESH - 1)
        assert before in text_of(await home.view("U0BOB"))
        clock.advance(1)
        assert "all      all         11         6        1        1       3     1" in text_of(await home.view("U0BOB"))
