"""Does the bot stay fast and small as years of cases pile up? (issue 14)

For N = 1,000, 10,000 and 100,000 cases, fills a database through the store's own API (``store.Store``:
every case created, moved and closed as the bot does it, on a settable clock, spread over three years),
then measures, server side (the store's queries and the handlers' building of the answer, not Slack's
or Amazon's network), p50 and p99 of (five rounds of each; the best round's figures, every round's p99
in the JSON):

- ``status <email>`` and ``status <task>``: the lookup, the audit entry, the message;
- ``list`` and ``list all``: a page (the first, and pages deep in the list through **More**), rendered;
- an App Home publish: the viewer's, with a page of their own cases and one of the team's (without the call);
- the duplicate check of a new request (``requests.create`` with the kind's window, for a known shopper);
- one reconciler pass's selection (a page of unfinished requests, oldest first: a pass reads pages and
  counts nothing);
- one reminder pass's selection (the cases whose next reminder time has come), and a whole pass
  (``Reminders.send_due``: selects, then records and queues each reminder due);
- what a ``/metrics`` scrape reads (the counts by kind and status, open and overdue cases, the backlog) and
  what a ``/readyz`` health check reads (the backlog): both hold the one connection commands wait for;
- purging 10 % of the cases (retention), and the longest a status lookup waited meanwhile;

Every operation is timed as ``serve`` runs the store: SQLite's automatic WAL checkpoint off on the command
connection and the checkpoint loop on its own connection beside it (``status <email>`` and a new request,
which commit, are timed again with SQLite's checkpoint on the commit, the old way, for comparison);
plus database bytes per case, and the real bot (``python -m bot serve``, against the loopback fakes) started
on the filled database: time to healthy, and its peak RSS after a round of commands.

The mix: 80 % retrievals and 20 % erasures (approved by a second person, held ten days); about 90 % closed
(mostly completed, some failed), the newest 5 % open in progress (on hold, for an erasure), the rest
rejected or abandoned; six to eight audit rows and four to six sent Slack posts for a closed case. The
viewer whose ``list`` and Home tab are timed has a backlog of ``VIEWER_BACKLOG`` more open cases at every N,
so their list is a full page with **More** at every size (at N=1,000 they would otherwise have about 2 open cases,
at 100,000 a page of 20: not the same work).
``KIND_MIX`` says the share of each kind of request; a kind's path through the store is its entry in
``PATHS``.

Prints a table with the targets and writes JSON to ``benchmarks/results/scale-<timestamp>.json``.
``python benchmarks/scale.py [--sizes 1000,10000]``

The black box (``--black-box 200,10000``) measures from outside instead: the real bot, filled through
signed ``/data-request`` commands (each one a case left open, its task in progress at the fake Amazon)
until that many cases are open, then ``status <email>``, ``list all``, the Home tab and a Download click,
each from the signed HTTP request to Slack's reply (``--samples`` of each, in turns), and the process's
peak RSS. Here the reconciler, reminders and outbox look after every open case while the answers are
timed, which the store's own timings above cannot see.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import run as bench  # noqa: E402  (the loopback fakes and the bot's launch, shared with run.py)

from core import Background, RequestKind, TaskError, mask_email  # noqa: E402
from handlers import notices, texts  # noqa: E402
from handlers.desk import Permalinks  # noqa: E402
from handlers.kinds.registry import KINDS, free_text  # noqa: E402
from handlers.listing import Page, read_page  # noqa: E402
from handlers.texts import casework  # noqa: E402
from handlers.workers.access import Authorizer  # noqa: E402
from handlers.workers.home import HomeTab  # noqa: E402
from handlers.workers.reminders import Reminders  # noqa: E402
from store import EmailCipher, RequestStatus, Store  # noqa: E402

DAY = 86_400.0
SPAN = 3 * 365 * DAY  # the history's length
OPEN_DAYS = 25  # cases made in the last 25 days are open: each due within its 30-day window, none overdue
NOW = 1_800_000_000.0  # "now" at the end of the fill
STAFF = [f"U0STAFF{i:02d}" for i in range(12)]
VIEWER = STAFF[0]
VIEWER_BACKLOG = 25  # open cases of the viewer's own at every N: a full page of ``list`` and a More button
CHANNEL = "C0CASES"
# The share of each kind of request (each has its path in PATHS).
KIND_MIX: tuple[tuple[str, float], ...] = ((RequestKind.RETRIEVAL, 0.8), (RequestKind.ERASURE, 0.2))
ROUNDS = 5  # rounds of each operation; the best one's p50/p99 is kept (every round's p99 in the JSON)
TARGET_P99_MS = 50.0
TARGET_FLAT = 1.5
TARGET_RSS_MB = 90.0
TARGET_STARTUP_S = 1.0
TARGET_BYTES = 3 * 1024
TARGET_PURGE_S = 5.0
TARGET_BLOCK_MS = 100.0


@dataclass(frozen=True)
class CasePath:
    """How a kind's case moves through the store: its params, whether a second person approves it, the
    status its task starts in, the moves Amazon makes before it ends (each with its audit word), its ends."""

    params: dict[str, str]
    approved: bool
    started: RequestStatus
    moves: tuple[tuple[RequestStatus, str], ...]
    completed: RequestStatus
    failed: RequestStatus


PATHS: dict[str, CasePath] = {
    RequestKind.RETRIEVAL: CasePath(
        {}, False, RequestStatus.IN_PROGRESS, (), RequestStatus.COMPLETED, RequestStatus.FAILED
    ),
    RequestKind.ERASURE: CasePath(
        {"hold_days": "10", "reason": "the shopper asked by email"},
        True,
        RequestStatus.ON_HOLD,
        ((RequestStatus.IN_PROGRESS, "hold ended"),),
        RequestStatus.COMPLETED,
        RequestStatus.FAILED,
    ),
}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def fill(store: Store, clock: Clock, n: int, *, seed: int = 14) -> dict[str, Any]:
    """``n`` cases through the store's API, oldest first; returns what the measurements pick from."""
    rng = random.Random(seed)
    shoppers = max(1, int(n * 0.8))
    emails, tasks, open_emails = [], [], []
    # The newest cases are open, in progress: those made in the last OPEN_DAYS, due within their statutory
    # 30 days, as a merchant's open cases are (about 2.3 % of n); the rest are long closed.
    open_from = math.ceil(n * (1 - OPEN_DAYS * DAY / SPAN))
    kinds = [kind for kind, _ in KIND_MIX]
    weights = [share for _, share in KIND_MIX]
    for i in range(n):
        created = NOW - SPAN + SPAN * i / n
        clock.now = created
        kind = rng.choices(kinds, weights)[0]
        path = PATHS[kind]
        email = f"shopper{rng.randrange(shoppers)}@example.com"
        requester = rng.choice(STAFF)
        request, _ = await store.requests.create(
            kind=kind,
            email=email,
            email_masked=mask_email(email),
            requester=requester,
            channel=CHANNEL,
            due_at=created + 30 * DAY,
            deadline="30 days",
            params=path.params,
            notices=[notices.opener()],
        )
        emails.append(email)
        roll = rng.random()
        if i < open_from and roll < 0.025:
            await store.requests.abandon(request.id, actor="bot", reason="not in the channel")
            continue
        clock.now += 2.0
        await store.outbox.thread_opened(request.id, f"{clock.now:.6f}", to=KINDS[request.kind].opened)
        if path.approved:
            await store.decisions.approve(request.id, user=rng.choice(STAFF), notices=notices.thread_update())
        if i < open_from and roll < 0.05:
            errors = [TaskError("INVALID_INPUT", "refused")]
            await store.requests.record_start_rejected(request.id, errors, notices=notices.thread_update())
            continue
        task_id = f"{i:08d}-0000-4000-8000-{rng.getrandbits(48):012x}"
        tasks.append(task_id)
        hold = float(path.params.get("hold_days", 0)) * DAY
        await store.requests.record_task_started(
            request.id,
            task_id,
            to=path.started,
            hold_ends_at=clock.now + hold if hold else None,
            notices=notices.thread_update(),
        )
        await store.audit.append(request_id=request.id, actor=requester, action="status viewed")
        if i >= open_from:
            if kind == RequestKind.RETRIEVAL:
                open_emails.append(email)
            continue
        at = path.started
        for status, action in path.moves:
            clock.now += rng.uniform(600, DAY)
            await store.requests.record_task_state(
                request.id, from_={at}, to=status, errors=[], action=action, notices=notices.thread_update()
            )
            at = status
        clock.now += rng.uniform(600, 3 * DAY)
        failed = roll < 0.07
        await store.requests.record_task_state(
            request.id,
            from_={at},
            to=path.failed if failed else path.completed,
            errors=[TaskError("DATA_SUBJECT_NOT_FOUND", "no such shopper")] if failed else [],
            action="failed" if failed else "completed",
            notices=notices.thread_update(),
        )
        await store.audit.append(request_id=request.id, actor=requester, action="download link shown")
        clock.now += rng.uniform(600, 10 * DAY)
        await store.cases.close(request.id, user=requester, notices=notices.thread_update())
    for i in range(VIEWER_BACKLOG):  # the viewer's own backlog, made in the last days, in progress
        clock.now = NOW - (VIEWER_BACKLOG - i) * 3_600.0
        email = f"backlog{i}@example.com"
        request, _ = await store.requests.create(
            kind=RequestKind.RETRIEVAL,
            email=email,
            email_masked=mask_email(email),
            requester=VIEWER,
            channel=CHANNEL,
            due_at=clock.now + 30 * DAY,
            deadline="30 days",
            notices=[notices.opener()],
        )
        await store.outbox.thread_opened(request.id, f"{clock.now:.6f}")
        await store.requests.record_task_started(request.id, f"backlog-{i:04d}", notices=notices.thread_update())
    clock.now = NOW
    while entries := await store.outbox.due(limit=500):  # every post was sent long ago, as the bot would have
        for entry in entries:
            await store.outbox.sent(entry.id)
    reminders = Reminders(store=store, clock=clock, counters=_NoCounters())
    while await reminders.send_due():  # what the bot would have sent by now
        for entry in await store.outbox.due(limit=500):
            await store.outbox.sent(entry.id)
    return {"emails": emails, "tasks": tasks, "open_emails": open_emails}


