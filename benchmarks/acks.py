"""CPU per acknowledgement alone, by thread, against bare Bolt: what a burst of commands waits on.

``cpu.py``'s ``ack_ms_per_command`` also counts the work the burst sets off while it is acknowledged
(threads posted, tasks started), which swings with the machine. Here the bot runs with that work
switched off (a prelude: no follow-up after the ack, the outbox idle), so each burst of ``--commands``
new requests at ``--concurrency`` costs the acknowledgement alone: Slack's request read and verified,
the command read, the request stored through the group commit, the answer written. Per round it
prints bare Bolt's CPU per ack and the bot's, the bot's by thread (the event loop's, the store's),
and both sides' p50/p99; then the medians, and writes JSON to ``benchmarks/results/acks-<timestamp>.json``.

    .venv/bin/python benchmarks/acks.py                                 # this checkout's bot
    .venv/bin/python benchmarks/acks.py --without slash_before_bolt     # a piece switched off
    .venv/bin/python benchmarks/acks.py --bot-path /tmp/before          # another checkout's bot
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from run import ROOT, CpuMeter, Driver, Http, Proc, bot_env, dist_ms, free_port, launch, run_rounds  # beside this file
from switches import prelude

# The ack alone: the follow-up (thread, task start) is not spawned and the outbox never sends.
ACK_ALONE = (
    "import asyncio, handlers.commands as c, handlers.workers.outbox as o\n"
    "c._follow_up = lambda *args, **kwargs: None\n"
    "async def _idle(self):\n"
    "    await asyncio.Event().wait()\n"
    "o.OutboxSender.run = _idle\n"
)


def thread_seconds(pid: int) -> dict[str, float]:
    """User + system CPU seconds of each thread of a process, by thread id."""
    used: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        used[task.name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


async def measure(args: argparse.Namespace, fakes: dict[str, str], workdir: Path, procs: list[Proc]) -> list[Any]:
    port = free_port()
    env = bot_env(fakes, workdir, port)
    if args.bot_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(args.bot_path), env.get("PYTHONPATH")]))
    code = f"{ACK_ALONE}{prelude(args.without or '')}\nimport sys\nfrom bot.cli import main\nsys.exit(main(['serve']))"
    bot = await launch("bot", [sys.executable, "-c", code], env, workdir, port)
    procs.append(bot)
    bare_port = free_port()
    bare_argv = [sys.executable, str(ROOT / "benchmarks" / "bare_bolt.py")]
    bare = await launch("bare_bolt", bare_argv, bot_env(fakes, workdir, bare_port), workdir, bare_port)
    procs.append(bare)
    loop_thread = str(bot.popen.pid)  # the main thread runs the event loop
    rounds = []
    async with Http("aiohttp", 40) as http:
        driver = Driver(http, fakes, procs)
        for proc in (bot, bare):
            await driver.commands(proc.url, "warmup", 20, 4)
        for number in range(args.rounds):
            meter = CpuMeter([bare])
            bare_load = await driver.commands(bare.url, f"bare-{number}", args.commands, args.concurrency)
            bare_ms = 1000 * meter.seconds("bare_bolt") / args.commands
            threads = thread_seconds(bot.popen.pid)
            meter = CpuMeter([bot])
            load = await driver.commands(bot.url, f"bot-{number}", args.commands, args.concurrency)
            bot_ms = 1000 * meter.seconds("bot") / args.commands
            after = thread_seconds(bot.popen.pid)
            loop_ms = 1000 * (after.get(loop_thread, 0.0) - threads.get(loop_thread, 0.0)) / args.commands
            if load.bad or bare_load.bad:
                print(f"  round {number}: not a plain ack: bot {len(load.bad)}, bare Bolt {len(bare_load.bad)}")
            row = {
                "bare_bolt_ms_per_ack": round(bare_ms, 3),
                "bot_ms_per_ack": round(bot_ms, 3),
                "bot_loop_thread_ms_per_ack": round(loop_ms, 3),
                "bot_other_threads_ms_per_ack": round(bot_ms - loop_ms, 3),
                "bare_bolt_p50_ms": dist_ms(bare_load.latencies)["p50_ms"],
                "bot_p50_ms": dist_ms(load.latencies)["p50_ms"],
                "bare_bolt_p99_ms": dist_ms(bare_load.latencies)["p99_ms"],
                "bot_p99_ms": dist_ms(load.latencies)["p99_ms"],
            }
            print(f"  round {number}: {row}")
            rounds.append(row)
    return rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4, help="rounds, bare Bolt then the bot (default 4)")
    parser.add_argument("--commands", type=int, default=600, help="commands a round (default 600)")
    parser.add_argument("--concurrency", type=int, default=32, help="commands in flight (default 32)")
    parser.add_argument("--without", metavar="NAME[,NAME]", help="switch pieces off (benchmarks/switches.py)")
    parser.add_argument("--bot-path", type=Path, help="run the bot from this checkout instead of this one")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results", help="where the JSON goes")
    args = parser.parse_args()
    return run_rounds(args, measure, name="acks")


if __name__ == "__main__":
    sys.exit(main())
