"""Socket Mode's connection to Slack, kept up by the bot rather than waited on at start.

slack_sdk's client, left to itself, blocks start-up until Slack answers and
retries forever with a traceback at each failure (every ~12 s while Slack is
unreachable). Here the connection is a worker: the HTTP side serves at once,
each failed attempt is one log line saying how long until the next (capped
backoff), and ``SocketModeState`` says whether the socket is up, for
``/readyz`` and ``/metrics``. Each envelope Slack sends is counted in ``foreground`` until it is
acknowledged, as the HTTP routes count theirs: background work gives way to it (core/_foreground.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from core import Foreground, backoff
from handlers.slack_errors import slack_error_code

__all__ = ["SDK_LOGGER", "OneLinePerAttempt", "SocketModeLink", "SocketModeState"]

logger = logging.getLogger(__name__)

SDK_LOGGER = "slack_sdk.socket_mode.bot"  # the logger the link hands slack_sdk's Socket Mode client


@dataclass
class SocketModeState:
    """Whether the Socket Mode connection is up, since when, and how many attempts in a row have failed."""

    connected: bool = False
    since: float | None = None  # when it last went up or down; None before the first attempt ends
    failed_attempts: int = 0
    last_error: str = ""

    def as_readiness(self, now: float) -> dict[str, object]:
        """The JSON ``/readyz`` shows (no personal data: a state, a count and an error's name)."""
        return {
            "connected": self.connected,
            "seconds_in_state": round(now - self.since, 3) if self.since is not None else None,
            "failed_attempts": self.failed_attempts,
            "last_error": self.last_error or None,
        }


class OneLinePerAttempt(logging.Filter):
    """A handler filter: slack_sdk logs each failed connect with its traceback; the link says it in one line.

    slack_sdk's other warnings stay (without a traceback); its lines about connecting are kept for DEBUG.
    ``configure_logging`` puts it on the log handler once; ``level`` is LOG_LEVEL's.
    """

    _SAID_BY_THE_LINK = ("Failed to connect", "Failed to retrieve WSS URL")

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != SDK_LOGGER:
            return True
        record.exc_info = None
        record.exc_text = None
        if self.level <= logging.DEBUG:
            return True
        return record.levelno >= logging.WARNING and not str(record.msg).startswith(self._SAID_BY_THE_LINK)


class _CountedHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, each envelope counted in flight until its acknowledgement is sent."""

    def __init__(self, bolt: AsyncApp, app_token: str, *, foreground: Foreground) -> None:
        self._foreground = foreground
        super().__init__(bolt, app_token, logger=logging.getLogger(SDK_LOGGER))

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        with self._foreground.serving():
            await super().handle(client, req)


class SocketModeLink:
    """Connects the Bolt app over Socket Mode and reconnects it whenever it drops, until cancelled."""

    def __init__(
        self,
        bolt: AsyncApp,
        app_token: str,
        *,
        state: SocketModeState,
        first_wait: float = 1.0,
        max_wait: float = 60.0,
        check_every: float = 5.0,
        connect_timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
        foreground: Foreground | None = None,
    ) -> None:
        self.handler = _CountedHandler(bolt, app_token, foreground=foreground or Foreground())
        # The link reconnects, with its own pace and words; the client's own reconnecting would race it.
        self.handler.client.default_auto_reconnect_enabled = False
        self.handler.client.auto_reconnect_enabled = False
        self.state = state
        self._first_wait = first_wait
        self._max_wait = max_wait
        self._check_every = check_every
        self._connect_timeout = connect_timeout
        self._clock = clock

    async def run(self) -> None:
        """Keep the connection up: one line per failed attempt, with the wait before the next."""
        while True:
            if await self.handler.client.is_connected():
                await asyncio.sleep(self._check_every)
                continue
            if self.state.connected:
                self._went(connected=False)
                logger.warning("Socket Mode: the connection to Slack dropped; reconnecting")
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.state.failed_attempts += 1
                self.state.last_error = _describe(error)
                if self.state.since is None:
                    self.state.since = self._clock()
                wait = backoff(self.state.failed_attempts - 1, base=self._first_wait, cap=self._max_wait)
                logger.warning(
                    "Socket Mode: cannot connect to Slack (%s, attempt %d); next attempt in %.0f s",
                    self.state.last_error,
                    self.state.failed_attempts,
                    wait,
                )
                await asyncio.sleep(wait)
                continue
            self._went(connected=True)
            logger.info("Socket Mode: connected to Slack")

    async def _connect_once(self) -> None:
        client = self.handler.client
        async with asyncio.timeout(self._connect_timeout):
            # A fresh URL each time (they are single-use and expire), then one WebSocket handshake:
            # on failure the client's connect() would loop on its own; the timeout ends it.
            client.wss_uri = await client.issue_new_wss_url()
            await client.connect()  # type: ignore[no-untyped-call]

    def _went(self, *, connected: bool) -> None:
        self.state.connected = connected
        self.state.since = self._clock()
        if connected:
            self.state.failed_attempts = 0
            self.state.last_error = ""

    async def close(self) -> None:
        """Close the socket and the client's resources (after cancelling ``run``)."""
        await self.handler.close_async()  # type: ignore[no-untyped-call]


def _describe(error: BaseException) -> str:
    if isinstance(error, SlackApiError):
        return f"Slack answered {slack_error_code(error)}"
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return type(error).__name__