class _NoCounters:
    def reminder_sent(self) -> None:
        pass

    def reconciler_pass(self, result: str) -> None:
        pass


class _Links:
    """Slack's chat.getPermalink, answered at once: the measurement is the bot's side."""

    async def chat_getPermalink(self, *, channel: str, message_ts: str) -> dict[str, str]:  # noqa: N802
        return {"permalink": f"https://example.slack.com/archives/{channel}/p{message_ts.replace('.', '')}"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def timed(
    work: Callable[[], Awaitable[object]], times: int, *, rounds: int = ROUNDS, warm_up: int = 200
) -> dict[str, Any]:
    """p50 and p99 of ``times`` runs of ``work``, in milliseconds: the best of ``rounds`` rounds.

    ``warm_up`` untimed runs first (the page cache and the statement cache filled, as in a running bot).
    The machine is shared (2 cores, other work on them): one round's p99 is often another process's
    time slice. The best round is the operation's own cost; each round's p99 is kept beside it.
    With 2,000 runs a round, the p99 is the 20th slowest run, not the 3rd: a few time slices do not move it.
    """
    for _ in range(warm_up):
        await work()
    per_round = []
    for _ in range(rounds):
        spent = []
        for _ in range(times):
            began = time.perf_counter()
            await work()
            spent.append((time.perf_counter() - began) * 1000)
        per_round.append((pct(spent, 0.99), pct(spent, 0.50)))
    p99, p50 = min(per_round)
    return {
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "p99_each_round_ms": [round(r[0], 3) for r in per_round],
        "runs": times * rounds,
    }


async def all_pages(store: Store, permalinks: Permalinks, scope: str, user: str) -> list[Page]:
    """Every page of a list, as **More** would reach them."""
    pages, page = [], Page("mine" if scope == "mine" else "all")
    while True:
        pages.append(page)
        more = (await read_page(store, permalinks, page, user=user)).more
        if more is None:
            return pages
        page = Page.read(more) or page


async def measure(store: Store, clock: Clock, data: dict[str, Any], *, runs: int) -> dict[str, Any]:
    """p50/p99 of each operation on the filled store, then the purge of 10 %."""
    rng = random.Random(41)
    permalinks = Permalinks(_Links())  # type: ignore[arg-type]
    authorizer = Authorizer(allowed_users=frozenset(STAFF), usergroup=None, slack=None)  # type: ignore[arg-type]
    home = HomeTab(
        store=store,
        slack=None,  # type: ignore[arg-type]
        permalinks=permalinks,
        authorizer=authorizer,
        background=Background(),
        clock=clock,
    )
    kind = KINDS[RequestKind.RETRIEVAL]
    out: dict[str, Any] = {}

    async def status_email() -> None:
        found = await store.requests.for_email(rng.choice(data["emails"]))
        if not found:  # erased by retention: the answer says it is unknown
            texts.unknown_request("`s***@example.com`")
            return
        await store.audit.append(request_id=found[0].id, actor=VIEWER, action="status viewed")
        texts.status_message(found[0], kind.texts, permalink=await permalinks.get(found[0]), now=clock())

    async def status_task() -> None:
        found = await store.requests.for_task(rng.choice(data["tasks"]))
        assert found is not None
        await store.audit.append(request_id=found.id, actor=VIEWER, action="status viewed")
        texts.status_message(found, kind.texts, permalink=await permalinks.get(found), now=clock())

    mine_pages = await all_pages(store, permalinks, "mine", VIEWER)
    team_pages = await all_pages(store, permalinks, "all", VIEWER)

    def lister(pages: list[Page], *, whole_team: bool) -> Callable[[], Awaitable[None]]:
        async def list_one() -> None:
            page = rng.choice(pages)
            shown = await read_page(store, permalinks, page, user=VIEWER)
            casework.open_cases_message(
                shown.cases,
                whole_team=whole_team,
                more=shown.more,
                start=page.start,
                total=shown.total,
                now=clock(),
                permalinks=shown.links,
            )

        return list_one

    async def home_view() -> None:
        await home.view(VIEWER)  # a full page of their own at every N, as for ``list``

    async def reminder_selection() -> None:
        await store.cases.reminders_due()

    async def reconciler_selection() -> None:
        await store.requests.unfinished(due_by=clock(), limit=50)

    async def metrics_scrape() -> None:
        await store.backlog()
        await store.cases.counts()

    async def health_check() -> None:
        await store.backlog()

    reminders = Reminders(store=store, clock=clock, counters=_NoCounters())
    sent: list[int] = []
    # A merchant with n cases in three years makes n / 1,095 a day, so a 10-minute pass at 100,000 has a
    # hundred times the reminders due of one at 1,000: that is the work of sending them, not the history's
    # cost. Each pass moves the clock by 10 minutes x 1,000 / n, so every N's passes find as many due.
    step = 600.0 * 1000 / len(data["emails"])

    async def reminder_pass() -> None:
        clock.now += step
        sent.append(await reminders.send_due())

    async def create(email: str) -> None:
        await store.requests.create(
            kind=kind.kind,
            email=email,
            email_masked=mask_email(email),
            requester=VIEWER,
            channel=CHANNEL,
            due_at=clock() + 30 * DAY,
            deadline="30 days",
            duplicate_window=kind.duplicate_window,
        )

    async def duplicate_check() -> None:
        """A shopper with an unfinished request of the kind: the check finds it, nothing is written."""
        await create(rng.choice(data["open_emails"]))

    fresh = iter(range(10**9))

    async def new_request() -> None:
        """A shopper never seen: the check finds nothing, the request is inserted and committed."""
        await create(f"new{next(fresh)}@example.com")

    # Everything is timed as ``serve`` runs it (issue 14): the command connection never checkpoints, the
    # checkpoint loop runs beside it on its own connection at its real cadence (store/_checkpoints.py).
    async with checkpointing(store):
        out["status_email"] = await timed(status_email, runs)
        out["status_task"] = await timed(status_task, runs)
        out["list"] = await timed(lister(mine_pages, whole_team=False), runs)
        out["list_all"] = await timed(lister(team_pages, whole_team=True), runs)
        out["list_all"]["pages"] = len(team_pages)
        out["home"] = await timed(home_view, runs)
        out["reconciler_selection"] = await timed(reconciler_selection, runs)
        out["reminder_selection"] = await timed(reminder_selection, runs)
        out["metrics_scrape"] = await timed(metrics_scrape, runs)
        out["health_check"] = await timed(health_check, runs)
        out["reminder_pass"] = await timed(reminder_pass, runs)
        out["reminder_pass"]["reminders_sent_per_pass"] = round(sum(sent) / max(1, len(sent)), 3)
        out["reminder_pass"]["clock_step_s"] = round(step, 1)
        out["duplicate_check"] = await timed(duplicate_check, runs)
        out["new_request"] = await timed(new_request, runs)
        out["new_request"]["truncating_checkpoints"] = store.checkpoints.truncations
    # The old way, for comparison: SQLite's automatic checkpoint inside the committing call (every 1,000 pages).
    out["status_email_autocheckpoint"] = await timed(status_email, runs)
    out["new_request_autocheckpoint"] = await timed(new_request, runs)
    await store._database.fetch("PRAGMA wal_checkpoint(TRUNCATE)")
    async with checkpointing(store):
        out["purge"] = await purge_tenth(store, clock, data)
    return out


@contextlib.asynccontextmanager
async def checkpointing(store: Store) -> AsyncIterator[None]:
    """The checkpoint loop running beside the store, as in ``serve``; stopped (and SQLite's own back) after."""
    loop = asyncio.create_task(store.checkpoints.run())
    await store.checkpoints.running.wait()
    try:
        yield
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


async def purge_tenth(store: Store, clock: Clock, data: dict[str, Any]) -> dict[str, Any]:
    """Retention purges the oldest 10 % of the cases, while a status lookup runs every 5 ms beside it."""
    rng = random.Random(7)
    older_than = NOW - SPAN + SPAN * 0.1
    waits: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            began = time.perf_counter()
            await store.requests.for_task(rng.choice(data["tasks"]))
            waits.append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(0.005)

    prober = asyncio.create_task(probe())
    began = time.perf_counter()
    purged = await store.cases.purge_expired(older_than=older_than, free_text=free_text(KINDS))
    seconds = time.perf_counter() - began
    done.set()
    await prober
    return {
        "cases": len(purged),
        "seconds": round(seconds, 3),
        "lookup_max_wait_ms": round(max(waits), 1) if waits else None,
        "lookup_p99_ms": round(pct(waits, 0.99), 2) if waits else None,
        "lookups": len(waits),
    }


async def the_real_bot(path: Path, key: bytes, workdir: Path) -> dict[str, Any]:
    """``python -m bot serve`` on the filled database: time to healthy, peak RSS after a round of commands."""
    fakes_proc, fakes = bench.start_fakes(workdir)
    port = bench.free_port()
    env = bench.bot_env(fakes, workdir, port)
    env.update(DATABASE_PATH=str(path), ENCRYPTION_KEY=base64.urlsafe_b64encode(key).decode(), ALLOWED_USERS=bench.USER)
    bot = None
    try:
        bot = await bench.launch("bot", [sys.executable, "-m", "bot", "serve"], env, workdir, port)
        async with bench.Http("aiohttp", 4) as http:
            driver = bench.Driver(http, fakes, [fakes_proc, bot])
            for text in ["list all", "list", "status shopper1@example.com", "help"] * 5:
                await driver.slash(bot.url, text)
            await asyncio.sleep(1.0)  # the work after the acknowledgements
        memory = bot.memory()
        return {"startup_s": round(bot.startup, 3), "peak_rss_mb": round(memory.get("VmHWM", math.nan), 1)}
    finally:
        if bot is not None:
            bot.stop()
        fakes_proc.stop()


async def reply_time(driver: bench.Driver, bot: bench.Proc, text: str) -> float:
    """A signed ``/data-request <text>``: seconds from the request to its reply arriving at Slack (response_url)."""
    path = f"/response/{os.urandom(8).hex()}"
    body = bench.slash_body(
        text, user=bench.USER, channel=bench.CHANNEL, response_url=driver.fakes["slack_base"] + path
    )
    sent = time.monotonic()
    await driver.http.post(
        bot.url + "/slack/events", content=body, headers=bench.slack_headers(body, bench.SIGNING_SECRET)
    )
    at = (await driver.get(f"/wait_arrival?key=response:{path}&timeout=20"))["at"]
    return math.nan if at is None else at - sent


async def home_time(driver: bench.Driver, bot: bench.Proc) -> float:
    """A signed ``app_home_opened``: seconds from the event to the Home tab's ``views.publish`` at Slack."""
    published = (await driver.get("/stats"))["home_publishes"].get(bench.USER, 0)
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0BENCH",
            "api_app_id": "A0BENCH",
            "event": {"type": "app_home_opened", "user": bench.USER, "tab": "home", "channel": "D0BENCH"},
            "event_id": "Ev" + os.urandom(6).hex(),
            "event_time": int(time.time()),
        }
    )
    headers = bench.slack_headers(body, bench.SIGNING_SECRET, content_type="application/json")
    sent = time.monotonic()
    await driver.http.post(bot.url + "/slack/events", content=body, headers=headers)
    at = (await driver.get(f"/wait_arrival?key=home:{bench.USER}:{published + 1}&timeout=20"))["at"]
    return math.nan if at is None else at - sent


