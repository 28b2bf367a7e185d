"""Two copies of the bot on one PostgreSQL database: acknowledgements and relayed events split across both.

Starts ``run.py``'s fakes, a bare Bolt baseline, and two copies of the real bot (``python -m bot serve``, the
same settings and ENCRYPTION_KEY, one empty database made for the run on ``--database``'s server, two ports),
as a load balancer in front of them would see them. Then, in rounds alternating bare Bolt, one copy alone
and both copies (request ``i`` to copy ``i % 2``), it sends ``/data-request <email>`` commands at concurrency
1 and 32 and waits after each round until the work they set off is done; then relays COMPLETED events for
every task split the same way. It checks what two copies must never do: a task started twice, a thread opened
twice, a completion reply posted twice. Prints a table; writes JSON to
``benchmarks/results/two-copies-<timestamp>.json``.

``python benchmarks/two_copies.py --database postgresql://USER@HOST:PORT/DB [--commands 200] [--rounds 2]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from run import (  # beside this file
    ROOT,
    Driver,
    Http,
    Load,
    Proc,
    beside_fakes,
    bot_env,
    dist_ms,
    drive,
    envelope,
    free_port,
    launch,
    plain_ack,
    relay,
    relay_status,
    wait_for_quiet,
)
from stores import Stores

STORE = "two-copies"  # the one database both copies share


async def commands(driver: Driver, targets: list[Proc], label: str, n: int, concurrency: int) -> Load:
    """``n`` commands, request ``i`` to ``targets[i % len(targets)]``."""
    return await drive(
        n,
        concurrency,
        lambda i: driver.slash(targets[i % len(targets)].url, f"{label}-{i}@example.com"),
        plain_ack,
    )


async def measure(args: argparse.Namespace, fakes: dict[str, str], stores: Stores, procs: list[Proc]) -> dict[str, Any]:
    workdir = stores.workdir
    store = stores.settings(STORE)
    copies: list[Proc] = []
    for name in ("bot_a", "bot_b"):
        port = free_port()
        copies.append(
            await launch(
                name, [sys.executable, "-m", "bot", "serve"], bot_env(fakes, workdir, port, store=store), workdir, port
            )
        )
        procs.append(copies[-1])
    bare_port = free_port()
    bare = await launch(
        "bare_bolt",
        [sys.executable, str(ROOT / "benchmarks" / "bare_bolt.py")],
        {**bot_env(fakes, workdir, bare_port, store=store), "PORT": str(bare_port)},
        workdir,
        bare_port,
    )
    procs.append(bare)
    sides: dict[str, list[Proc]] = {"bare_bolt": [bare], "one_copy": copies[:1], "two_copies": copies}
    out: dict[str, Any] = {"startup_s": {p.name: round(p.startup, 3) for p in (*copies, bare)}}
    async with Http("aiohttp", 40) as http:
        driver = Driver(http, fakes, procs, stores=stores)
        started = 0
        for side in ("one_copy", "two_copies"):
            await commands(driver, sides[side], f"warmup-{side}", args.warmup, 4)
            started += args.warmup
        await commands(driver, [bare], "warmup-bare", args.warmup, 4)
        await driver.settle(copies[0], tasks=started)
        for concurrency in (1, 32):
            loads = {side: Load() for side in sides}
            meters = {side: driver.meter(running=False) for side in sides}
            for number in range(args.rounds):
                for side, targets in sides.items():
                    meters[side].start()
                    load = await commands(
                        driver, targets, f"{side}-c{concurrency}-r{number}", args.commands, concurrency
                    )
                    if side != "bare_bolt":
                        started += args.commands
                        await driver.settle(copies[0], tasks=started)
                    meters[side].stop()
                    loads[side].latencies += load.latencies
                    loads[side].bad += load.bad
            row = {
                side: {**dist_ms(load.latencies), "not_plain_ack": len(load.bad), "cpu_percent": meters[side].read()}
                for side, load in loads.items()
            }
            out[f"c{concurrency}"] = row
            for side, figures in row.items():
                print(
                    f"  {side:10} c={concurrency:<3} p50 {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:7.2f} ms"
                    f"  (CPU % {figures['cpu_percent']})"
                )
        stats = await driver.get("/stats")
        out["tasks"] = {"commands": started, "started": stats["tasks"], "threads_opened": stats["parents"]}
        task_ids = (await driver.post("/complete", {}))["task_ids"]
        bodies = [envelope(task_id) for task_id in task_ids]
        meter = driver.meter()
        first = await drive(len(bodies), 32, lambda i: relay(driver, copies[i % 2], bodies[i]), relay_status("stored"))
        cpu = meter.read()
        deadline = time.monotonic() + 120
        summary: dict[str, Any] = {}
        while time.monotonic() < deadline:
            summary = await driver.post("/summary", {"task_ids": task_ids})
            if summary["missing"] == 0:
                break
            await asyncio.sleep(0.1)
        await driver.settle(copies[0], tasks=0)
        await asyncio.sleep(1.0)  # a second reply, if any copy were to post one, has had time to arrive
        final = await driver.post("/summary", {"task_ids": task_ids})
        out["relay"] = {
            "events": len(bodies),
            "accepted_per_second": round((len(bodies) - len(first.bad)) / first.seconds, 1),
            "latency": dist_ms(first.latencies),
            "rejected": len(first.bad),
            "cpu_percent": cpu,
            "missing": final["missing"],
            "twice": final["twice"],
        }
        out["peak_rss_mb"] = {p.name: round(p.memory().get("VmHWM", float("nan")), 1) for p in copies}
    return out


def table(r: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for c in ("c1", "c32"):
        row = r[c]
        bare = row["bare_bolt"]["p99_ms"]
        for side in ("one_copy", "two_copies"):
            p99 = row[side]["p99_ms"]
            rows.append(
                (
                    f"ack p99 {c[1:]:>2}, {side.replace('_', ' ')}",
                    f"{p99:.1f} ms ({p99 / bare:.2f}x bare Bolt {bare:.1f} ms)",
                )
            )
    t = r["tasks"]
    rows.append(
        ("tasks started / threads opened / commands", f"{t['started']} / {t['threads_opened']} / {t['commands']}")
    )
    rl = r["relay"]
    rows.append(
        ("relay split across both, c=32", f"{rl['accepted_per_second']:.0f}/s (p99 {rl['latency']['p99_ms']:.1f} ms)")
    )
    rows.append(
        ("relay: refused / never answered / answered twice", f"{rl['rejected']} / {rl['missing']} / {rl['twice']}")
    )
    rows.append(("peak RSS of each copy", ", ".join(f"{v} MB" for v in r["peak_rss_mb"].values())))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, metavar="POSTGRESQL_URL", help="as run.py's --database")
    parser.add_argument("--commands", type=int, default=200, help="commands a round, per side and concurrency")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per concurrency, the sides alternating")
    parser.add_argument("--warmup", type=int, default=20, help="commands to each side before measuring")
    parser.add_argument("--quiet-wait", type=float, default=10.0, help="seconds to wait for the machine to quieten")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results", help="where the JSON goes")
    args = parser.parse_args()
    load = wait_for_quiet(args.quiet_wait)
    made: list[Stores] = []

    async def copies(fakes: dict[str, str], workdir: Path, procs: list[Proc]) -> dict[str, Any]:
        made.append(Stores(workdir, args.database))
        results = await measure(args, fakes, made[0], procs)
        results["store"] = made[0].describe()
        return results

    def drop() -> None:
        for stores in made:
            stores.close()

    results: dict[str, Any] = beside_fakes("two-copies", copies, finally_=drop)
    results["config"] = {
        **{k: v for k, v in vars(args).items() if k not in ("database", "results")},
        "other_load_at_start_cores": round(load, 2),
    }
    width = max(len(what) for what, _ in table(results))
    print()
    for what, value in table(results):
        print(f"| {what:<{width}} | {value} |")
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"two-copies-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
