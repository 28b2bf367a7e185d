"""How fast does a completion reach its thread after Slack comes back, and after a restart?

Runs the real bot in-process with its production timings (not the tests' fast
profile) against the loopback fakes from ``tests/fakes``, and prints seconds.
Not a test: numbers, to be read by a person. ``python benchmarks/recovery.py``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fakes import FakePrime, FakeSlack, buttons
from harness import Harness, envelope, make_settings

from bot.runtime import Runtime
from bot.tuning import Tuning

COMPLETED = "PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED"


async def _reply_posted(bot: Harness, parent: dict[str, object]) -> float:
    await bot.slack.wait_for(lambda: [p for p in bot.replies(str(parent["ts"])) if buttons(p)], timeout=600)
    return time.monotonic()


async def after_slack_returns(outage: float) -> float:
    """Slack answers 503 for ``outage`` seconds while the completion arrives; seconds from its return to the reply."""
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeSlack() as slack, FakePrime() as prime:
            settings = make_settings(slack, prime, Path(tmp))
            runtime = await Runtime.start(settings, host="127.0.0.1", tuning=Tuning())

            async with httpx.AsyncClient(timeout=10) as http:
                bot = Harness(slack, prime, runtime, http, settings)
                task_id, parent = await bot.request("recovery@example.com")
                prime.complete(task_id)
                slack.down = True
                await bot.relay(envelope(COMPLETED, task_id))
                await asyncio.sleep(outage)
                slack.down = False
                back = time.monotonic()
                posted = await _reply_posted(bot, parent)
            await runtime.stop()
            return posted - back


async def after_restart() -> tuple[float, float]:
    """The event is stored, then the bot dies before acting; seconds from restart to healthy, and to the reply."""
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeSlack() as slack, FakePrime() as prime:
            settings = replace(make_settings(slack, prime, Path(tmp)), encryption_key=os.urandom(32))
            runtime = await Runtime.start(settings, host="127.0.0.1", tuning=Tuning())

            async with httpx.AsyncClient(timeout=10) as http:
                bot = Harness(slack, prime, runtime, http, settings)
                task_id, parent = await bot.request("restart@example.com")
                prime.complete(task_id)
                slack.down = True  # the reply cannot go out before the crash
                await bot.relay(envelope(COMPLETED, task_id))
                await bot.crash()
                slack.down = False
                started = time.monotonic()
                await bot.restart(port=0)
                healthy = time.monotonic()
                posted = await _reply_posted(bot, parent)
                await bot.runtime.stop()
            return healthy - started, posted - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outages", default="2,10,30", help="Slack outage lengths to try, in seconds")
    args = parser.parse_args()
    print("completion to thread after Slack returns (production timings):")
    for outage in [float(x) for x in args.outages.split(",")]:
        lag = await after_slack_returns(outage)
        print(f"  Slack down {outage:5.1f} s  ->  reply {lag:6.2f} s after Slack is back")
    healthy, posted = await after_restart()
    print(f"after a crash and restart: healthy in {healthy:.2f} s, reply posted {posted:.2f} s after the restart")


if __name__ == "__main__":
    asyncio.run(main())
