"""Work that runs after Slack has been answered, kept track of so shutdown can wait for it.

asyncio keeps only weak references to tasks: a task nobody holds can vanish
mid-flight. ``Background`` holds each one until it ends, logs what it raised,
and lets shutdown wait a bounded time for what is still running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from core._errors import StoreUnavailable

__all__ = ["Background", "Wakeup", "supervise"]

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
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        if isinstance(error, StoreUnavailable):  # said once per episode where writes are watched (store/_database.py)
            logger.warning("background task %s stopped: %s", task.get_name(), error)
        else:
            logger.error("background task %s failed", task.get_name(), exc_info=error)

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


class Wakeup:
    """A worker's doorbell: ``ring()`` from anywhere, ``wait(at_most)`` in the worker's loop."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def ring(self) -> None:
        self._event.set()

    async def wait(self, at_most: float) -> None:
        """Return when rung (since the last wait) or after ``at_most`` seconds, whichever is first."""
        try:
            async with asyncio.timeout(at_most):
                await self._event.wait()
        except TimeoutError:
            pass
        finally:
            self._event.clear()


async def supervise(
    name: str, run: Callable[[], Awaitable[None]], *, pause: float = 1.0, max_pause: float = 60.0
) -> None:
    """Run a worker loop forever: an unexpected error is logged and the loop starts again after a pause.

    The pause doubles while the loop keeps failing (up to ``max_pause``), so a loop that fails at
    once never spins; a loop that ran for longer than ``max_pause`` before failing starts over at ``pause``.
    """
    wait = pause
    loop = asyncio.get_running_loop()
    while True:
        began = loop.time()
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except StoreUnavailable as error:  # said once per episode where writes are watched (store/_database.py)
            logger.debug("worker %s: %s; restarting in %.0f s", name, error, pause)
            await asyncio.sleep(pause)
        except Exception:
            if loop.time() - began > max_pause:
                wait = pause
            logger.exception("worker %s failed; restarting in %.0f s", name, wait)
            await asyncio.sleep(wait)
            wait = min(max_pause, wait * 2)
