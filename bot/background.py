"""Work that runs after Slack has been answered, kept track of so shutdown can wait for it.

asyncio keeps only weak references to tasks: a task nobody holds can vanish
mid-flight. ``Background`` holds each one until it ends, logs what it raised,
and lets shutdown wait a bounded time for what is still running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["Background"]

logger = logging.getLogger(__name__)


class Background:
    """A set of running tasks with a bounded drain."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, coroutine: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any] | None:
        """Run ``coroutine`` in the background; refused (and closed) once shutdown has begun."""
        if self._closed:
            coroutine.close()
            logger.warning("shutting down: %s not started", name)
            return None
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, grace: float) -> int:
        """Stop taking work, wait up to ``grace`` seconds, cancel the rest; return how many were cancelled."""
        self._closed = True
        if not self._tasks:
            return 0
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        return len(pending)
