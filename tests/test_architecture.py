"""The arrows between packages run one way (bot -> offline -> handlers -> {store, prime} -> core): import-linter.

The contracts live in ``pyproject.toml``; an import running back up, a private module imported from
another package, Slack, Bolt or aiohttp in the store, the Amazon client or the core, SQL in a handler, one
kind of request importing another, or a shared step importing a kind's package (only the registry does)
fails here, with the offending ``module -> module (l.N)`` in the failure message.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# In a process of its own: lint_imports configures logging with dictConfig, which would switch off every
# logger this test session has already made (and the tests after this one read those loggers' lines).
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"


def test_import_contracts_hold() -> None:
    """bot -> offline -> handlers -> {store, prime} -> core, private modules stay private: an import running
    back up fails here."""
    run = subprocess.run([sys.executable, "-c", LINT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Contracts: 6 kept, 0 broken." in run.stdout, run.stdout