def spread(values: list[float]) -> dict[str, float]:
    kept = [v for v in values if not math.isnan(v)]
    return {
        "n": len(kept),
        "missing": len(values) - len(kept),
        "p50_ms": round(pct(kept, 0.50) * 1000, 2),
        "p99_ms": round(pct(kept, 0.99) * 1000, 2),
    }


async def ask(driver: bench.Driver, bot: bench.Proc, samples: int) -> dict[str, Any]:
    """Time ``status <email>``, ``list all``, the Home tab and a Download click, each ``samples`` times, in turns."""
    replies = list((await bench.completion_replies(driver, bot, samples)).items())
    times: dict[str, list[float]] = {"status_email": [], "list_all": [], "home": [], "click_to_link": []}
    for i in range(samples):
        times["status_email"].append(await reply_time(driver, bot, f"status fill0-{i}@example.com"))
        times["list_all"].append(await reply_time(driver, bot, "list all"))
        times["home"].append(await home_time(driver, bot))
        task_id, message = replies[i]
        times["click_to_link"].append((await bench.click(driver, bot, task_id, message))[1] or math.nan)
    return {name: spread(values) for name, values in times.items()}


async def black_box(workdir: Path, open_counts: list[int], *, samples: int, chunk: int = 1000) -> dict[str, Any]:
    """The real bot filled through signed commands (each one an open case) and asked at each count in turn.

    Each command is a request whose task stays in progress at the fake Amazon, so every case stays open
    and the reconciler and reminders have all of them to look after, as a merchant's busy month would.
    """
    fakes_proc, fakes = bench.start_fakes(workdir)
    port = bench.free_port()
    env = bench.bot_env(fakes, workdir, port)
    path = workdir / "black-box.db"
    env.update(DATABASE_PATH=str(path))
    bot = await bench.launch("bot", [sys.executable, "-m", "bot", "serve"], env, workdir, port)
    out: dict[str, Any] = {}
    made = 0
    began = time.monotonic()
    try:
        async with bench.Http("aiohttp", 40) as http:
            driver = bench.Driver(http, fakes, [fakes_proc, bot])
            for target in open_counts:
                while made < target:
                    size = min(chunk, target - made)
                    load = await driver.commands(bot.url, f"fill{made}", size, 32)
                    if load.bad:
                        print(f"  black box: {len(load.bad)} commands not acknowledged, e.g. {load.bad[0]}")
                    made += size
                    await driver.settle(bot, tasks=made, within=900)
                filled = time.monotonic() - began
                figures = await ask(driver, bot, samples)
                await driver.settle(bot, tasks=made, within=900)
                out[str(target)] = {
                    "open_cases": made,
                    "filled_after_s": round(filled, 1),
                    "database_bytes": database_bytes(path),
                    **figures,
                }
                line = ", ".join(f"{k} {v['p50_ms']:.1f}/{v['p99_ms']:.1f} ms" for k, v in figures.items())
                print(f"  {made:,} open cases (filled after {filled:.0f} s): {line}", flush=True)
        out["peak_rss_mb"] = round(bot.memory().get("VmHWM", math.nan), 1)
    finally:
        bot.stop()
        fakes_proc.stop()
    largest = str(open_counts[-1])
    out["bytes_per_case"] = round(out[largest]["database_bytes"] / max(1, out[largest]["open_cases"]))
    return out


