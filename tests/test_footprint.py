"""What a running bot loads: the sandbox's GraphQL engine only when it runs the sandbox, PostgreSQL's driver only
when it keeps its state there."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

from processes import Fakes, free_port, start_bot

# Everything `data-request-bot serve` imports before it reads its settings, then what it has loaded.
_SERVE_IMPORTS = "import sys, bot.cli, bot.runtime; print(sorted({m.split('.')[0] for m in sys.modules}))"


def test_serve_without_the_sandbox_does_not_load_graphql_core() -> None:
    """graphql-core is the sandbox's (4.9 MB of a running bot's RSS, benchmarks/README.md); serve loads it lazily."""
    done = subprocess.run([sys.executable, "-c", _SERVE_IMPORTS], capture_output=True, text=True, check=True)
    loaded = done.stdout
    assert "'bot'" in loaded and "'slack_bolt'" in loaded  # the probe saw serve's imports
    assert "'graphql'" not in loaded


async def test_postgresql_s_driver_is_loaded_only_by_a_bot_that_keeps_its_state_there(
    fakes: Fakes, tmp_path: Path, postgres_url: str
) -> None:
    """psycopg and libpq weigh on a process's memory: ``serve`` on SQLite, the default, never maps them; the same
    bot on PostgreSQL does (the check can tell)."""
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    for store, settings in (("sqlite", {}), ("postgresql", {"DATABASE_URL": postgres_url})):
        port = free_port()
        env = fakes.env(tmp_path / store, PORT=str(port), ENCRYPTION_KEY=key, **settings)
        process = await start_bot(env, cwd=tmp_path, log=tmp_path / f"{store}.log")
        try:
            mapped = Path(f"/proc/{process.pid}/maps").read_text()
        finally:
            process.terminate()
            await process.wait()
        assert ("libpq" in mapped) is (store == "postgresql"), store
