"""SQLite against PostgreSQL in the same run: the same bot twice, one on each store, taking turns.

``run.py --database`` measures PostgreSQL in a run of its own, minutes away from SQLite's, and on a shared
machine the load of those minutes moved either figure more than the stores differ. Here both bots run at
once beside one set of fakes (``run.py``'s), and each level's commands go in rounds that alternate bare
Bolt, the bot on SQLite and the bot on PostgreSQL (each bot's round waited out until the work it set off is
done), so all three see the same machine. The issue's target: PostgreSQL's ack p99 within 1.5x SQLite's.
Prints a table; writes JSON to ``benchmarks/results/store-pair-<timestamp>.json``.

``python benchmarks/store_pair.py --database postgresql://USER@HOST:PORT/DB [--commands 200] [--rounds 4]``
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from run import (  # beside this file
    ROOT,
    Driver,
    Http,
    Proc,
    alternate_rounds,
    beside_fakes,
    bot_env,
    free_port,
    launch,
    wait_for_quiet,
)
from stores import Stores

TARGET = 1.5  # PostgreSQL's ack p99 at most this many times SQLite's, in the same run
SIDES = ("bare_bolt", "sqlite", "postgresql")


async def measure(
    args: argparse.Namespace, fakes: dict[str, str], on: dict[str, Stores], procs: list[Proc]
) -> dict[str, Any]:
    workdir = on["sqlite"].workdir
    bots: dict[str, Proc] = {}
    argv = [sys.executable, "-m", "bot", "serve"]
    if args.bot_prelude:  # an experiment: both bots with a change made before they start
        argv = [
            sys.executable,
            "-c",
            f"{args.bot_prelude}\nimport sys\nfrom bot.cli import main\nsys.exit(main(['serve']))",
        ]
    for store, stores in on.items():
        port = free_port()
        env = bot_env(fakes, workdir, port, store=stores.settings(f"pair-{store}"))
        bots[store] = await launch(f"bot_{store}", argv, env, workdir, port)
        procs.append(bots[store])
    port = free_port()
    env = bot_env(fakes, workdir, port, store=on["sqlite"].settings("pair-bare"))
    bare = await launch("bare_bolt", [sys.executable, str(ROOT / "benchmarks" / "bare_bolt.py")], env, workdir, port)
    procs.append(bare)
    async with Http("aiohttp", args.concurrency + 8) as http:
        driver = Driver(http, fakes, procs, stores=on["postgresql"])
        started = 0
        for proc in (*bots.values(), bare):
            await driver.commands(proc.url, f"warmup-{proc.name}", args.warmup, 4)
        for proc in bots.values():
            started += args.warmup
            await driver.settle(proc, tasks=started)
        sides = [("bare_bolt", bare, False), *((store, proc, True) for store, proc in bots.items())]
        rows, _ = await alternate_rounds(driver, sides, args, started=started)
    return {"levels": rows, "version": {store: stores.server_version() for store, stores in on.items()}}


def table(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    for level, row in results["levels"].items():
        sqlite, postgresql = row["sqlite"], row["postgresql"]
        ratio = postgresql["p99_ms"] / sqlite["p99_ms"]
        rows.append(
            (
                f"ack p99, c={level[1:]}",
                f"SQLite {sqlite['p99_ms']:.1f} ms (p50 {sqlite['p50_ms']:.1f}), PostgreSQL {postgresql['p99_ms']:.1f}"
                f" ms (p50 {postgresql['p50_ms']:.1f}), bare Bolt {row['bare_bolt']['p99_ms']:.1f} ms",
                f"{ratio:.2f}x",
                "PASS" if ratio <= TARGET else "MISS",
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, metavar="POSTGRESQL_URL", help="as run.py's --database")
    parser.add_argument("--commands", type=int, default=200, help="commands per store and concurrency")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per concurrency, the sides taking turns")
    parser.add_argument("--concurrency", type=int, default=32, help="the high concurrency level (default 32)")
    parser.add_argument("--warmup", type=int, default=20, help="commands to each side before measuring")
    parser.add_argument("--bot-prelude", help="Python run in both bots before they serve (an experiment)")
    parser.add_argument("--quiet-wait", type=float, default=10.0, help="seconds to wait for the machine to quieten")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results", help="where the JSON goes")
    args = parser.parse_args()
    load = wait_for_quiet(args.quiet_wait)
    on: dict[str, Stores] = {}

    async def pair(fakes: dict[str, str], workdir: Path, procs: list[Proc]) -> dict[str, Any]:
        on.update(sqlite=Stores(workdir), postgresql=Stores(workdir, args.database))
        return await measure(args, fakes, on, procs)

    def drop() -> None:
        for stores in on.values():
            stores.close()

    results = beside_fakes("pair", pair, finally_=drop)
    results["config"] = {
        **{k: v for k, v in vars(args).items() if k not in ("database", "results")},
        "other_load_at_start_cores": round(load, 2),
    }
    rows = table(results)
    print(f"\nthe same run, {results['version']['postgresql']} against {results['version']['sqlite']}:")
    for what, figures, ratio, verdict in rows:
        print(f"  {what:12} {figures}: {ratio} (target <= {TARGET}x) {verdict}")
    out = args.results / f"store-pair-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    args.results.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
