"""Wiring: builds every part from the settings, runs them together, and stops them in order.

``Runtime.start`` is what ``serve`` runs and what the tests start in-process
against their loopback fakes, so both exercise the same assembly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
import socket
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped, warning_token_skipped
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

from bot.logformat import make_raised_records
from bot.metrics import Metrics
from bot.redaction import Redactor
from bot.sandbox import Sandbox
from bot.server import build_web_app
from bot.settings import Settings
from bot.slackmetrics import MeteredWebClient
from bot.socket_link import SocketModeLink, SocketModeState
from bot.tuning import Tuning
from handlers.access import Authorizer
from handlers.cases import HomeTab, Reminders, Retention, handle_close
from handlers.commands import handle_command
from handlers.deps import Deps, Permalinks
from handlers.download import handle_download
from handlers.events import InboxWorker
from handlers.lifecycle import advance, post_abandoned
from handlers.outbox import OutboxSender
from handlers.reconcile import Reconciler
from handlers.texts import CLOSE_ACTION, COMMAND, DOWNLOAD_ACTION
from prime import Background, Outages, PrimeClient, RetryPolicy, Wakeup, supervise
from store import InstanceLock, Store, cannot_open, open_verified, others_can_read, private_folder

__all__ = ["Runtime", "build_prime_client", "build_slack_client"]

logger = logging.getLogger(__name__)


def build_slack_client(
    settings: Settings,
    *,
    retry_interval: float | None = None,
    session: aiohttp.ClientSession | None = None,
    metrics: Metrics | None = None,
) -> AsyncWebClient:
    """Slack's Web API client, with slack_sdk's retries for 429, 5xx and connection errors.

    Pass a ``session`` to reuse connections: without one, slack_sdk opens a new one per call.
    With ``metrics``, every call is counted by method and outcome.
    """
    interval: RetryIntervalCalculator = BackoffRetryIntervalCalculator()
    if retry_interval is not None:
        interval = FixedValueRetryIntervalCalculator(retry_interval)
    client = MeteredWebClient(
        metrics=metrics,
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        session=session,
        timeout=10,
        logger=logging.getLogger("slack_sdk.web.async_client"),
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2, interval_calculator=interval),
            AsyncConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=interval),
        ],
    )
    host = urlsplit(settings.slack_api_url).hostname or ""
    if host in ("127.0.0.1", "::1", "localhost") or urllib.request.proxy_bypass(host):
        client.proxy = None  # slack_sdk takes HTTPS_PROXY from the environment but ignores NO_PROXY
    return client


class _BoltTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns that our client's token wins: true, and not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in (warning_client_prioritized_and_token_skipped(), warning_token_skipped())


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


def _bolt_app(settings: Settings, slack: AsyncWebClient, deps: Deps, home: HomeTab) -> AsyncApp:
    bolt_logger = logging.getLogger("slack_bolt")
    bolt_logger.addFilter(_BoltTokenNotice())

    async def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        # Bolt's default asks auth.test at the first request: with Slack unreachable, that command answered
        # 500 after 2.7 s and was lost. One workspace, one known token: nothing to ask before acknowledging.
        token = settings.slack_bot_token
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=token)

    app = AsyncApp(
        client=slack,
        authorize=authorize,
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=not settings.socket_mode,
        # Listeners return right after ack() (slow work is spawned), so answer when they return: the
        # default instead polls for ack() every 10 ms, which alone would double the ack latency.
        process_before_response=True,
        logger=bolt_logger,
    )
    make_raised_records()

    async def on_command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await handle_command(deps, ack=ack, command=command, respond=respond)

    async def on_download(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await handle_download(deps, ack=ack, body=body, respond=respond)

    async def on_close(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await handle_close(deps, ack=ack, body=body, respond=respond)

    async def on_home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and event.get("user"):
            deps.background.spawn(home.opened(str(event["user"])), name="home opened")

    app.command(COMMAND)(on_command)
    app.action(DOWNLOAD_ACTION)(on_download)
    app.action(CLOSE_ACTION)(on_close)
    app.event("app_home_opened")(on_home_opened)
    return app


@dataclass
class Runtime:
    """Every running part of the bot, so they can be stopped in the right order."""

    settings: Settings
    store: Store
    http: httpx.AsyncClient
    slack: AsyncWebClient
    deps: Deps
    bolt: AsyncApp
    outbox: OutboxSender
    inbox: InboxWorker
    reconciler: Reconciler
    reminders: Reminders
    retention: Retention
    home: HomeTab
    runner: web.AppRunner
    port: int
    socket_mode: SocketModeLink | None = None
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    sandbox: Sandbox | None = None
    sandbox_http: httpx.AsyncClient | None = None
    slack_session: aiohttp.ClientSession | None = None
    outages: Outages = field(default_factory=Outages)  # what is failing now, for /readyz and /metrics
    instance_lock: InstanceLock | None = None

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        host: str = "0.0.0.0",
        clock: Callable[[], float] = time.time,
        tuning: Tuning | None = None,
        redactor: Redactor | None = None,
    ) -> Runtime:
        """Hold the database's lock, open the store, build the clients, start the workers and the HTTP server.

        ``redactor`` is the one the log handlers use (``configure_logging``'s): secrets learned while running
        (Amazon's access tokens, the sandbox's relay key) are added to it. Without one they go to a redactor
        of this runtime's own, which is right only when no log handler redacts at all.
        """
        try:
            private_folder(settings.database_path.parent)
            lock = InstanceLock.acquire(settings.database_path)  # first: a second serve must change nothing
        except OSError as error:
            raise cannot_open(settings.database_path, error) from error
        try:
            runtime = await cls._assemble(
                settings, host=host, clock=clock, tuning=tuning or Tuning(), redactor=redactor or Redactor()
            )
        except BaseException:
            lock.release()
            raise
        runtime.instance_lock = lock
        return runtime

    @classmethod
    async def _assemble(
        cls, settings: Settings, *, host: str, clock: Callable[[], float], tuning: Tuning, redactor: Redactor
    ) -> Runtime:
        # Bind first: the sandbox's URLs (and the port a test asked the OS for) need the real port.
        sock = socket.create_server((host, settings.port))
        port = int(sock.getsockname()[1])
        sandbox_http = httpx.AsyncClient(timeout=10.0)
        sandbox: Sandbox | None = None
        if settings.sandbox:
            settings, sandbox = _with_sandbox(
                settings, port=port, http=sandbox_http, clock=clock, on_secret=redactor.add_secret
            )
        try:
            store = await open_verified(
                settings.database_path, configured=settings.encryption_key, create_key=True, clock=clock
            )
        except BaseException:
            sock.close()
            await sandbox_http.aclose()
            raise
        http = httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
        slack_session = aiohttp.ClientSession()
        metrics = Metrics()
        slack = build_slack_client(
            settings, retry_interval=tuning.slack_retry_interval, session=slack_session, metrics=metrics
        )
        outages = Outages(clock=clock, on_begin=metrics.outage_began)
        prime = build_prime_client(
            settings,
            http=http,
            retry=tuning.prime_retry,
            clock=clock,
            metrics=metrics,
            outages=outages,
            on_secret=redactor.add_secret,
        )
        outbox = OutboxSender(
            store=store,
            slack=slack,
            base_delay=tuning.outbox_base_delay,
            max_delay=tuning.outbox_max_delay,
            clock=clock,
            outages=outages,
        )
        inbox_wakeup = Wakeup()
        authorizer = Authorizer(
            allowed_users=settings.allowed_users,
            usergroup=settings.allowed_usergroup,
            everyone=settings.everyone_allowed,
            slack=slack,
            ttl=tuning.usergroup_ttl,
        )
        background = Background()
        permalinks = Permalinks(slack)
        home = HomeTab(
            store=store, slack=slack, permalinks=permalinks, authorizer=authorizer, background=background, clock=clock
        )
        deps = Deps(
            store=store,
            prime=prime,
            slack=slack,
            authorizer=authorizer,
            background=background,
            reconcile_interval=settings.reconcile_interval,
            retry_soon=tuning.retry_soon,
            retry_cap=tuning.retry_cap,
            deadline_days=settings.response_deadline_days,
            wake_outbox=outbox.wake,
            wake_inbox=inbox_wakeup.ring,
            home_changed=home.changed,
            open_thread=outbox.send_for,
            permalinks=permalinks,
            clock=clock,
            metrics=metrics,
        )
        outbox.on_thread_opened = lambda request_id: background.spawn(advance(deps, request_id), name="thread opened")
        outbox.on_abandoned = lambda entry, code: background.spawn(
            post_abandoned(deps, entry, code), name="post abandoned"
        )
        inbox = InboxWorker(
            deps, wakeup=inbox_wakeup, base_backoff=tuning.inbox_base_backoff, max_backoff=tuning.inbox_max_backoff
        )
        bolt = _bolt_app(settings, slack, deps, home)
        socket_state = SocketModeState() if settings.socket_mode else None
        web_app = build_web_app(
            store=store,
            bolt=None if settings.socket_mode else bolt,
            relay_api_key=settings.relay_api_key,
            on_event=inbox_wakeup.ring,
            pressure=deps.pressure,
            metrics=metrics,
            outages=outages,
            socket_state=socket_state,
        )
        if sandbox is not None:
            web_app.add_routes(sandbox.routes())
        runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=3.0, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        runtime = cls(
            settings=settings,
            store=store,
            http=http,
            slack=slack,
            deps=deps,
            bolt=bolt,
            outbox=outbox,
            inbox=inbox,
            reconciler=Reconciler(deps, interval=settings.reconcile_interval, spacing=tuning.reconcile_spacing),
            reminders=Reminders(deps),
            retention=Retention(deps, retention_days=settings.retention_days),
            home=home,
            runner=runner,
            port=port,
            tuning=tuning,
            sandbox=sandbox,
            sandbox_http=sandbox_http,
            slack_session=slack_session,
            outages=outages,
        )
        workers = {
            "outbox": outbox.run,
            "inbox": inbox.run,
            "reconciler": runtime.reconciler.run,
            "reminders": runtime.reminders.run,
            "retention": runtime.retention.run,
        }
        if settings.allowed_usergroup:
            workers["usergroup"] = authorizer.run  # read before anyone asks, refreshed in the background
        if socket_state is not None and settings.slack_app_token:
            # Connected by a worker, not awaited: HTTP serves at once, whatever Slack is doing.
            runtime.socket_mode = SocketModeLink(bolt, settings.slack_app_token, state=socket_state)
            workers["socket mode"] = runtime.socket_mode.run
        runtime.workers = [asyncio.create_task(supervise(name, run), name=name) for name, run in workers.items()]
        _warn_about(settings)
        # Everything built so far lives as long as the process: keep it out of the collector's way, so
        # a full collection under load scans only what requests create (a pause in the tail otherwise).
        gc.collect()
        gc.freeze()
        logger.info(
            "serving on port %s (%s mode)%s",
            port,
            "Socket" if settings.socket_mode else "HTTP",
            "" if settings.relay_api_key else "; the relay is off (RELAY_API_KEY unset)",
        )
        return runtime

    tuning: Tuning = field(default_factory=Tuning)

    async def stop(self) -> None:
        """Stop taking work, let in-flight work finish (bounded), flush the outbox, close everything."""
        if self.socket_mode is not None:
            for task in self.workers:
                if task.get_name() == "socket mode":
                    task.cancel()
            with contextlib.suppress(Exception):
                await self.socket_mode.close()
        if self.sandbox is not None:
            await self.sandbox.close()
        await self.runner.cleanup()
        cancelled = await self.deps.background.drain(self.tuning.shutdown_grace)
        if cancelled:
            logger.warning("shutdown: %d unfinished jobs parked; they resume at the next start", cancelled)
        for task in self.workers:
            task.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)
        await self.deps.authorizer.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3.0):
                await self.outbox.send_due()  # what in-flight work just queued
        await self.http.aclose()
        if self.slack_session is not None:
            await self.slack_session.close()
        if self.sandbox_http is not None:
            await self.sandbox_http.aclose()
        await self.store.close()
        if self.instance_lock is not None:
            self.instance_lock.release()
        logger.info("stopped")


def _with_sandbox(
    settings: Settings,
    *,
    port: int,
    http: httpx.AsyncClient,
    clock: Callable[[], float],
    on_secret: Callable[[str], None],
) -> tuple[Settings, Sandbox]:
    """Point the Buy with Prime client at the built-in sandbox on this server, and give the relay a key."""
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


def _warn_about(settings: Settings) -> None:
    if settings.everyone_allowed:
        logger.warning(
            "every member of the workspace may request shopper data and download it "
            "(ALLOWED_USERS=*, or --sandbox without ALLOWED_USERS or ALLOWED_USERGROUP)"
        )
    if others_can_read(settings.database_path):
        logger.warning(
            "the database %s can be read by users other than its owner: chmod 600 it (and its -wal and -shm files)",
            settings.database_path,
        )
