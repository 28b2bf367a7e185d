"""``records`` and ``report`` on years of cases: how long they take and how much memory they hold (issue 22).

For N = 1,000 and 100,000 cases (``--sizes``), fills a database spread over three years with the mix of
``scale.py`` (80 % access, 20 % erasure; most answered, a few denied, the newest open; a third under GDPR, a
third under CCPA, one in twenty extended; seven audit entries a case), written straight into the tables in
one transaction (the fill is not what is measured). Then runs, as an operator does, ``python -m bot``:

- ``records`` (CSV) and ``records --format jsonl`` into /dev/null: wall time and the process's peak RSS;
- ``report --from <first> --to <last> --format json`` over the whole history, and ``report`` for this year:
  wall time and peak RSS;
- in process, the figures the Home tab and ``/data-request report`` compute for this year (``figures_for``),
  best and median of ``ROUNDS``.

The same RSS at 1,000 and at 100,000 cases is what says ``records`` streams. Prints a table; writes JSON to
``benchmarks/results/records-<timestamp>.json``. ``python benchmarks/records.py [--sizes 1000,100000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handlers.figures import Period, figures_for  # noqa: E402
from store import EmailCipher, Store  # noqa: E402

DAY = 86_400.0
NOW = time.time()
SPAN = 3 * 365 * DAY
ROUNDS = 5
LAWS = ("GDPR: one month", "CCPA: 45 days", "30 days")
REASONS = ("unverifiable", "exempt", "withdrawn", "duplicate", "unfounded", "other")
AUDIT_ACTIONS = ("requested", "task started", "status viewed", "completed", "download link shown", "closed")


def fill(path: Path, n: int, *, seed: int = 22) -> None:
    """``n`` cases and their audit entries, oldest first, in one transaction."""
    asyncio.run(_create(path))  # the schema, as the bot makes it
    rng = random.Random(seed)
    requests, audit = [], []
    for i in range(n):
        created = NOW - SPAN + SPAN * i / n
        received = datetime.fromtimestamp(created - rng.choice((0, 0, DAY, 3 * DAY)), UTC).date().isoformat()
        kind = "retrieval" if rng.random() < 0.8 else "erasure"
        deadline = rng.choice(LAWS)
        due = created + (31 if deadline.startswith("GDPR") else 45 if deadline.startswith("CCPA") else 30) * DAY
        roll = rng.random()
        open_ = created > NOW - 25 * DAY
        closed = None if open_ else created + rng.uniform(DAY, 40 * DAY)
        outcome = None
        reason = None
        if closed is not None:
            outcome = (
                "denied"
                if roll < 0.05
                else "no data"
                if roll < 0.1
                else "complied in part"
                if roll < 0.15
                else "complied"
            )
            reason = rng.choice(REASONS) if outcome == "denied" else None
        requests.append(
            (
                i + 1,
                uuid.uuid4().hex[:24],
                str(uuid.uuid4()),
                kind,
                f"U0STAFF{rng.randrange(12):02d}",
                "C0CASES",
                "COMPLETED" if closed else "IN_PROGRESS",
                0 if closed else 1,
                f"{i:08d}-0000-4000-8000-{rng.getrandbits(48):012x}",
                created,
                closed or created,
                created + 300,
                due,
                deadline,
                received,
                rng.choice(("email", "form", "phone", None)),
                f"TICKET-{i}" if rng.random() < 0.5 else None,
                "U0STAFF00",
                "order",
                created,
                outcome,
                reason,
                closed,
                "U0STAFF01" if closed else None,
            )
        )
        for k, action in enumerate(AUDIT_ACTIONS):
            audit.append((created + k, i + 1, "U0STAFF00", action, ""))
        if rng.random() < 0.05:
            audit.append((created + 10 * DAY, i + 1, "U0STAFF00", "deadline extended", "+45 days"))
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO requests (id, ref, client_token, kind, requester, channel, status, moving, never_started,"
            " task_id, created_at, updated_at, next_check_at, due_at, deadline, received_on, received_via,"
            " outside_ref, verified_by, verified_how, verified_at, outcome, denial_reason, closed_at, closed_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            requests,
        )
        db.executemany("INSERT INTO audit (at, request_id, actor, action, detail) VALUES (?, ?, ?, ?, ?)", audit)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def _create(path: Path) -> None:
    store = await Store.open(path, cipher=EmailCipher(bytes(32)))
    await store.close()


def run_cli(path: Path, *args: str) -> dict[str, float]:
    """``python -m bot <args>`` with its output thrown away: the best wall seconds and peak RSS (MB) of three."""
    runs = [_run_cli(path, *args) for _ in range(3)]
    return {"seconds": min(r["seconds"] for r in runs), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def _run_cli(path: Path, *args: str) -> dict[str, float]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "DATABASE_PATH": str(path)}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "bot", *args], env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, (args, process.returncode)
    return {"seconds": round(wall, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


async def in_process(path: Path) -> dict[str, float]:
    """The figures for this year as the Home tab computes them: best and median of ROUNDS (ms)."""
    store = await Store.open(path, cipher=EmailCipher(bytes(32)))
    try:
        times = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            await figures_for(store, Period.this_year(NOW), now=NOW)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        await store.close()
    return {"best_ms": round(min(times), 1), "median_ms": round(statistics.median(times), 1)}


def one_size(n: int, workdir: Path) -> dict[str, Any]:
    path = workdir / f"cases-{n}.db"
    started = time.perf_counter()
    # In a process of its own: a child forked from a parent holding the fill's rows would count them in its RSS.
    subprocess.run([sys.executable, __file__, "--fill", str(path), str(n)], check=True)
    first = datetime.fromtimestamp(NOW - SPAN - 3 * DAY, UTC).date().isoformat()
    last = datetime.fromtimestamp(NOW, UTC).date().isoformat()
    return {
        "fill_seconds": round(time.perf_counter() - started, 1),
        "database_mb": round(path.stat().st_size / 2**20, 1),
        "records_no_rows": run_cli(path, "records", "--since", "9999-01-01"),  # the process, imports, no case
        "records_csv": run_cli(path, "records"),
        "records_jsonl": run_cli(path, "records", "--format", "jsonl"),
        "report_all_years_json": run_cli(path, "report", "--from", first, "--to", last, "--format", "json"),
        "report_this_year_text": run_cli(path, "report"),
        "figures_this_year_in_process": asyncio.run(in_process(path)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--fill", nargs=2, metavar=("PATH", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        fill(Path(args.fill[0]), int(args.fill[1]))
        return 0
    sizes = [int(size) for size in args.sizes.split(",")]
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for n in sizes:
            results[n] = one_size(n, Path(workdir))
            print(f"N={n:,}: {json.dumps(results[n])}", flush=True)
    out = ROOT / "benchmarks" / "results" / f"records-{int(time.time())}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"python": sys.version.split()[0], "results": results}, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
