"""Bounded exponential backoff, the one rule every retry in the bot waits by.

``backoff`` says how long after n failures in a row (a request, an event, an
outbox round, a Socket Mode connection, an Amazon call); ``RetryPolicy`` repeats
a call by it, with the sleep injected so tests run the same loop without
waiting out real delays.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

__all__ = ["RetryPolicy", "Sleep", "backoff"]

Sleep = Callable[[float], Awaitable[None]]


def backoff(failures: int, *, base: float, cap: float) -> float:
    """The wait after ``failures`` failures in a row of one item: doubling from ``base``, capped, jittered.

    Each failing item (a request, an event) waits on its own schedule, so one that keeps failing
    never holds back the others, and never comes round faster than ``base``.
    """
    return min(cap, base * 2.0 ** min(max(failures, 0), 30) * random.uniform(1.0, 1.5))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry: ``attempts`` calls in all, waits capped at ``cap`` seconds."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 8.0
    sleep: Sleep = asyncio.sleep

    def delays(self) -> Iterator[float]:
        """The wait before each retry (``backoff`` after that many failures)."""
        for attempt in range(self.attempts - 1):
            yield backoff(attempt, base=self.base, cap=self.cap)
