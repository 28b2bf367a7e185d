"""A fake Buy with Prime API (OAuth token endpoint and GraphQL), served for real on loopback.

Every document the bot sends is parsed and validated against the project's copy
of ``privacy.graphql`` with graphql-core, and user input must arrive in
``variables``; anything else is recorded in ``invalid`` and answered 400, so a
test that passes has sent documents Amazon's schema accepts.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from graphql import (
    DocumentNode,
    GraphQLError,
    StringValueNode,
    Visitor,
    build_schema,
    execute_sync,
    get_operation_ast,
    parse,
    validate,
    visit,
)

from .privacy import (
    CANCEL,
    DELETION_QUERY,
    ERROR_TYPES,
    QUERY,
    START,
    START_DELETION,
    Task,
    TaskBook,
    amazon_error,
)
from .slack import LoopbackServer

__all__ = ["ERROR_TYPES", "SCHEMA", "SCHEMA_PATH", "FakePrime", "Task", "amazon_error"]

SCHEMA_PATH = Path(__file__).parent.parent.parent / "prime" / "privacy.graphql"  # the project's one copy
SCHEMA = build_schema(SCHEMA_PATH.read_text())

_STARTS = (START, START_DELETION)
_QUERIES = (QUERY, DELETION_QUERY)

# injected mode -> (error type, message) for failures answered as GraphQL errors
_GRAPHQL_FAILURES = {
    "throttle": ("ThrottlingError", "Rate exceeded"),
    "internal": ("InternalServerError", "Internal server error"),
    "validation": ("ValidationError", "Input request is not valid"),
    "denied": ("AccessDeniedError", "Access denied"),
    "not-found": ("ResourceNotFoundError", "Task not found"),
}


class _Literals(Visitor):
    """Collect string literals: shopper emails and task ids belong in variables."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def enter_string_value(self, node: StringValueNode, *_: object) -> None:
        self.found.append(node.value)


