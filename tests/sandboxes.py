"""One built-in Sandbox served on loopback, with a recording relay and a clock the test sets.

Shared by the sandbox's retrieval tests (test_sandbox.py) and deletion tests
(test_sandbox_deletion.py): both talk to it over HTTP, as the bot's client does.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

from offline.amazon import Sandbox
from prime import START_RETRIEVAL

__all__ = [
    "CANCEL",
    "DELETION",
    "QUERY",
    "RELAY_KEY",
    "START_DELETION",
    "T0",
    "TOKEN",
    "Amazon",
    "Relay",
    "classification",
    "served",
]

QUERY = (
    "query Task($taskId: String!) {personalDataRetrievalTask(taskId: $taskId) "
    "{taskId status submissionDate lastUpdatedDate dataSubject {type email} dataRetrievalLink errors {code message}}}"
)
START_DELETION = (
    "mutation Start($input: StartPersonalDataDeletionTaskInput!) "
    "{startPersonalDataDeletionTask(input: $input) {taskId}}"
)
DELETION = (
    "query Deletion($taskId: String!) {personalDataDeletionTask(taskId: $taskId) "
    "{taskId status submissionDate lastUpdatedDate dataSubject {type email} holdingPeriod errors {code message}}}"
)
CANCEL = "mutation Cancel($taskId: String!) {cancelPersonalDataDeletionTask(taskId: $taskId) {taskId}}"
TOKEN = "c0ffee00-1111-4222-8333-444455556666"  # 36 characters, as a UUID
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
RELAY_KEY = "sandbox-test-relay-key"


@dataclass
class Relay:
    """A stand-in for the bot's relay: records each POST and says so."""

    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def receive(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.json()))
        self.arrived.set()
        return web.json_response({"status": "stored"})

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()


@dataclass
class Amazon:
    """One Sandbox served on loopback, with a clock the test sets (``now``) and a valid access token."""

    http: httpx.AsyncClient
    base: str
    relay: Relay
    now: float = T0
    token: str = ""

    def clock(self) -> float:
        return self.now

    async def graphql(self, query: str, variables: Any = None, *, token: str | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token if token is None else token}", "x-api-version": "2024-11-01"}
        body = {"query": query, "variables": variables or {}}
        return await self.http.post(f"{self.base}/sandbox/graphql", json=body, headers=headers)

    async def answer(self, query: str, variables: Any) -> dict[str, Any]:
        """The JSON body of a 200 answer (GraphQL errors included)."""
        response = await self.graphql(query, variables)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def start(self, email: str, client_token: str = TOKEN) -> dict[str, Any]:
        subject = {"clientToken": {"token": client_token}, "dataSubject": {"type": "SHOPPER", "email": email}}
        return await self.answer(START_RETRIEVAL, {"input": subject})

    async def start_task(self, email: str, client_token: str = TOKEN) -> str:
        return str((await self.start(email, client_token))["data"]["startPersonalDataRetrievalTask"]["taskId"])

    async def task(self, task_id: str) -> dict[str, Any]:
        return await self.answer(QUERY, {"taskId": task_id})

    async def link(self, task_id: str) -> str:
        return str((await self.task(task_id))["data"]["personalDataRetrievalTask"]["dataRetrievalLink"])

    async def start_deletion(
        self, email: str, client_token: str = TOKEN, *, hold: int | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        """``startPersonalDataDeletionTask``; ``hold=None`` leaves holdingPeriod out (Amazon's default)."""
        subject: dict[str, Any] = {
            "clientToken": {"token": client_token},
            "dataSubject": {"type": "SHOPPER", "email": email},
        }
        if hold is not None:
            subject["holdingPeriod"] = hold
        if reason is not None:
            subject["reason"] = reason
        return await self.answer(START_DELETION, {"input": subject})

    async def deletion_id(self, email: str, client_token: str = TOKEN, *, hold: int | None = None) -> str:
        body = await self.start_deletion(email, client_token, hold=hold)
        return str(body["data"]["startPersonalDataDeletionTask"]["taskId"])

    async def deletion(self, task_id: str) -> dict[str, Any]:
        """``personalDataDeletionTask``'s whole answer."""
        return await self.answer(DELETION, {"taskId": task_id})

    async def deletion_status(self, task_id: str) -> str:
        return str((await self.deletion(task_id))["data"]["personalDataDeletionTask"]["status"])

    async def cancel(self, task_id: str) -> dict[str, Any]:
        return await self.answer(CANCEL, {"taskId": task_id})


def _loopback() -> tuple[socket.socket, str]:
    """A socket bound to a port the OS picks on 127.0.0.1, and its base URL."""
    sock = socket.create_server(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@asynccontextmanager
async def served(
    *, complete_after: float = 10.0, hold_seconds: float = 60.0, start: float = T0
) -> AsyncIterator[Amazon]:
    """A Sandbox and a recording relay, each on its own loopback port; the clock starts at ``start``."""
    (relay_sock, relay_base), (sock, base) = _loopback(), _loopback()
    runners: list[web.AppRunner] = []
    async with httpx.AsyncClient(timeout=10) as http:
        amazon = Amazon(http, base, Relay(), now=start)
        sandbox = Sandbox(
            complete_after=complete_after,
            hold_seconds=hold_seconds,
            public_url=base,
            relay_url=f"{relay_base}/buy-with-prime/events",
            relay_key=RELAY_KEY,
            http=http,
            clock=amazon.clock,
        )
        relay_app, app = web.Application(), web.Application()
        relay_app.router.add_post("/buy-with-prime/events", amazon.relay.receive)
        app.router.add_routes(sandbox.routes())
        try:
            for served_app, bound in ((relay_app, relay_sock), (app, sock)):
                runners.append(web.AppRunner(served_app, access_log=None))
                await runners[-1].setup()
                await web.SockSite(runners[-1], bound).start()
            issued = await http.post(f"{base}/sandbox/token", data={"grant_type": "client_credentials"})
            amazon.token = issued.json()["access_token"]
            yield amazon
        finally:
            await sandbox.close()
            for runner in reversed(runners):
                await runner.cleanup()


def classification(body: dict[str, Any]) -> dict[str, Any]:
    """The first GraphQL error's ``extensions.classification``."""
    return dict(body["errors"][0]["extensions"]["classification"])
