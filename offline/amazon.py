"""The built-in Buy with Prime sandbox: Amazon's token and GraphQL endpoints, on the bot's own server.

It answers as Amazon's API does where the bot relies on it: documents are validated
and executed against the privacy schema (graphql-core); the tasks' rules live in
``offline/amazon_tasks.py`` (the 8-hour clientToken window, retrieval tasks
IN_PROGRESS then COMPLETED or FAILED, deletion tasks ON_HOLD for their holding
period, cancellable while on hold, then IN_PROGRESS, then COMPLETED or FAILED);
each retrieval query issues a new link that works for 60 seconds; and when a
task ends its event is POSTed to the bot's relay with the relay key, as an
EventBridge API destination would.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import logging
import secrets
import time
import uuid
import zipfile
from collections.abc import Callable
from importlib import resources
from typing import Any

import httpx
from aiohttp import web
from graphql import GraphQLError, build_schema, graphql, parse, validate

from offline.amazon_tasks import Deletions, Ending, Retrievals, amazon_error
from prime import LINK_LIFETIME

__all__ = ["Sandbox", "sample_zip"]

logger = logging.getLogger(__name__)

SCHEMA = build_schema(resources.files("prime").joinpath("privacy.graphql").read_text())


def sample_zip() -> bytes:
    """A small ``data_retrieval.zip`` shaped like a real one, with made-up data."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "README.txt",
            "Sample personal data retrieval from the data-request bot's Buy with Prime sandbox.\n"
            "Every value in it is made up; a real retrieval comes from Amazon.\n",
        )
        archive.writestr(
            "shopper_profile.json",
            json.dumps({"shopperId": "amzn1.sandbox.shopper.0001", "name": "Sample Shopper", "country": "US"}),
        )
        archive.writestr(
            "orders.csv",
            "orderId,date,item,quantity,total\n"
            "SBX-1001,2026-09-14,Organic cotton t-shirt,2,39.90\n"
            "SBX-1002,2026-10-02,Ceramic pour-over set,1,54.00\n",
        )
    return buffer.getvalue()


