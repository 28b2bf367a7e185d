"""CPU the bot spends per command and per relayed event: a figure that other work on the machine does not hide.

Wall-clock throughput on shared cores measures the neighbours. The bot's own CPU time (user + system,
from ``/proc/<pid>/stat``) divided by the operations it served barely moves with them, so two versions
of the code can be compared while the machine is busy. Each round sends, to one bot (``run.py``'s
fakes and start-up):

1. ``--commands`` commands at concurrency 32 (a burst): the bot's CPU while they are acknowledged, and
   until the work they set off (threads opened, tasks started, the Home tab) is done, per command;
2. ``--events`` COMPLETED events at concurrency 32 for tasks in progress: the bot's CPU while they are
   accepted, and until every one is applied (the inbox asks Amazon, the outbox posts), per event;
3. as many events for tasks the bot does not know: stored, never applied, so the bot's CPU meanwhile is
   the relay's own per-event work and the inbox worker's look at what is pending (``ingest_ms_per_event``).

It prints each round and the medians, and writes JSON to ``benchmarks/results/cpu-<timestamp>.json``.
``--without NAME`` switches a piece of machinery off (``switches.py``), as in ``run.py``;
``--bot-path DIR`` runs another checkout's bot (its root first on ``PYTHONPATH``) for a before/after.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from run import (  # beside this file
    ROOT,
    CpuMeter,
    Driver,
    Http,
    Proc,
    bot_env,
    drive,
    envelope,
    free_port,
    launch,
    relay,
    relay_status,
    run_rounds,
)
from switches import prelude


async def one_round(driver: Driver, bot: Proc, number: int, args: argparse.Namespace, tasks: int) -> dict[str, Any]:
    """One burst of commands, then one batch of events, then events for strangers; CPU ms per operation for each.

    The strangers' events of the rounds before wait in the inbox for good, so settling allows for them.
    """
    strangers_before = number * args.events
    meter = CpuMeter([bot])
    load = await driver.commands(bot.url, f"cpu-r{number}", args.commands, 32)
    acks = meter.seconds("bot")
    meter = CpuMeter([bot])
    await driver.settle(bot, tasks=tasks + args.commands, inbox_left=strangers_before)
    settle = meter.seconds("bot")
    task_ids = (await driver.post("/complete", {"count": args.events}))["task_ids"]
    bodies = [envelope(task_ids[i % len(task_ids)]) for i in range(args.events)]
    meter = CpuMeter([bot])
    sent = await drive(len(bodies), 32, lambda i: relay(driver, bot, bodies[i]), relay_status("stored"))
    accepted = meter.seconds("bot")
    meter = CpuMeter([bot])
    await driver.settle(bot, tasks=0, inbox_left=strangers_before)
    applied = meter.seconds("bot")
    strangers = [envelope(f"sbx-unknown-{number}-{i}") for i in range(args.events)]
    meter = CpuMeter([bot])
    alone = await drive(len(strangers), 32, lambda i: relay(driver, bot, strangers[i]), relay_status("stored"))
    ingest = meter.seconds("bot")
    if load.bad or sent.bad or alone.bad:
        print(f"  round {number}: not a plain ack {len(load.bad)}, not stored {len(sent.bad) + len(alone.bad)}")
    return {
        "ack_ms_per_command": round(1000 * acks / args.commands, 3),
        "ms_per_command_with_its_work": round(1000 * (acks + settle) / args.commands, 3),
        "accept_ms_per_event": round(1000 * accepted / args.events, 3),
        "ms_per_event_applied": round(1000 * (accepted + applied) / args.events, 3),
        "ingest_ms_per_event": round(1000 * ingest / args.events, 3),
        "events_per_second": round(args.events / sent.seconds, 1),
    }


async def measure(args: argparse.Namespace, fakes: dict[str, str], workdir: Path, procs: list[Proc]) -> list[Any]:
    port = free_port()
    env = bot_env(fakes, workdir, port)
    if args.bot_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(args.bot_path), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "bot", "serve"]
    if before := prelude(args.without or ""):
        argv = [sys.executable, "-c", f"{before}\nimport sys\nfrom bot.cli import main\nsys.exit(main(['serve']))"]
    bot = await launch("bot", argv, env, workdir, port)
    procs.append(bot)
    rounds = []
    async with Http("aiohttp", 40) as http:
        driver = Driver(http, fakes, procs)
        await driver.commands(bot.url, "warmup", 20, 4)
        await driver.settle(bot, tasks=20)
        tasks = 20
        for number in range(args.rounds):
            row = await one_round(driver, bot, number, args, tasks)
            tasks += args.commands
            print(f"  round {number}: {row}")
            rounds.append(row)
    return rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds in the one bot process (default 3)")
    parser.add_argument("--commands", type=int, default=600, help="commands a round (default 600)")
    parser.add_argument("--events", type=int, default=2000, help="relay events a round (default 2000)")
    parser.add_argument("--without", metavar="NAME[,NAME]", help="switch pieces off (benchmarks/switches.py)")
    parser.add_argument("--bot-path", type=Path, help="run the bot from this checkout instead of this one")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results", help="where the JSON goes")
    args = parser.parse_args()
    return run_rounds(args, measure, name="cpu")


if __name__ == "__main__":
    sys.exit(main())
