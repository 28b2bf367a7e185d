"""Wiring: builds every part from the settings, runs them together, and stops them in order.

``Runtime.start`` is what ``serve`` runs and what the tests start in-process
against their loopback fakes, so both exercise the same assembly. The parts
come in three groups: the ``Clients`` of Slack and Amazon (bot/clients.py), the
``Workers`` beside the listeners (bot/workers.py), and what is ``Served``: the
web server, the Socket Mode link and the database's instance lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bot.clients import Clients, open_clients, with_sandbox
from bot.listener import bind, serve_http
from bot.logformat import RAISED_FROM
from bot.metrics import Metrics
from bot.redaction import Redactor
from bot.server import build_web_app
from bot.settings import Settings
from bot.slash import SlashCommand
from bot.socket_link import SocketModeLink, SocketModeState
from bot.tuning import Tuning
from bot.workers import Workers, assemble
from core import Background, Foreground, Outages
from handlers.kinds import KindFlow
from handlers.kinds.registry import KINDS
from handlers.register import command_listener, register
from handlers.texts import COMMAND
from store import InstanceLock, Store, cannot_open, open_verified, others_can_read, private_folder

__all__ = ["Runtime", "Served"]

logger = logging.getLogger(__name__)


def _bolt_app(settings: Settings, slack: AsyncWebClient) -> AsyncApp:
    """Bolt, set up for one workspace whose token the bot already has; its listeners come from ``register``.

    Bolt gets a logger and nothing else: which of its lines are written, and at what level, is
    ``configure_logging``'s (bot/redaction.py), set once for the process.
    """

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
        # default instead polls for ack() on a timer (benchmarks/README.md, "process_before_response").
        process_before_response=True,
        logger=logging.getLogger(RAISED_FROM),
    )
    return app


@dataclass
class Served:
    """What faces the outside: the web server, Socket Mode's link to Slack, and the database's lock."""

    runner: web.AppRunner
    socket_mode: SocketModeLink | None = None
    instance_lock: InstanceLock | None = None


@dataclass
class Runtime:
    """Every running part of the bot, so they can be stopped in the right order."""

    settings: Settings
    port: int
    store: Store
    clients: Clients
    workers: Workers
    served: Served
    background: Background  # work spawned after an acknowledgement; drained first at shutdown
    outages: Outages  # what is failing now, for /readyz and /metrics
    tuning: Tuning = field(default_factory=Tuning)
    foreground: Foreground = field(default_factory=Foreground)  # Slack's and Amazon's requests being answered

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        host: str = "0.0.0.0",
        clock: Callable[[], float] = time.time,
        tuning: Tuning | None = None,
        redactor: Redactor | None = None,
        kinds: Mapping[str, KindFlow] = KINDS,
    ) -> Runtime:
        """Hold the database's lock, open the store, build the clients, start the workers and the HTTP server.

        Nothing process-wide changes: logging is the command line's (``configure_logging``), and so is
        freezing what start-up built out of the garbage collector's way (``serve``).

        ``redactor`` is the one the log handlers use (``configure_logging``'s): secrets learned while running
        (Amazon's access tokens, the sandbox's relay key) are added to it. Without one they go to a redactor
        of this runtime's own, which is right only when no log handler redacts at all.

        ``kinds``: the kinds of request this bot runs (a test hands it a registry with a kind of its own).
        """
        lock = None
        if settings.database_url is None:  # PostgreSQL: several copies may serve; SQLite: one
            try:
                private_folder(settings.database_path.parent)
                lock = InstanceLock.acquire(settings.database_path)  # first: a second serve must change nothing
            except OSError as error:
                raise cannot_open(settings.database_path, error) from error
        try:
            runtime = await cls._assemble(
                settings,
                host=host,
                clock=clock,
                tuning=tuning or Tuning(),
                redactor=redactor or Redactor(),
                kinds=kinds,
            )
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        runtime.served.instance_lock = lock
        return runtime

    @classmethod
    async def _assemble(
        cls,
        settings: Settings,
        *,
        host: str,
        clock: Callable[[], float],
        tuning: Tuning,
        redactor: Redactor,
        kinds: Mapping[str, KindFlow],
    ) -> Runtime:
        # Bind first: the sandbox's URLs (and the port a test asked the OS for) need the real port.
        sock = bind(host, settings.port)
        port = int(sock.getsockname()[1])
        sandbox_http = httpx.AsyncClient(timeout=10.0)
        sandbox = None
        if settings.sandbox:
            settings, sandbox = with_sandbox(
                settings, port=port, http=sandbox_http, clock=clock, on_secret=redactor.add_secret
            )
        try:
            store = await open_verified(
                settings.database, configured=settings.encryption_key, create_key=True, clock=clock
            )
            if settings.database_url is None:
                await store.forget_claims()  # the only copy (under the lock): claims left are its earlier run's
        except BaseException:
            sock.close()
            await sandbox_http.aclose()
            raise
        metrics = Metrics(socket_mode=settings.socket_mode)
        outages = Outages(clock=clock, on_begin=metrics.outage_began)
        clients = open_clients(
            settings,
            tuning=tuning,
            clock=clock,
            metrics=metrics,
            outages=outages,
            on_secret=redactor.add_secret,
            sandbox_http=sandbox_http,
            sandbox=sandbox,
        )
        background = Background()
        foreground = Foreground(patience=tuning.foreground_patience)  # what background work gives way to
        desk, workers = assemble(
            settings,
            store=store,
            clients=clients,
            background=background,
            outages=outages,
            counters=metrics,
            tuning=tuning,
            clock=clock,
            kinds=kinds,
            foreground=foreground,
        )
        bolt = _bolt_app(settings, clients.slack)
        register(bolt, desk, home=workers.home)
        socket_state = SocketModeState() if settings.socket_mode else None
        slash = None
        if not settings.socket_mode and settings.slack_signing_secret:
            secret, listener = settings.slack_signing_secret, command_listener(desk)
            slash = SlashCommand(signing_secret=secret, command=COMMAND, listener=listener, slack=clients.slack)
        web_app = build_web_app(
            store=store,
            bolt=None if settings.socket_mode else bolt,
            relay_api_key=settings.relay_api_key,
            on_event=desk.flow.wake_inbox,
            metrics=metrics,
            outages=outages,
            socket_state=socket_state,
            leadership=workers.leadership,
            body_timeout=tuning.body_timeout,
            kinds=desk.flow.kinds,
            slash=slash,
            foreground=foreground,
        )
        if sandbox is not None:
            web_app.add_routes(sandbox.routes())
        served = Served(runner=await serve_http(web_app, sock, tuning=tuning))
        if socket_state is not None and settings.slack_app_token:
            # Connected by a worker, not awaited: HTTP serves at once, whatever Slack is doing.
            served.socket_mode = SocketModeLink(
                bolt, settings.slack_app_token, state=socket_state, foreground=foreground
            )
        workers.start(also={"socket mode": served.socket_mode.run} if served.socket_mode else None)
        _warn_about(settings)
        logger.info(
            "serving on port %s (%s mode)%s",
            port,
            "Socket" if settings.socket_mode else "HTTP",
            "" if settings.relay_api_key else "; the relay is off (RELAY_API_KEY unset)",
        )
        return cls(
            settings=settings,
            port=port,
            store=store,
            clients=clients,
            workers=workers,
            served=served,
            background=background,
            outages=outages,
            tuning=tuning,
            foreground=foreground,
        )

    async def posted(self) -> None:
        """Return once the outbox has sent every post queued so far: the demo prints a step only after it."""
        await self.workers.outbox.drained()

    async def stop(self) -> None:
        """Stop taking work, let in-flight work finish, flush the outbox, close everything.

        Within ``shutdown_grace`` in all, whatever Slack does: from the first moment no failing Slack
        call is retried (what is unsent waits in the outbox for the next start), and Slack calls in
        flight are waited for, not cut off, until the grace ends.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.tuning.shutdown_grace
        self.clients.stop_retrying()
        if self.served.socket_mode is not None:
            self.workers.cancel("socket mode")
            with contextlib.suppress(Exception):
                await self.served.socket_mode.close()
        if self.clients.sandbox is not None:
            await self.clients.sandbox.close()
        await self.served.runner.cleanup()
        cancelled = await self.background.drain(max(0.0, deadline - loop.time()))
        if cancelled:
            logger.warning("shutdown: %d unfinished jobs parked; they resume at the next start", cancelled)
        unanswered = await self.workers.stop(grace=deadline - loop.time())  # and what in-flight work queued goes out
        if unanswered:
            logger.warning(
                "shutdown: %d Slack calls unanswered; the next start looks for their posts first", unanswered
            )
        await self.clients.close()
        await self.store.close()
        if self.served.instance_lock is not None:
            self.served.instance_lock.release()
        logger.info("stopped")


def _warn_about(settings: Settings) -> None:
    if settings.everyone_allowed:
        logger.warning(
            "every member of the workspace may request shopper data and download it "
            "(ALLOWED_USERS=*, or --sandbox without ALLOWED_USERS or ALLOWED_USERGROUP)"
        )
    if not settings.verification_required:
        logger.warning(
            "IDENTITY_VERIFICATION=off: Download and an erasure's Approve do not wait for the shopper's identity "
            "to be recorded as verified"
        )
    if settings.database_url is None and others_can_read(settings.database_path):
        logger.warning(
            "the database %s can be read by users other than its owner: chmod 600 it (and its -wal and -shm files)",
            settings.database_path,
        )
