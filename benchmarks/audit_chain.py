"""What the audit log's hash chain costs: appending to a long log, and ``audit --verify`` over all of it.

Fills a database with ``--entries`` audit entries through the store (each appended as the bot appends
one: its hash computed from the one before it, in its transaction), then runs ``data-request-bot audit
--verify`` as its own process, as an auditor does, and prints its wall time and peak memory.
Not a test: numbers, to be read by a person. ``python benchmarks/audit_chain.py [--entries 100000]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from store import EmailCipher, Store
from store._rows import append_audit

BATCH = 1_000


async def fill(database: Path, entries: int) -> tuple[float, float]:
    """Append ``entries`` entries in transactions of ``BATCH``; (seconds for all, ms for one append at the end)."""
    store = await Store.open(database, cipher=EmailCipher(os.urandom(32)))
    try:
        started = time.perf_counter()
        for first in range(0, entries, BATCH):

            def batch(db: object, first: int = first) -> None:
                for i in range(first, min(first + BATCH, entries)):
                    append_audit(
                        db,  # type: ignore[arg-type]
                        at=1.7e9 + i,
                        request_id=None,
                        actor="U0ALICE",
                        action="link shown",
                        detail=f"task amzn1.bp.task.{i:012d}, expires in 60 s",
                        actor_name="alice",
                    )

            await store._database.run(batch)
        filled = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(100):
            await store.audit.append(request_id=None, actor="U0BOB", action="status viewed")
        one = (time.perf_counter() - started) / 100 * 1000
    finally:
        await store.close()
    return filled, one


def verify(database: Path) -> tuple[float, float, str]:
    """``audit --verify`` as its own process: (seconds, peak RSS in MB, its first line)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "DATABASE_PATH": str(database),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--verify"], env=env, capture_output=True, text=True, check=True
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak, done.stdout.splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "data-requests.db"
        filled, one = asyncio.run(fill(database, args.entries))
        print(f"appended {args.entries:,} entries in {filled:.1f} s ({filled / args.entries * 1e6:.0f} µs each)")
        print(f"one append (its own transaction) at that length: {one:.2f} ms")
        seconds, peak, line = verify(database)
        print(f"audit --verify: {line!r} in {seconds:.1f} s, peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