class FakePrime(LoopbackServer, TaskBook):
    """Buy with Prime's ``/token`` and ``/graphql``, with state (``TaskBook``) and failure knobs.

    ``fail_next`` maps an operation ("startPersonalDataRetrievalTask", "personalDataRetrievalTask",
    "startPersonalDataDeletionTask", "personalDataDeletionTask", "cancelPersonalDataDeletionTask")
    or "token" to modes consumed in order: "500", "502", "503", "429" (HTTP
    status), "throttle", "internal", "validation", "denied", "not-found" (GraphQL errors, nothing done),
    "timeout" (answer held until ``release()`` or the client gives up) and
    "task-then-500" (the operation takes effect, then the answer is a 500).
    ``start_gate``: an unset Event holds every start answer (either kind) after the task exists.
    Any other three-digit mode answers that HTTP status; "html" answers 200 with a gateway's HTML page;
    a dict mode is sent as the JSON answer itself (an answer of the wrong shape). ``odd_tasks`` maps a
    task id to the JSON answer every query for it (either kind) gets. ``clock`` measures the clientToken's 8 hours.
    """

    def __init__(
        self,
        client_id: str = "bwp-client",
        client_secret: str = "bwp-secret",
        target_id: str = "amzn1.bp.test",
        *,
        token_ttl: int = 900,
        clock: Callable[[], float] = time.time,
    ) -> None:
        LoopbackServer.__init__(self)
        TaskBook.__init__(self, clock=clock)
        self.client_id = client_id
        self.client_secret = client_secret
        self.target_id = target_id
        self.token_ttl = token_ttl
        self.token_requests = 0
        self.requests: list[dict[str, Any]] = []
        self.invalid: list[str] = []
        self.fail_next: dict[str, list[Any]] = {}
        self.odd_tasks: dict[str, dict[str, Any]] = {}
        self.start_gate: asyncio.Event | None = None
        self.holding = 0
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self._release = asyncio.Event()

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/graphql", self._graphql)
        return app

    @property
    def api_url(self) -> str:
        """Return the GraphQL endpoint URL."""
        return f"{self.base_url}/graphql"

    @property
    def token_url(self) -> str:
        """Return the OAuth token endpoint URL."""
        return f"{self.base_url}/token"

    async def stop(self) -> None:
        """Release held answers, then stop serving."""
        self.release()
        if self.start_gate is not None:
            self.start_gate.set()
        await super().stop()

    # ------------------------------------------------------------------ state
    def expire_tokens(self) -> None:
        """Expire every access token issued so far, as 15 minutes passing would."""
        self._tokens = dict.fromkeys(self._tokens, 0.0)

    def release(self) -> None:
        """Let every answer held by a "timeout" failure go."""
        self._release.set()
        self._release = asyncio.Event()

    def starts(self) -> list[dict[str, Any]]:
        """Return the recorded start mutations, in order."""
        return [r for r in self.requests if r["operation"] == START]

    def queries(self) -> list[dict[str, Any]]:
        """Return the recorded retrieval task queries, in order."""
        return [r for r in self.requests if r["operation"] == QUERY]

    def deletion_starts(self) -> list[dict[str, Any]]:
        """Return the recorded deletion start mutations, in order."""
        return [r for r in self.requests if r["operation"] == START_DELETION]

    def deletion_queries(self) -> list[dict[str, Any]]:
        """Return the recorded deletion task queries, in order."""
        return [r for r in self.requests if r["operation"] == DELETION_QUERY]

    def cancels(self) -> list[dict[str, Any]]:
        """Return the recorded cancel mutations, in order."""
        return [r for r in self.requests if r["operation"] == CANCEL]

    def _describe(self) -> str:
        lines = [f"  {r['operation']} -> {r.get('status')} {r.get('failure') or ''}" for r in self.requests[-20:]]
        lines += [f"  invalid: {reason}" for reason in self.invalid[-5:]]
        tasks = [(t.kind, t.task_id, t.status, "cancelled" if t.cancelled else "") for t in self.tasks.values()]
        lines.append(f"  tasks: {tasks}, holding: {self.holding}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ serving
    async def _hold(self, gate: asyncio.Event) -> None:
        self.holding += 1
        await self._notify()
        try:
            await gate.wait()
        finally:
            self.holding -= 1

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        await self._notify()
        if mode := _pop(self.fail_next, "token"):
            if mode == "timeout":
                await self._hold(self._release)
            elif mode == "html":
                return web.Response(text="<html><body>Gateway: please sign in</body></html>", content_type="text/html")
            elif mode.isdigit():
                return web.json_response({"error": "server_error"}, status=int(mode))
        form = await request.post()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            return web.json_response({"error": "invalid_client"}, status=401)
        token = f"tok-{secrets.token_hex(16)}"
        self._tokens[token] = time.monotonic() + self.token_ttl
        return web.json_response({"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl})

    async def _graphql(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if self._tokens.get(token, 0.0) <= time.monotonic():
            return web.json_response({"message": "Unauthorized"}, status=401)
        if request.headers.get("x-api-target-id") != self.target_id or not request.headers.get("x-api-version"):
            error = amazon_error("AccessDeniedError", "x-api-target-id or x-api-version missing or wrong")
            return web.json_response({"data": None, "errors": [error]})
        try:
            body = await request.json()
            query, variables = body["query"], body.get("variables") or {}
            document, field_name = self._check(query, body.get("operationName"))
        except (ValueError, KeyError, TypeError, GraphQLError) as exc:
            reason = exc.message if isinstance(exc, GraphQLError) else f"malformed request body: {exc!r}"
            return await self._invalid(reason)
        entry: dict[str, Any] = {"query": query, "variables": variables, "operation": field_name}
        entry["operation_name"] = body.get("operationName")
        entry["failure"] = mode = _pop(self.fail_next, field_name)
        if mode is None and field_name in _QUERIES and variables.get("taskId") in self.odd_tasks:
            entry["failure"] = mode = self.odd_tasks[variables["taskId"]]
        self.requests.append(entry)
        if isinstance(mode, dict) or mode == "html":
            entry["status"] = 200
            await self._notify()
            if mode == "html":
                return web.Response(text="<html><body>Gateway: please sign in</body></html>", content_type="text/html")
            return web.json_response(mode)
        status, answer = await self._respond(document, variables, body.get("operationName"), field_name, mode)
        entry["status"] = status
        await self._notify()
        if isinstance(answer, str):
            return await self._invalid(answer)
        return web.json_response(answer, status=status)

    def _check(self, query: str, operation_name: str | None) -> tuple[DocumentNode, str]:
        """Parse and validate a document; raise GraphQLError saying why it is not acceptable."""
        document = parse(query)
        if problems := validate(SCHEMA, document):
            raise GraphQLError("; ".join(p.message for p in problems))
        literals = _Literals()
        visit(document, literals)
        if literals.found:
            raise GraphQLError(f"string literals in the document (pass them as variables): {literals.found}")
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            raise GraphQLError("no operation to run (several in the document and no operationName?)")
        return document, operation.selection_set.selections[0].name.value  # type: ignore[attr-defined]

    async def _invalid(self, reason: str) -> web.Response:
        self.invalid.append(reason)
        await self._notify()
        return web.json_response({"errors": [amazon_error("ValidationError", reason)]}, status=400)

    async def _respond(
        self, document: DocumentNode, variables: dict[str, Any], operation_name: str | None, name: str, mode: str | None
    ) -> tuple[int, dict[str, Any] | str]:
        """Answer one valid request, applying the injected failure mode if any."""
        if mode in ("500", "502", "503", "429"):
            return int(mode), {"message": "Too Many Requests" if mode == "429" else "Internal Server Error"}
        if isinstance(mode, str) and mode.isdigit():
            return int(mode), {"message": "Forbidden" if mode == "403" else "Not Found"}
        if mode == "throttle":
            return 200, {"data": None, "errors": [amazon_error("ThrottlingError", "Rate exceeded", [name])]}
        if mode in _GRAPHQL_FAILURES:
            kind, message = _GRAPHQL_FAILURES[mode]
            return 200, {"data": {name: None}, "errors": [amazon_error(kind, message, [name])]}
        result = execute_sync(
            SCHEMA, document, self.resolvers(), variable_values=variables, operation_name=operation_name
        )
        if result.errors and result.data is None and all(e.path is None for e in result.errors):
            return 400, "; ".join(e.message for e in result.errors)  # bad variables: a request error
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [{**e.formatted, "path": e.path} for e in result.errors]
        if mode == "task-then-500":
            return 500, {"message": "Internal Server Error"}
        if mode == "timeout":
            await self._hold(self._release)
        if name in _STARTS and self.start_gate is not None:
            await self._hold(self.start_gate)
        return 200, answer


def _pop(queues: dict[str, list[Any]], key: str) -> Any:
    queue = queues.get(key)
    return queue.pop(0) if queue else None