def black_box_table(box: dict[str, Any], open_counts: list[int]) -> list[str]:
    """Each answer's p50/p99 at each open-case count, the ratio to the smallest, and the targets."""
    small, large = str(open_counts[0]), str(open_counts[-1])
    lines = [
        "| from the HTTP request to Slack's reply | "
        + " | ".join(f"{int(n):,} open" for n in (small, large))
        + " | ratio p50 / p99 | target | |",
        "|---|---|---|---|---|---|",
    ]
    for key, name in (
        ("status_email", "status <email>"),
        ("list_all", "list all"),
        ("home", "Home tab"),
        ("click_to_link", "Download click to link"),
    ):
        a, b = box[small][key], box[large][key]
        r50 = b["p50_ms"] / a["p50_ms"] if a["p50_ms"] else math.inf
        r99 = b["p99_ms"] / a["p99_ms"] if a["p99_ms"] else math.inf
        flat = key != "click_to_link"
        met = (r50 <= TARGET_FLAT and r99 <= TARGET_FLAT) if flat else True
        lines.append(
            f"| {name} p50 / p99 | {a['p50_ms']:.1f} / {a['p99_ms']:.1f} ms | {b['p50_ms']:.1f} / {b['p99_ms']:.1f} ms"
            f" | {r50:.2f}x / {r99:.2f}x | {'<= 1.5x' if flat else '(reported)'}"
            f" | {('PASS' if met else 'MISS') if flat else ''} |"
        )
    rss, per_case = box["peak_rss_mb"], box["bytes_per_case"]
    lines.append(f"| bot peak RSS | | {rss:.1f} MB | | <= 90 MB | {'PASS' if rss <= TARGET_RSS_MB else 'MISS'} |")
    lines.append(
        f"| database bytes per case | | {per_case:,} | | <= 3 KB | {'PASS' if per_case <= TARGET_BYTES else 'MISS'} |"
    )
    return lines


