"""The baseline for ``benchmarks/run.py``: a bare Bolt ``AsyncApp`` whose command listener only acks.

Served by aiohttp the way the bot serves Bolt (``to_bolt_request`` /
``async_dispatch`` / ``to_aiohttp_response`` on ``POST /slack/events``), with
the same signing verification and the same Web API client set-up, so the
difference between the two is what the bot does before and around ``ack()``.

Configured like the bot: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_API_URL,
PORT, LOG_LEVEL. Runs until SIGTERM or SIGINT. Not part of the bot.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def build_app() -> web.Application:
    client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"], timeout=10)
    bolt = AsyncApp(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"])

    @bolt.command("/data-request")
    async def on_command(ack: Any) -> None:
        await ack()

    async def slack_events(request: web.Request) -> web.StreamResponse:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    return app


async def serve() -> None:
    runner = web.AppRunner(build_app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(os.environ.get("PORT", "3000"))).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"))
    asyncio.run(serve())