class Sandbox:
    """Stand-in for Buy with Prime's token and GraphQL endpoints, mounted under ``/sandbox``."""

    def __init__(
        self,
        *,
        complete_after: float,
        hold_seconds: float,
        public_url: str,
        relay_url: str,
        relay_key: str,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._public_url = public_url.rstrip("/")
        self._relay_url = relay_url
        self._relay_key = relay_key
        self._http = http
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._tokens: set[str] = set()
        self._retrievals = Retrievals(complete_after=complete_after, clock=clock, link=self._link)
        self._deletions = Deletions(hold_seconds=hold_seconds, complete_after=complete_after, clock=clock)
        self._deliveries: set[asyncio.Task[None]] = set()
        self._zip = sample_zip()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/sandbox/token", self._token),
            web.post("/sandbox/graphql", self._graphql),
            web.get("/sandbox/download/{task_id}/data_retrieval.zip", self._download),
        ]

    async def close(self) -> None:
        for task in self._deliveries:
            task.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)

    # ----------------------------------------------------------------- endpoints

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = "sbx-" + secrets.token_urlsafe(24)
        self._tokens.add(token)
        return web.json_response({"access_token": token, "token_type": "bearer", "expires_in": 900})

    async def _graphql(self, request: web.Request) -> web.Response:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or auth[7:] not in self._tokens:
            return web.json_response({"message": "Unauthorized"}, status=401)
        if not request.headers.get("x-api-version"):
            denied = amazon_error("x-api-version is required", "AccessDeniedError")
            return web.json_response({"data": None, "errors": [denied.formatted]})
        try:
            body = await request.json()
            source, variables = str(body.get("query", "")), body.get("variables") or {}
            if not isinstance(variables, dict):
                raise ValueError("variables must be an object")
            problems = validate(SCHEMA, parse(source))
        except (ValueError, AttributeError, RecursionError, GraphQLError) as error:
            message = "nested too deeply" if isinstance(error, RecursionError) else str(error)
            return web.json_response({"errors": [{"message": f"Invalid request: {message}"}]}, status=400)
        if problems:
            return web.json_response({"errors": [p.formatted for p in problems]}, status=400)
        result = await graphql(SCHEMA, source, root_value=self, variable_values=variables)
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        return web.json_response(out)

    async def _download(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        issued = request.query.get("X-Amz-Date", "")
        nonce = request.query.get("X-Amz-Nonce", "")
        signature = request.query.get("X-Amz-Signature", "").encode("utf-8", "surrogateescape")
        valid = issued.isascii() and issued.isdigit()
        if not valid or not hmac.compare_digest(signature, self._sign(task_id, int(issued), nonce).encode()):
            return web.Response(status=403, text="SignatureDoesNotMatch", content_type="application/xml")
        if self._clock() > int(issued) / 1000 + LINK_LIFETIME:
            return web.Response(status=403, text="Request has expired", content_type="application/xml")
        return web.Response(
            body=self._zip,
            content_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="data_retrieval.zip"'},
        )

    # ----------------------------------------------------------------- resolvers (graphql-core calls them by name)

    def startPersonalDataRetrievalTask(self, info: Any, input: dict[str, Any]) -> dict[str, str]:  # noqa: N802
        task_id, ending = self._retrievals.start(input)
        self._schedule(ending)
        return {"taskId": task_id}

    def personalDataRetrievalTask(self, info: Any, taskId: str) -> dict[str, Any]:  # noqa: N802, N803
        return self._retrievals.task(taskId)

    def startPersonalDataDeletionTask(self, info: Any, input: dict[str, Any]) -> dict[str, str]:  # noqa: N802
        task_id, ending = self._deletions.start(input)
        self._schedule(ending)
        return {"taskId": task_id}

    def personalDataDeletionTask(self, info: Any, taskId: str) -> dict[str, Any]:  # noqa: N802, N803
        return self._deletions.task(taskId)

    def cancelPersonalDataDeletionTask(self, info: Any, taskId: str) -> dict[str, str]:  # noqa: N802, N803
        return self._deletions.cancel(taskId)

    # ----------------------------------------------------------------- internals

    def _sign(self, task_id: str, issued_ms: int, nonce: str) -> str:
        return hmac.new(self._secret, f"{task_id}:{issued_ms}:{nonce}".encode(), hashlib.sha256).hexdigest()

    def _link(self, task_id: str, now: float) -> str:
        """A new link per query (the nonce), valid 60 s from this very moment (milliseconds)."""
        issued, nonce = int(now * 1000), secrets.token_hex(4)
        return (
            f"{self._public_url}/sandbox/download/{task_id}/data_retrieval.zip?X-Amz-Date={issued}"
            f"&X-Amz-Expires={LINK_LIFETIME:.0f}&X-Amz-Nonce={nonce}"
            f"&X-Amz-Signature={self._sign(task_id, issued, nonce)}"
        )

    def _schedule(self, ending: Ending | None) -> None:
        """A new task's event goes out when it ends (a clientToken's earlier task has its own already)."""
        if ending is None:
            return
        delivery = asyncio.get_running_loop().create_task(self._deliver(ending))
        self._deliveries.add(delivery)
        delivery.add_done_callback(self._deliveries.discard)

    async def _deliver(self, ending: Ending) -> None:
        """When the task ends, POST its event to the bot's relay, retrying as EventBridge does (briefly).

        A deletion cancelled during its hold ends with no event.
        """
        await asyncio.sleep(ending.after)
        if self._deletions.cancelled(ending.task_id):
            return
        envelope = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": ending.detail_type,
            "source": "aws.partner/buywithprime/sandbox",
            "account": "000000000000",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock())),
            "region": "us-east-1",
            "resources": [f"businessProduct/amzn1.bp.sandbox/{ending.resource}"],
            "detail": {},
        }
        for attempt in range(6):
            try:
                response = await self._http.post(
                    self._relay_url, json=envelope, headers={"x-api-key": self._relay_key}, timeout=5
                )
                if response.status_code < 300:
                    return
                if response.status_code < 500 and response.status_code != 429:
                    status = response.status_code
                    logger.warning("sandbox: the relay refused the event for %s (%s)", ending.task_id, status)
                    return  # like EventBridge: only 429 and 5xx are retried
            except httpx.HTTPError:
                pass
            await asyncio.sleep(min(30.0, 0.5 * 2**attempt))
        logger.warning("sandbox: could not deliver the event for task %s; the reconciler will find it", ending.task_id)