def database_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


async def one_size(n: int, workdir: Path, *, runs: int) -> dict[str, Any]:
    key = os.urandom(32)
    clock = Clock(NOW - SPAN)
    path = workdir / f"scale-{n}.db"
    store = await Store.open(path, cipher=EmailCipher(key), clock=clock)
    began = time.perf_counter()
    data = await fill(store, clock, n)
    fill_seconds = time.perf_counter() - began
    await store.close()  # the WAL is folded into the file on close: the bytes are the database's own
    size = database_bytes(path)
    print(f"  N={n}: filled in {fill_seconds:.1f} s; {size / n:.0f} bytes per case", flush=True)
    store = await Store.open(path, cipher=EmailCipher(key), clock=clock)
    try:
        ops = await measure(store, clock, data, runs=runs)
    finally:
        await store.close()
    real = await the_real_bot(path, key, workdir)  # last: its retention and reconciler change the database
    return {
        "cases": n,
        "fill_seconds": round(fill_seconds, 1),
        "database_bytes": size,
        "bytes_per_case": round(size / n),
        **real,
        "operations": ops,
    }


OPERATIONS = [
    ("status_email", "status <email>"),
    ("status_task", "status <task>"),
    ("list", "list (a page)"),
    ("list_all", "list all (a page)"),
    ("home", "App Home view"),
    ("duplicate_check", "duplicate check (create, a duplicate found)"),
    ("new_request", "new request (check, insert, commit)"),
    ("new_request_autocheckpoint", "new request, SQLite's autocheckpoint on the commit (the old way; diagnosis)"),
    ("status_email_autocheckpoint", "status <email>, SQLite's autocheckpoint on the commit (the old way; diagnosis)"),
    ("reconciler_selection", "reconciler selection"),
    ("reminder_selection", "reminder selection"),
    ("reminder_pass", "reminder pass (selects, sends what is due)"),
    ("metrics_scrape", "/metrics scrape (counts, backlog)"),
    ("health_check", "/readyz health check (backlog)"),
]


