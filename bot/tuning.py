"""Timings and limits that are not operator settings: production defaults, and a fast profile.

The fast profile is how tests (and the offline demo) run the very same loops
without waiting out real backoffs: a built-in mode, not patched sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core import PATIENCE, RetryPolicy

__all__ = ["Tuning"]


@dataclass(frozen=True, slots=True)
class Tuning:
    """How patient the bot is with Slack and Amazon, and how it paces its background work."""

    prime_retry: RetryPolicy = field(default_factory=RetryPolicy)
    slack_retry_interval: float | None = None  # None: slack_sdk's own exponential backoff
    outbox_base_delay: float = 1.0  # Slack failing: first retry after about this (core.backoff), doubling each round
    outbox_max_delay: float = 60.0  # ... at most this: the lag of a thread once Slack is back
    inbox_base_backoff: float = 1.0  # a failing task's events: first retry after this, doubling
    inbox_max_backoff: float = 60.0
    retry_soon: float = 60.0  # a request whose thread or start failed is looked at again after this, doubling
    retry_cap: float = 900.0  # ... up to this
    reconcile_spacing: float = 0.2  # between two polls of Amazon in one reconciler pass (5 per second)
    reconcile_spread: bool = True  # a pass's polls spread over RECONCILE_INTERVAL (never closer than the spacing)
    shutdown_grace: float = 8.0  # a stop takes at most this, in-flight work and Slack calls included (Docker: 10 s)
    usergroup_ttl: float = 60.0  # ALLOWED_USERGROUP's members are read again after this (in the background)
    foreground_patience: float = PATIENCE  # a background item waits at most this for the requests in flight
    # The HTTP server's connections (bot/listener.py). Slack, EventBridge and Prometheus send a request's
    # headers at once; a connection still sending them after this is closed.
    header_timeout: float = 10.0
    body_timeout: float = 30.0  # a POST's body not all there this long after its headers is answered 408
    # An idle connection is closed this long after its last response: longer than the load balancers'
    # usual idle timeout (60 s), so that they, not the bot, close a connection they might reuse.
    idle_timeout: float = 75.0
    max_connections: int = 1000  # open at once; also never more than half the open-file limit (RLIMIT_NOFILE)

    @classmethod
    def fast(cls) -> Tuning:
        """Every wait near zero: for tests and the demo, where the fakes decide what fails."""

        async def no_sleep(_: float) -> None:
            return None

        return cls(
            prime_retry=RetryPolicy(attempts=4, base=0.001, cap=0.01, sleep=no_sleep),
            slack_retry_interval=0.0,
            outbox_base_delay=0.005,
            outbox_max_delay=0.05,
            inbox_base_backoff=0.005,
            inbox_max_backoff=0.05,
            retry_soon=0.0,
            retry_cap=0.0,
            reconcile_spacing=0.0,
            reconcile_spread=False,
            shutdown_grace=2.0,
        )
