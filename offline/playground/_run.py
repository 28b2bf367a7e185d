"""``data-request-bot playground``: the real bot on the sandbox, and a Slack channel in the browser.

The bot runs as ``demo`` runs it (the wiring's ``start_bot``, on loopback, the sandbox for
Amazon) against the playground's Slack, which also serves the page at ``/`` on ``PORT``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import socket
import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

import httpx

from offline.demo import StartBot
from offline.playground._page import Page
from offline.playground._slack import PlaygroundSlack
from offline.slack_requests import SlackSender

__all__ = ["ALLOWED", "PEOPLE", "run_playground"]

PEOPLE = {"U0ALICE": "Alice", "U0BOB": "Bob", "U0CAROL": "Carol"}
ALLOWED = ("U0ALICE", "U0BOB")  # Carol is not on the allow-list: what a refusal looks like
COMPLETE_AFTER = "5"  # seconds the sandbox's tasks take, unless SANDBOX_COMPLETE_AFTER says
# The bot's own settings the playground passes on when they are set; the rest it chooses.
PASSED_ON = (
    "IDENTITY_VERIFICATION",
    "DELETION_HOLD_DAYS",
    "RESPONSE_DEADLINE_DAYS",
    "RECONCILE_INTERVAL",
    "RETENTION_DAYS",
    "SANDBOX_COMPLETE_AFTER",
    "SANDBOX_HOLD_SECONDS",
    "LOG_LEVEL",
    "LOG_FORMAT",
)


async def run_playground(
    env: Mapping[str, str], *, out: TextIO, start_bot: StartBot, stop: asyncio.Event, listening: socket.socket
) -> int:
    """Serve the playground on ``listening`` (a socket bound to PORT on loopback) until ``stop`` is set."""
    token = "xoxb-playground-" + secrets.token_hex(8)
    signing_secret = secrets.token_hex(16)
    slack = PlaygroundSlack(token, listening=listening, people=PEOPLE)
    page = Page(slack)
    slack.page_routes = page.routes()
    with ExitStack() as cleanup:
        database = env.get("DATABASE_PATH")
        settings = {name: env[name] for name in PASSED_ON if env.get(name)}
        if database:
            settings["DATABASE_PATH"] = database
            if env.get("ENCRYPTION_KEY"):
                settings["ENCRYPTION_KEY"] = env["ENCRYPTION_KEY"]
        else:
            workdir = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="data-request-playground-"))
            settings["DATABASE_PATH"] = str(Path(workdir) / "playground.db")
            settings["ENCRYPTION_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
        await slack.start()
        try:
            bot_env = {
                "LOG_LEVEL": "WARNING",
                "SANDBOX_COMPLETE_AFTER": COMPLETE_AFTER,
                **settings,
                "SLACK_BOT_TOKEN": token,
                "SLACK_SIGNING_SECRET": signing_secret,
                "SLACK_API_URL": slack.api_url,
                "ALLOWED_USERS": ",".join(ALLOWED),
                "PORT": "0",
            }
            runtime = await start_bot(bot_env)
            try:
                async with httpx.AsyncClient(timeout=30) as http:
                    url = f"http://127.0.0.1:{runtime.port}/slack/events"
                    page.sender = SlackSender(http, url=url, signing_secret=signing_secret)
                    where = slack.base_url.replace("127.0.0.1", "localhost")
                    print(
                        f"Playground: {where}/  (the real bot on the Buy with Prime sandbox; Ctrl-C stops it)",
                        file=out,
                        flush=True,
                    )
                    await stop.wait()
            finally:
                await runtime.stop()
        finally:
            await slack.stop()
    return 0
