"""The HTTP face of the bot: Slack's requests, Amazon's relayed events, and health.

What the relay does with an event (the key, the event's shape, ignore or store, and
what to answer) is decided by ``handlers.relay.accept``; the route is its transport:
404 while no RELAY_API_KEY is set, EventBridge's size limit (413, counted as the body
arrives, never after reading it all), and the JSON answer.

``/data-request`` itself is answered without Bolt's dispatch (bot/slash.py) when it is signed by Slack;
everything else Slack sends, refusals included, goes through Bolt.

A body that has not all arrived ``body_timeout`` seconds after its headers is answered 408,
on both POST routes: a sender that stops halfway holds a connection no longer than that.

Both POST routes are what someone waits on: each request is counted in ``foreground`` while it is
answered, and background work gives way to it (core/_foreground.py). Health and metrics are not.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.metrics import CONTENT_TYPE, Metrics
from bot.slash import SlashCommand
from bot.socket_link import SocketModeState
from core import Foreground, Outages, RelayRejected
from handlers.kinds import KindFlow
from handlers.relay import WrongKeys, accept
from store import Leadership, Store

__all__ = ["RELAY_MAX_BYTES", "build_web_app"]

logger = logging.getLogger(__name__)

RELAY_MAX_BYTES = 256 * 1024  # EventBridge's own limit on one event
SLACK_MAX_BYTES = 1024 * 1024
_SLACK_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Slack sends whole Unix seconds
_TOO_SLOW = "the body did not arrive in time"


def build_web_app(
    *,
    store: Store,
    bolt: AsyncApp | None,
    relay_api_key: str | None,
    on_event: Callable[[], None],
    metrics: Metrics | None = None,
    outages: Outages | None = None,
    socket_state: SocketModeState | None = None,
    leadership: Leadership | None = None,
    body_timeout: float,
    kinds: Mapping[str, KindFlow],
    slash: SlashCommand | None = None,
    foreground: Foreground | None = None,
) -> web.Application:
    """Routes: ``POST /slack/events`` (HTTP mode only), ``POST /buy-with-prime/events``, ``GET /healthz``,
    ``GET /readyz`` (the inbox and outbox backlog, and what is failing, for alarms) and ``GET /metrics``
    (Prometheus).

    ``/readyz`` answers 503 while an outage someone must fix goes on (``outages``): Slack refusing
    the bot's token, Buy with Prime refusing its credentials. Work is kept meanwhile, not lost. ``leadership``
    says whether this copy leads (``data_request_bot_leader``: with several copies on PostgreSQL, one of them).
    ``foreground`` counts the Slack and relay requests being answered.
    """
    metrics = metrics or Metrics()
    foreground = foreground or Foreground()
    wrong_keys = WrongKeys()
    app = web.Application(client_max_size=SLACK_MAX_BYTES)

    async def healthz(_: web.Request) -> web.Response:
        if not await store.ping():
            return web.json_response({"ok": False, "database": "unreachable"}, status=503)
        return web.json_response({"ok": True})

    async def readyz(_: web.Request) -> web.Response:
        try:
            backlog = await store.backlog()
        except Exception:  # the database is unreachable: that is the answer
            logger.exception("readiness: the database did not answer")
            return web.json_response({"ok": False, "database": "unreachable"}, status=503)
        writes = store.writes
        failing = outages.snapshot() if outages is not None else []
        ok = not writes.failing and not failing
        body: dict[str, object] = {
            "ok": ok,
            **backlog,
            "database_writes_failing": writes.failing,
            "failing": failing,
        }
        if writes.failing:
            body["database_write_error"] = writes.last_error
        if socket_state is not None:  # Socket Mode: no connection, no command from Slack arrives
            body["slack_socket_mode"] = socket_state.as_readiness(time.time())
            ok = ok and socket_state.connected
            body["ok"] = ok
        return web.json_response(body, status=200 if ok else 503)

    async def metrics_route(_: web.Request) -> web.Response:
        try:
            backlog = await store.backlog()
            counts = await store.cases.counts()
        except Exception:  # the database is unreachable: say so rather than export stale numbers
            logger.exception("metrics: the database did not answer")
            return web.json_response({"ok": False, "database": "unreachable"}, status=503)
        body = metrics.render(
            cases=counts.by_status,
            open_cases=counts.open,
            overdue_cases=counts.overdue,
            backlog=backlog,
            writes_failing=store.writes.failing,
            wal_bytes=store.checkpoints.wal_bytes(),
            checkpoints_failing=store.checkpoints.failing,
            outages=outages.keys() if outages is not None else (),
            socket_connected=None if socket_state is None else socket_state.connected,
            leading=leadership is None or leadership.leading,
        )
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def slack_events(request: web.Request) -> web.StreamResponse:
        assert bolt is not None
        stamp = request.headers.get("X-Slack-Request-Timestamp")
        if stamp is not None and not _SLACK_TIMESTAMP.fullmatch(stamp):
            # slack_sdk's verifier calls int() on it and raises; a signature over it cannot be Slack's anyway.
            logger.info("slack: refused a request whose timestamp is not whole seconds")
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            async with asyncio.timeout(body_timeout):
                body = await request.text()
        except UnicodeDecodeError:
            return web.json_response({"error": "the body could not be read"}, status=400)
        except TimeoutError:
            late = web.json_response({"error": _TOO_SLOW}, status=408)
            late.force_close()  # the rest of the body is not waited for
            return late
        if slash is not None:
            fields = slash.fields(body, content_type=request.content_type, headers=request.headers)
            if fields is not None:
                return await to_aiohttp_response(await slash.answer(fields))
        bolt_request = await to_bolt_request(request)  # the body read above, kept by aiohttp
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    async def relay(request: web.Request) -> web.Response:
        if relay_api_key is None:
            raise web.HTTPNotFound()
        answer = await accept(
            inbox=store.inbox,
            api_key=relay_api_key,
            headers=request.headers,
            read_body=lambda: _read_limited(request, RELAY_MAX_BYTES, within=body_timeout),
            on_stored=on_event,
            counters=metrics,
            wrong_keys=wrong_keys,
            kinds=kinds,
        )
        response = web.json_response(answer.body, status=answer.status)
        if answer.status == 408:
            response.force_close()  # the rest of the body is not waited for
        return response

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_route)
    app.router.add_post("/buy-with-prime/events", _waited_on(relay, foreground))
    if bolt is not None:
        app.router.add_post("/slack/events", _waited_on(slack_events, foreground))
    return app


def _waited_on(
    route: Callable[[web.Request], Awaitable[web.StreamResponse]], foreground: Foreground
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The route, its requests counted in flight from their headers to their answer."""

    async def counted(request: web.Request) -> web.StreamResponse:
        with foreground.serving():
            return await route(request)

    return counted


async def _read_limited(request: web.Request, limit: int, *, within: float) -> bytes:
    """The body, RelayRejected(413) as soon as it is known to exceed ``limit``, or (408) when it takes over
    ``within`` seconds."""
    if request.content_length is not None and request.content_length > limit:
        raise RelayRejected(413, f"the body is larger than {limit} bytes")
    if request.content.is_eof():  # it came with the headers, as an event nearly always does: no waiting, no timer
        body = request.content.read_nowait()
        if len(body) > limit:
            raise RelayRejected(413, f"the body is larger than {limit} bytes")
        return body
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(within):
            async for chunk in request.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise RelayRejected(413, f"the body is larger than {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise RelayRejected(408, _TOO_SLOW) from None
    return b"".join(chunks)
