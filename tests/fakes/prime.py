"""The tests' fake Buy with Prime: the sandbox's Amazon (``offline.amazon``) on a loopback port, plus failure
injection and recording.

Amazon's behaviour (the token endpoint, GraphQL validated against the project's
copy of ``privacy.graphql``, the clientToken window, both kinds, holds, cancel,
links) is the sandbox's, modelled once. On top of it the fake records every
request, refuses user input written into a document instead of ``variables``
(recorded in ``invalid`` and answered 400, so a test that passes has sent
documents Amazon's schema accepts, the way Amazon should be sent them), and
injects failures. Its tasks end only when a test says so (``complete``,
``fail``, ``release_hold``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from graphql import DocumentNode, GraphQLError, StringValueNode, Visitor, visit

from offline.amazon import SCHEMA, Sandbox
from offline.amazon_tasks import (
    CANCEL,
    DELETION_QUERY,
    ERROR_TYPES,
    QUERY,
    START,
    START_DELETION,
    Task,
    amazon_error,
)

from .slack import LoopbackServer

__all__ = ["ERROR_TYPES", "SCHEMA", "FakePrime", "Task", "amazon_error"]

_STARTS = (START, START_DELETION)
_QUERIES = (QUERY, DELETION_QUERY)
_GATEWAY_PAGE = "<html><body>Gateway: please sign in</body></html>"

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


class FakePrime(LoopbackServer, Sandbox):
    """Buy with Prime's ``/token`` and ``/graphql`` (the sandbox's model), with recording and failure knobs.

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
        Sandbox.__init__(
            self,
            clock=clock,
            prefix="",
            client_id=client_id,
            client_secret=client_secret,
            target_id=target_id,
            token_ttl=token_ttl,
        )
        self.token_requests = 0
        self.requests: list[dict[str, Any]] = []
        self.invalid: list[str] = []
        self.links: list[tuple[str, str]] = []  # (task id, link) per link issued
        self.fail_next: dict[str, list[Any]] = {}
        self.odd_tasks: dict[str, dict[str, Any]] = {}
        self.start_gate: asyncio.Event | None = None
        self.holding = 0
        self._release = asyncio.Event()

    def _app(self) -> web.Application:
        app = web.Application()
        app.add_routes(self.routes())
        return app

    @property
    def public_url(self) -> str:
        return self.base_url

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

    # ------------------------------------------------------------------ knobs and records
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

    # ------------------------------------------------------------------ on top of the sandbox's serving
    async def _hold(self, gate: asyncio.Event) -> None:
        self.holding += 1
        await self._notify()
        try:
            await gate.wait()
        finally:
            self.holding -= 1

    def _link(self, task_id: str, now: float) -> str:
        link = super()._link(task_id, now)
        self.links.append((task_id, link))
        return link

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        await self._notify()
        if mode := _pop(self.fail_next, "token"):
            if mode == "timeout":
                await self._hold(self._release)
            elif mode == "html":
                return web.Response(text=_GATEWAY_PAGE, content_type="text/html")
            elif mode.isdigit():
                return web.json_response({"error": "server_error"}, status=int(mode))
        return await super()._token(request)

    def _check(self, query: str, operation_name: str | None) -> tuple[DocumentNode, str]:
        """The sandbox's checks, and no string literals: user input belongs in variables."""
        document, field_name = super()._check(query, operation_name)
        literals = _Literals()
        visit(document, literals)
        if literals.found:
            raise GraphQLError(f"string literals in the document (pass them as variables): {literals.found}")
        return document, field_name

    async def _invalid(self, reason: str) -> web.Response:
        self.invalid.append(reason)
        await self._notify()
        return await super()._invalid(reason)

    async def _answer(
        self, document: DocumentNode, variables: dict[str, Any], operation_name: str | None, field_name: str
    ) -> web.Response:
        entry: dict[str, Any] = {"query": document.loc.source.body if document.loc else "", "variables": variables}
        entry.update(operation=field_name, operation_name=operation_name)
        entry["failure"] = mode = _pop(self.fail_next, field_name)
        if mode is None and field_name in _QUERIES and variables.get("taskId") in self.odd_tasks:
            entry["failure"] = mode = self.odd_tasks[variables["taskId"]]
        self.requests.append(entry)
        if isinstance(mode, dict) or mode == "html":
            entry["status"] = 200
            await self._notify()
            if mode == "html":
                return web.Response(text=_GATEWAY_PAGE, content_type="text/html")
            return web.json_response(mode)
        status, answer = await self._respond(document, variables, operation_name, field_name, mode)
        entry["status"] = status
        await self._notify()
        if isinstance(answer, str):
            return await self._invalid(answer)
        return web.json_response(answer, status=status)

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
        status, answer = self._execute(document, variables, operation_name)
        if isinstance(answer, str):
            return status, answer
        if mode == "task-then-500":
            return 500, {"message": "Internal Server Error"}
        if mode == "timeout":
            await self._hold(self._release)
        if name in _STARTS and self.start_gate is not None:
            await self._hold(self.start_gate)
        return status, answer


def _pop(queues: dict[str, list[Any]], key: str) -> Any:
    queue = queues.get(key)
    return queue.pop(0) if queue else None
