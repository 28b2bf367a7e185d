"""``Runtime.start`` changes nothing process-wide: the command line owns logging and the garbage collector.

A runtime that added a filter to a library's logger, set a level, or froze the collector at each start
would change every other runtime in the process (the tests start hundreds) and whoever embeds it. Here
a runtime is started and stopped twice, in HTTP and in Socket Mode, and the process is compared.
"""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from fakes import FakePrime
from fakes.socket_mode import FakeSlackWithSockets
from harness import make_settings

from bot.runtime import Runtime
from bot.tuning import Tuning


def process_state() -> dict[str, Any]:
    """Every logger's level, filters, handlers and switches, and how much the collector has frozen."""
    loggers = {"": logging.getLogger()} | {
        name: logger for name, logger in logging.Logger.manager.loggerDict.items() if isinstance(logger, logging.Logger)
    }
    return {
        "loggers": {
            name: (logger.level, list(logger.filters), list(logger.handlers), logger.disabled, logger.propagate)
            for name, logger in loggers.items()
        },
        "frozen by the collector": gc.get_freeze_count(),
    }


@pytest.mark.parametrize("socket_mode", [False, True], ids=["http", "socket mode"])
async def test_starting_and_stopping_a_runtime_leaves_the_process_as_it_was(tmp_path: Path, socket_mode: bool) -> None:
    """The second start and stop leave every logger and the collector as they were (the first one lets Bolt
    make its loggers, which copy the level of the one it is given: that logger is left untouched too)."""
    async with FakeSlackWithSockets() as slack, FakePrime() as prime:
        overrides: dict[str, Any] = {"encryption_key": os.urandom(32)}
        if socket_mode:
            overrides |= {"slack_app_token": slack.app_token, "slack_signing_secret": None}
        settings = make_settings(slack, prime, tmp_path, **overrides)

        async def start_and_stop() -> None:
            runtime = await Runtime.start(settings, host="127.0.0.1", tuning=Tuning.fast())
            await runtime.stop()

        await start_and_stop()
        bolt = logging.getLogger("slack_bolt")
        before = process_state()
        await start_and_stop()
        assert process_state() == before
        assert bolt.filters == []  # Bolt would copy a filter onto every logger it makes
