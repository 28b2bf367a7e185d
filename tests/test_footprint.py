"""What a running bot loads: the sandbox's GraphQL engine only when it runs the sandbox."""

from __future__ import annotations

import subprocess
import sys

# Everything `data-request-bot serve` imports before it reads its settings, then what it has loaded.
_SERVE_IMPORTS = "import sys, bot.cli, bot.runtime; print(sorted({m.split('.')[0] for m in sys.modules}))"


def test_serve_without_the_sandbox_does_not_load_graphql_core() -> None:
    """graphql-core is the sandbox's (4.9 MB of a running bot's RSS, benchmarks/README.md); serve loads it lazily."""
    done = subprocess.run([sys.executable, "-c", _SERVE_IMPORTS], capture_output=True, text=True, check=True)
    loaded = done.stdout
    assert "'bot'" in loaded and "'slack_bolt'" in loaded  # the probe saw serve's imports
    assert "'graphql'" not in loaded
