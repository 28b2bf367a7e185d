"""Buy with Prime's token and GraphQL endpoints, served over the one model of Amazon's tasks.

``serve --sandbox`` mounts it under ``/sandbox`` on the bot's own server; the
tests' fake (``tests/fakes/prime.py``) serves it on a loopback port of its own
and adds failure injection and recording. It answers as Amazon's API does where
the bot relies on it: client credentials (when given) for a bearer token that
lasts ``token_ttl`` seconds; ``x-api-version`` (and ``x-api-target-id``, when
given) on every call; documents validated against the privacy schema and
executed by graphql-core (the tasks' rules live in ``offline/amazon_tasks.py``);
each retrieval query issues a new link that downloads a sample zip for 60
seconds; and, with a relay, each task's end is POSTed to it with the relay key,
as an EventBridge API destination would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import logging
import math
import secrets
import time
import uuid
import zipfile
from collections.abc import Callable
from importlib import resources
from typing import Any

import httpx
from aiohttp import web
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    build_schema,
    execute_sync,
    get_operation_ast,
    parse,
    validate,
)

from offline.amazon_tasks import PrivacyTasks, Task, amazon_error, stamp
from prime import LINK_LIFETIME

__all__ = ["SCHEMA", "Sandbox", "sample_zip"]

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


def _why(error: Exception) -> str:
    if isinstance(error, GraphQLError):
        return error.message
    if isinstance(error, RecursionError):
        return "malformed request body: nested too deeply"
    return f"malformed request body: {error!r}"


class Sandbox(PrivacyTasks):
    """Stand-in for Buy with Prime's token and GraphQL endpoints (and its links' downloads), under ``prefix``.

    ``client_id``/``client_secret`` and ``target_id`` left None accept any (the sandbox: nothing to configure).
    """

    def __init__(
        self,
        *,
        complete_after: float = math.inf,
        hold_seconds: float = math.inf,
        clock: Callable[[], float] = time.time,
        public_url: str = "",
        prefix: str = "/sandbox",
        relay_url: str | None = None,
        relay_key: str = "",
        http: httpx.AsyncClient | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        target_id: str | None = None,
        token_ttl: int = 900,
    ) -> None:
        super().__init__(complete_after=complete_after, hold_seconds=hold_seconds, clock=clock)
        self.client_id, self.client_secret, self.target_id, self.token_ttl = (
            client_id,
            client_secret,
            target_id,
            token_ttl,
        )
        self.prefix = prefix
        self._public_url = public_url.rstrip("/")
        self._relay_url, self._relay_key, self._http = relay_url, relay_key, http
        self._secret = secrets.token_bytes(32)
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self._deliveries: set[asyncio.Task[None]] = set()
        self._zip = sample_zip()

    @property
    def public_url(self) -> str:
        """Where the links point (the host a browser reaches this server at)."""
        return self._public_url

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{self.prefix}/token", self._token),
            web.post(f"{self.prefix}/graphql", self._graphql),
            web.get(f"{self.prefix}/download/{{task_id}}/data_retrieval.zip", self._download),
        ]

    async def close(self) -> None:
        """Stop delivering events."""
        for task in self._deliveries:
            task.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)

    # ----------------------------------------------------------------- endpoints

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                client_id = client_secret = None
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if self.client_id is not None and (client_id, client_secret) != (self.client_id, self.client_secret):
            return web.json_response({"error": "invalid_client"}, status=401)
        now = time.monotonic()
        self._tokens = {token: expiry for token, expiry in self._tokens.items() if expiry > now}
        token = "tok-" + secrets.token_urlsafe(24)
        self._tokens[token] = now + self.token_ttl
        return web.json_response({"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl})

    async def _graphql(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if self._tokens.get(token, 0.0) <= time.monotonic():
            return web.json_response({"message": "Unauthorized"}, status=401)
        target = request.headers.get("x-api-target-id")
        if not request.headers.get("x-api-version") or self.target_id not in (None, target):
            denied = amazon_error("AccessDeniedError", "x-api-target-id or x-api-version missing or wrong")
            return web.json_response({"data": None, "errors": [denied]})
        try:
            body = await request.json()
            query, variables, operation_name = body["query"], body.get("variables") or {}, body.get("operationName")
            if not isinstance(query, str) or not isinstance(variables, dict):
                raise TypeError("query must be a string and variables an object")
            document, field_name = self._check(query, operation_name)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError, GraphQLError) as error:
            return await self._invalid(_why(error))
        return await self._answer(document, variables, operation_name, field_name)

    async def _download(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        issued = request.query.get("X-Amz-Date", "")
        nonce = request.query.get("X-Amz-Nonce", "")
        signature = request.query.get("X-Amz-Signature", "").encode("utf-8", "surrogateescape")
        valid = issued.isascii() and issued.isdigit()
        if not valid or not hmac.compare_digest(signature, self._sign(task_id, int(issued), nonce).encode()):
            return web.Response(status=403, text="SignatureDoesNotMatch", content_type="application/xml")
        if self.clock() > int(issued) / 1000 + LINK_LIFETIME:
            return web.Response(status=403, text="Request has expired", content_type="application/xml")
        return web.Response(
            body=self._zip,
            content_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="data_retrieval.zip"'},
        )

    # ----------------------------------------------------------------- GraphQL, step by step (a subclass adds to each)

    def _check(self, query: str, operation_name: str | None) -> tuple[DocumentNode, str]:
        """Parse and validate a document; its operation's field name. Raise GraphQLError saying why not."""
        document = parse(query)
        if problems := validate(SCHEMA, document):
            raise GraphQLError("; ".join(p.message for p in problems))
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            raise GraphQLError("no operation to run (several in the document and no operationName?)")
        selection = operation.selection_set.selections[0]
        if not isinstance(selection, FieldNode):
            raise GraphQLError("the operation must select its field directly")
        return document, selection.name.value

    async def _invalid(self, reason: str) -> web.Response:
        """A request GraphQL cannot run: 400, saying why."""
        return web.json_response({"errors": [amazon_error("ValidationError", reason)]}, status=400)

    async def _answer(
        self, document: DocumentNode, variables: dict[str, Any], operation_name: str | None, field_name: str
    ) -> web.Response:
        """Run a valid document against the tasks."""
        status, answer = self._execute(document, variables, operation_name)
        if isinstance(answer, str):
            return await self._invalid(answer)
        return web.json_response(answer, status=status)

    def _execute(
        self, document: DocumentNode, variables: dict[str, Any], operation_name: str | None
    ) -> tuple[int, dict[str, Any] | str]:
        """The HTTP status and answer; a string when the variables do not fit the document (a request error)."""
        result = execute_sync(
            SCHEMA, document, self.resolvers(), variable_values=variables, operation_name=operation_name
        )
        if result.errors and result.data is None and all(e.path is None for e in result.errors):
            return 400, "; ".join(e.message for e in result.errors)
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [{**e.formatted, "path": e.path} for e in result.errors]
        return 200, answer

    # ----------------------------------------------------------------- links and events

    def _sign(self, task_id: str, issued_ms: int, nonce: str) -> str:
        return hmac.new(self._secret, f"{task_id}:{issued_ms}:{nonce}".encode(), hashlib.sha256).hexdigest()

    def _link(self, task_id: str, now: float) -> str:
        """A new link per query (the nonce), valid 60 s from this very moment (milliseconds)."""
        issued, nonce = int(now * 1000), secrets.token_hex(4)
        return (
            f"{self.public_url}{self.prefix}/download/{task_id}/data_retrieval.zip?X-Amz-Date={issued}"
            f"&X-Amz-Expires={LINK_LIFETIME:.0f}&X-Amz-Nonce={nonce}"
            f"&X-Amz-Signature={self._sign(task_id, issued, nonce)}"
        )

    def _started(self, task: Task) -> None:
        """With a relay, the new task's event goes out when the clock ends it."""
        if self._relay_url is None or self._http is None or not math.isfinite(task.ends):
            return
        delivery = asyncio.get_running_loop().create_task(self._deliver(task, task.ends - task.submitted))
        self._deliveries.add(delivery)
        delivery.add_done_callback(self._deliveries.discard)

    async def _deliver(self, task: Task, after: float) -> None:
        """When the task ends, POST its event to the relay, retrying as EventBridge does (briefly).

        A deletion cancelled during its hold ends with no event.
        """
        assert self._relay_url is not None and self._http is not None
        await asyncio.sleep(after)
        if task.cancelled:
            return
        kind = task.kind.capitalize()
        envelope = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": f"PERSONAL_DATA_{kind.upper()}_TASK_{task.ended}",
            "source": "aws.partner/buywithprime/sandbox",
            "account": "000000000000",
            "time": stamp(self.clock()),
            "region": "us-east-1",
            "resources": [f"businessProduct/amzn1.bp.sandbox/personalData{kind}Task/{task.task_id}"],
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
                    logger.warning("sandbox: the relay refused the event for %s (%s)", task.task_id, status)
                    return  # like EventBridge: only 429 and 5xx are retried
            except httpx.HTTPError:
                pass
            await asyncio.sleep(min(30.0, 0.5 * 2**attempt))
        logger.warning("sandbox: could not deliver the event for task %s; the reconciler will find it", task.task_id)
