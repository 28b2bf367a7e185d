"""The HTTP listener: PORT bound, and the connections on it held to a cap and to deadlines.

A connection that sends half a request and stops is kept by aiohttp as long as its client keeps it
open, and each holds a file descriptor. Once the process has none left (RLIMIT_NOFILE; systemd's
default is 1024), nothing is accepted any more, /healthz included, and asyncio logs every failed
accept with a traceback, many times a second. So:

- a connection must send its first request's headers within ``header_timeout`` seconds of connecting,
  or it is closed; after a response, aiohttp closes it when no whole request follows within
  ``idle_timeout`` (its ``keepalive_timeout``); a body that stops halfway is the routes' (bot/server.py);
- at most ``limit`` connections are open (half the descriptors, so the database and the calls to Slack
  and Amazon keep the other half). One more closes the oldest connection still sending its headers,
  or, when every open one is past its headers, is itself refused;
- connections waiting in the listening socket's queue are taken a few at a time (``accept_burst``): asyncio
  accepts a whole queue's worth (``backlog``) before the cap sees any, so a queue filled while the process
  was busy or paused would otherwise hold a descriptor each on top of the cap's;
- a failed accept (descriptors exhausted all the same) is one line when it begins and one when
  connections are accepted again: asyncio's traceback per attempt is not written.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import resource
import socket
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web

from bot.tuning import Tuning
from core import ConfigError

__all__ = ["accept_burst", "bind", "connection_limit", "serve_http"]

logger = logging.getLogger(__name__)

_HEADERS_END = re.compile(rb"\n\r?\n")  # the empty line that ends a request's headers
_ACCEPT_FAILED = "socket.accept() out of system resource"  # asyncio's message, with the listening socket
# asyncio tries a failed accept again after a second; an episode of failures ends at the first connection
# accepted this long after the last failure, so that it does not end and begin again between two tries.
_ACCEPTS_QUIET = 3.0


def bind(host: str, port: int) -> socket.socket:
    """The listening socket on ``port``; ConfigError naming PORT when it cannot be had."""
    try:
        return socket.create_server((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            problem = f"PORT: port {port} is in use by another process: stop that process, or set PORT to a free port"
        elif error.errno == errno.EACCES:
            problem = f"PORT: port {port} needs privileges this user does not have: set PORT to 1024 or above"
        else:
            problem = f"PORT: cannot listen on port {port} ({error.strerror or error}): set PORT to a free port"
        raise ConfigError(problem) from error


def connection_limit(ceiling: int) -> int:
    """How many connections may be open at once: half the file descriptors the process may hold, at most ``ceiling``."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return ceiling
    return max(1, min(ceiling, soft // 2))


def accept_burst(limit: int) -> int:
    """How many queued connections one wake of the listener accepts: a quarter of the cap, at most asyncio's 100.

    It is also the listening socket's queue (``listen(backlog)``): connections beyond it wait in the kernel."""
    return max(1, min(100, limit // 4))


async def serve_http(app: web.Application, sock: socket.socket, *, tuning: Tuning) -> web.AppRunner:
    """Serve ``app`` on the bound ``sock`` through the door; the runner's ``cleanup()`` closes the listener too."""
    loop = asyncio.get_running_loop()
    runner = web.AppRunner(
        app, access_log=None, shutdown_timeout=3.0, handle_signals=False, keepalive_timeout=tuning.idle_timeout
    )
    door = _Door(limit=connection_limit(tuning.max_connections), header_timeout=tuning.header_timeout, sock=sock)
    app.on_shutdown.append(door.close)  # before setup(), which freezes the app's signals
    await runner.setup()
    assert runner.server is not None
    await door.open(loop, runner.server)
    return runner


class _Door:
    """Admits connections up to the cap, closes those too slow with their headers, and tells of accept failures."""

    def __init__(self, *, limit: int, header_timeout: float, sock: socket.socket) -> None:
        self.limit = limit
        self.header_timeout = header_timeout
        self._sock = sock
        self._server: web.Server | None = None
        self._listener: asyncio.Server | None = None
        self._open: set[_Connection] = set()
        self._sending_headers: dict[_Connection, None] = {}  # oldest first
        self._made_room = 0  # connections closed or refused for room since the cap was reached; 0 when not
        self._accepts = _AcceptFailures()
        self._previous_handler: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None = None
        self._handler = self._loop_error  # one bound method, to know it again in get_exception_handler()

    async def open(self, loop: asyncio.AbstractEventLoop, server: web.Server) -> None:
        """Start accepting on the socket, with asyncio's accept failures told here."""
        self._server = server
        self._previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._handler)
        self._listener = await loop.create_server(
            lambda: _Connection(self), sock=self._sock, backlog=accept_burst(self.limit)
        )

    async def close(self, _: web.Application) -> None:
        """Stop accepting (the app's shutdown); connections already open are aiohttp's to finish."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        loop = asyncio.get_running_loop()
        if loop.get_exception_handler() is self._handler:
            loop.set_exception_handler(self._previous_handler)

    def admit(self, connection: _Connection) -> asyncio.Protocol | None:
        """aiohttp's protocol for a new connection, or None to refuse it (at the cap, nothing to close for room)."""
        self._accepts.succeeded()
        if self._server is None:
            return None
        if len(self._open) >= self.limit:
            if not self._made_room:
                logger.warning(
                    "HTTP: %d connections are open, the most allowed (half the open-file limit, RLIMIT_NOFILE): "
                    "the oldest still sending their headers are closed to make room, or new ones refused if none is",
                    len(self._open),
                )
            self._made_room += 1
            if not self._sending_headers:
                return None
            oldest = next(iter(self._sending_headers))
            self.gone(oldest)
            oldest.close()
        self._open.add(connection)
        self._sending_headers[connection] = None
        return self._server()

    def sent_headers(self, connection: _Connection) -> None:
        self._sending_headers.pop(connection, None)

    def gone(self, connection: _Connection) -> None:
        self._open.discard(connection)
        self._sending_headers.pop(connection, None)
        if self._made_room and len(self._open) < self.limit // 2:
            logger.info("HTTP: fewer connections again; %d were closed or refused to make room", self._made_room)
            self._made_room = 0

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        listening = context.get("socket")
        ours = listening is not None and self._listener is not None and listening.fileno() == self._sock.fileno()
        if ours and context.get("message") == _ACCEPT_FAILED:
            self._accepts.failed(context.get("exception"))
            return
        if self._previous_handler is not None:
            self._previous_handler(loop, context)
        else:
            loop.default_exception_handler(context)


class _AcceptFailures:
    """Accepts that failed for want of descriptors: one line when they begin, one when they are over."""

    def __init__(self) -> None:
        self._last: float | None = None  # when the last one failed, in this episode; None: no episode

    def failed(self, error: object) -> None:
        if self._last is None:
            logger.error(
                "HTTP: cannot accept connections (%s): /healthz and Slack get no answer until some close; "
                "raise the open-file limit (RLIMIT_NOFILE; LimitNOFILE= under systemd)",
                getattr(error, "strerror", None) or error,
            )
        self._last = asyncio.get_running_loop().time()

    def succeeded(self) -> None:
        if self._last is not None and asyncio.get_running_loop().time() - self._last >= _ACCEPTS_QUIET:
            self._last = None
            logger.info("HTTP: connections are accepted again")


class _Connection(asyncio.Protocol):
    """One connection: aiohttp's protocol inside, the door's deadline for the headers around it."""

    def __init__(self, door: _Door) -> None:
        self._door = door
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes received, for an empty line split across two reads

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._inner = self._door.admit(self)
        if self._inner is None:
            self._transport.abort()
            return
        self._deadline = asyncio.get_running_loop().call_later(self._door.header_timeout, self.close)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._deadline is not None:
            if _HEADERS_END.search(self._tail + data):
                self._deadline.cancel()
                self._deadline = None
                self._door.sent_headers(self)
            else:
                self._tail = (self._tail + data)[-2:]
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._door.gone(self)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def close(self) -> None:
        """Drop the connection now: its headers came too late, or its place is needed."""
        if self._transport is not None:
            self._transport.abort()
