"""The bot's clients of the outside world, built from the settings: Slack's Web API and Buy with Prime.

With ``--sandbox``, Buy with Prime is the sandbox on the bot's own server: ``with_sandbox`` builds it and
points the settings at it before the clients are built, so the clients never know the difference.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
import httpx
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import (
    BackoffRetryIntervalCalculator,
    FixedValueRetryIntervalCalculator,
)
from slack_sdk.http_retry.interval_calculator import RetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.settings import Settings
from bot.slackmetrics import MeteredWebClient
from bot.slackretry import UntilStopping
from bot.tuning import Tuning
from core import Outages, RetryPolicy
from prime import PrimeClient

if TYPE_CHECKING:  # imported by with_sandbox: graphql-core costs a running bot 4.9 MB of RSS, for --sandbox alone
    from offline.amazon import Sandbox

__all__ = ["Clients", "build_prime_client", "build_slack_client", "open_clients", "with_sandbox"]

logger = logging.getLogger(__name__)


def build_slack_client(
    settings: Settings,
    *,
    retry_interval: float | None = None,
    session: aiohttp.ClientSession | None = None,
    metrics: Metrics | None = None,
    stopping: asyncio.Event | None = None,
) -> AsyncWebClient:
    """Slack's Web API client, with slack_sdk's retries for 429, 5xx and connection errors.

    Pass a ``session`` to reuse connections: without one, slack_sdk opens a new one per call.
    With ``metrics``, every call is counted by method and outcome. Once ``stopping`` is set, a failing
    call is not retried (bot/slackretry.py).
    """
    interval: RetryIntervalCalculator = BackoffRetryIntervalCalculator()
    if retry_interval is not None:
        interval = FixedValueRetryIntervalCalculator(retry_interval)
    retries: list[AsyncRetryHandler] = [
        AsyncRateLimitErrorRetryHandler(max_retry_count=2),
        AsyncServerErrorRetryHandler(max_retry_count=2, interval_calculator=interval),
        AsyncConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=interval),
    ]
    if stopping is not None:
        retries = [UntilStopping(handler, stopping=stopping) for handler in retries]
    client = MeteredWebClient(
        metrics=metrics,
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        session=session,
        timeout=10,
        logger=logging.getLogger("slack_sdk.web.async_client"),
        retry_handlers=retries,
    )
    host = urlsplit(settings.slack_api_url).hostname or ""
    if host in ("127.0.0.1", "::1", "localhost") or urllib.request.proxy_bypass(host):
        client.proxy = None  # slack_sdk takes HTTPS_PROXY from the environment but ignores NO_PROXY
    return client


def build_prime_client(
    settings: Settings,
    *,
    http: httpx.AsyncClient,
    retry: RetryPolicy | None = None,
    clock: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
    outages: Outages | None = None,
    on_secret: Callable[[str], None],
) -> PrimeClient:
    """The Buy with Prime client for these settings (the sandbox's URLs when --sandbox rewired them).

    ``on_secret`` is told each access token as it arrives: the log redactor's ``add_secret``.
    """
    return PrimeClient(
        http=http,
        api_url=settings.bwp_api_url,
        token_url=settings.bwp_token_url,
        client_id=settings.bwp_client_id,
        client_secret=settings.bwp_client_secret,
        target_id=settings.bwp_target_id,
        api_version=settings.bwp_api_version,
        retry=retry,
        clock=clock,
        metrics=metrics,
        outages=outages,
        on_secret=on_secret,
    )


@dataclass
class Clients:
    """The connections the bot holds open while it runs, closed together at the end."""

    http: httpx.AsyncClient  # Buy with Prime's
    slack: AsyncWebClient
    slack_session: aiohttp.ClientSession
    prime: PrimeClient
    sandbox_http: httpx.AsyncClient  # the sandbox's, to post its events to the relay
    sandbox: Sandbox | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # set: Slack's failed calls are not retried

    def stop_retrying(self) -> None:
        """The bot is stopping: a failing Slack call fails now, instead of after slack_sdk's retries."""
        self.stopping.set()

    async def close(self) -> None:
        """Close every connection (the sandbox's routes stop with the web server)."""
        await self.http.aclose()
        await self.slack_session.close()
        await self.sandbox_http.aclose()


def open_clients(
    settings: Settings,
    *,
    tuning: Tuning,
    clock: Callable[[], float],
    metrics: Metrics,
    outages: Outages,
    on_secret: Callable[[str], None],
    sandbox_http: httpx.AsyncClient,
    sandbox: Sandbox | None,
) -> Clients:
    """Slack's client on one reused session, and the Buy with Prime client; both counted in ``metrics``."""
    http = httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
    # One session for every Slack call: a session per call opens a connection (and, to slack.com, a TLS
    # handshake) each time (benchmarks/README.md, "one_session").
    slack_session = aiohttp.ClientSession()
    stopping = asyncio.Event()
    slack = build_slack_client(
        settings, retry_interval=tuning.slack_retry_interval, session=slack_session, metrics=metrics, stopping=stopping
    )
    prime = build_prime_client(
        settings,
        http=http,
        retry=tuning.prime_retry,
        clock=clock,
        metrics=metrics,
        outages=outages,
        on_secret=on_secret,
    )
    return Clients(
        http=http,
        slack=slack,
        slack_session=slack_session,
        prime=prime,
        sandbox_http=sandbox_http,
        sandbox=sandbox,
        stopping=stopping,
    )


def with_sandbox(
    settings: Settings,
    *,
    port: int,
    http: httpx.AsyncClient,
    clock: Callable[[], float],
    on_secret: Callable[[str], None],
) -> tuple[Settings, Sandbox]:
    """Point the Buy with Prime client at the built-in sandbox on this server, and give the relay a key."""
    from offline.amazon import Sandbox  # only with --sandbox (see the import above)

    relay_key = settings.relay_api_key or secrets.token_urlsafe(32)
    on_secret(relay_key)
    local = f"http://127.0.0.1:{port}"
    sandbox = Sandbox(
        complete_after=settings.sandbox_complete_after,
        hold_seconds=settings.sandbox_hold_seconds,
        public_url=settings.public_url or f"http://localhost:{port}",
        relay_url=f"{local}/buy-with-prime/events",
        relay_key=relay_key,
        http=http,
        clock=clock,
    )
    settings = replace(
        settings,
        bwp_api_url=f"{local}/sandbox/graphql",
        bwp_token_url=f"{local}/sandbox/token",
        bwp_client_id=settings.bwp_client_id or "sandbox",
        bwp_client_secret=settings.bwp_client_secret or "sandbox",
        bwp_target_id=settings.bwp_target_id or "amzn1.bp.sandbox",
        relay_api_key=relay_key,
    )
    logger.warning(
        "SANDBOX: Buy with Prime is simulated on this server; tasks end after %g s "
        "(emails starting 'notfound' or 'openorders' fail). No real shopper data is involved.",
        settings.sandbox_complete_after,
    )
    return settings, sandbox