def table(results: dict[int, dict[str, Any]]) -> list[str]:
    """The table for benchmarks/README.md: each operation's p50/p99 at every N, and the targets."""
    sizes = sorted(results)
    small, large = sizes[0], sizes[-1]
    head = "| measure | " + " | ".join(f"N={n:,}" for n in sizes) + f" | target at N={large:,} | |"
    lines = [head, "|" + "---|" * (len(sizes) + 3)]
    for key, name in OPERATIONS:
        cells = [
            f"{results[n]['operations'][key]['p50_ms']:.2f} / {results[n]['operations'][key]['p99_ms']:.2f} ms"
            for n in sizes
        ]
        p99_small = results[small]["operations"][key]["p99_ms"]
        p99_large = results[large]["operations"][key]["p99_ms"]
        met = p99_large < TARGET_P99_MS and p99_large <= TARGET_FLAT * p99_small
        ratio = p99_large / p99_small if p99_small else math.inf
        target = f"p99 < 50 ms, <= 1.5x N={small:,} ({ratio:.2f}x)"
        lines.append(f"| {name} p50 / p99 | " + " | ".join(cells) + f" | {target} | {'PASS' if met else 'MISS'} |")
    purge = [results[n]["operations"]["purge"] for n in sizes]
    cells = [f"{p['cases']:,} in {p['seconds']:.2f} s, lookups waited <= {p['lookup_max_wait_ms']} ms" for p in purge]
    per_10k = purge[-1]["seconds"] * 10_000 / max(1, purge[-1]["cases"])
    met = per_10k <= TARGET_PURGE_S and (purge[-1]["lookup_max_wait_ms"] or 0) <= TARGET_BLOCK_MS
    lines.append(
        "| purge 10 % | " + " | ".join(cells) + f" | 10,000 <= 5 s ({per_10k:.2f} s), waits <= 100 ms |"
        f" {'PASS' if met else 'MISS'} |"
    )
    for key, name, target, limit, fmt in (
        ("bytes_per_case", "database bytes per case", "<= 3 KB", TARGET_BYTES, "{:,.0f}"),
        ("peak_rss_mb", "bot peak RSS (MB)", "<= 90 MB", TARGET_RSS_MB, "{:.1f}"),
        ("startup_s", "bot start-up to healthy (s)", "<= 1 s", TARGET_STARTUP_S, "{:.2f}"),
    ):
        cells = [fmt.format(results[n][key]) for n in sizes]
        met = results[large][key] <= limit
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {target} | {'PASS' if met else 'MISS'} |")
    fills = [f"{results[n]['fill_seconds']:.0f} s" for n in sizes]
    lines.append("| fill through the API | " + " | ".join(fills) + " | (reported) | |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="case counts, comma-separated")
    parser.add_argument("--runs", type=int, default=2000, help=f"runs of each operation per round ({ROUNDS} rounds)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--black-box",
        metavar="OPEN[,OPEN]",
        help="instead: fill the real bot through signed commands to these open-case counts (say 200,10000)"
        " and time status, list all, the Home tab and a Download click from the request to Slack's reply",
    )
    parser.add_argument("--samples", type=int, default=50, help="black box: times each answer is asked for")
    args = parser.parse_args()
    if args.black_box:
        return main_black_box(args)
    sizes = [int(s) for s in args.sizes.split(",")]
    began = time.monotonic()
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        for n in sizes:
            results[n] = asyncio.run(one_size(n, Path(tmp), runs=args.runs))
    lines = table(results)
    print("\n" + "\n".join(lines))
    out = {
        "sizes": {str(n): r for n, r in results.items()},
        "table": lines,
        "config": {
            "kind_mix": dict(KIND_MIX),
            "runs": args.runs,
            "rounds": ROUNDS,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "commit": bench._git_commit(),
        },
        "total_seconds": round(time.monotonic() - began, 1),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"scale-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\n{out['total_seconds']} s in all; results in {path}")
    return 0


def main_black_box(args: argparse.Namespace) -> int:
    counts = [int(n) for n in args.black_box.split(",")]
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="scale-box-") as tmp:
        box = asyncio.run(black_box(Path(tmp), counts, samples=args.samples))
    lines = black_box_table(box, counts)
    print("\n" + "\n".join(lines))
    out = {
        "black_box": box,
        "table": lines,
        "config": {
            "open_counts": counts,
            "samples": args.samples,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "commit": bench._git_commit(),
        },
        "total_seconds": round(time.monotonic() - began, 1),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"scale-box-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\n{out['total_seconds']} s in all; results in {path}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
