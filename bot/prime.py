"""The Buy with Prime API client: OAuth token, GraphQL documents, retries, typed results.

One ``httpx.AsyncClient`` for every call. User input only ever travels in
GraphQL variables. Errors come out as the ``PrimeError`` tree: ``PrimeUnavailable``
after bounded retries of throttling, 429, 5xx, timeouts and network errors;
``PrimeRejected`` at once for validation, access and not-found errors.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.errors import PrimeError, PrimeRejected, PrimeUnavailable
from bot.metrics import Metrics
from bot.redaction import Redactor, redact
from bot.retry import RetryPolicy
from store.records import TaskError

__all__ = ["START_RETRIEVAL", "TASK_QUERY", "PrimeClient", "TaskState", "scrub"]

logger = logging.getLogger(__name__)

START_RETRIEVAL = """
mutation StartPersonalDataRetrieval($input: StartPersonalDataRetrievalTaskInput!) {
  startPersonalDataRetrievalTask(input: $input) {
    taskId
  }
}
""".strip()

TASK_QUERY = """
query PersonalDataRetrievalTask($taskId: String!) {
  personalDataRetrievalTask(taskId: $taskId) {
    taskId
    status
    submissionDate
    lastUpdatedDate
    dataRetrievalLink
    errors {
      code
      message
    }
  }
}
""".strip()

_RETRYABLE_TYPES = frozenset({"ThrottlingError", "InternalServerError", "ServiceUnavailableError"})
_TOKEN_MARGIN = 60.0  # refresh this many seconds before the token expires
_LINK_LIFETIME = 60.0  # Amazon: each pre-signed link works for 60 seconds


@dataclass(frozen=True, slots=True)
class TaskState:
    """A retrieval task as Amazon reports it at one moment. ``link`` is never stored or logged."""

    task_id: str
    status: str
    submitted: str
    updated: str
    errors: tuple[TaskError, ...] = ()
    link: str | None = field(default=None, repr=False)
    link_expires_at: float | None = None


class PrimeClient:
    """Calls Buy with Prime on behalf of the bot; safe to share between any number of tasks."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        api_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        target_id: str,
        api_version: str,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        redactor: Redactor = redact,
        metrics: Metrics | None = None,
    ) -> None:
        self._http = http
        self._api_url = api_url
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._target_id = target_id
        self._api_version = api_version
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._redactor = redactor
        self._metrics = metrics
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = asyncio.Lock()

    async def start_retrieval(self, *, email: str, client_token: str) -> str:
        """Start (or, with a token used before, find again) the retrieval task; return its id."""
        subject = {"type": "SHOPPER", "email": email}
        data = await self._call(
            START_RETRIEVAL, {"input": {"clientToken": {"token": client_token}, "dataSubject": subject}}
        )
        started = data.get("startPersonalDataRetrievalTask") or {}
        task_id = started.get("taskId")
        if not isinstance(task_id, str) or not task_id:
            raise PrimeUnavailable("Buy with Prime answered the start without a task id", kind="EmptyResponse")
        return task_id

    async def retrieval_task(self, task_id: str) -> TaskState:
        """The task's current state; a completed task comes with a new 60-second link."""
        asked_at = self._clock()
        data = await self._call(TASK_QUERY, {"taskId": task_id})
        task = data.get("personalDataRetrievalTask")
        if not isinstance(task, dict):
            raise PrimeRejected(f"Buy with Prime knows no task {task_id}", kind="ResourceNotFoundError")
        link = task.get("dataRetrievalLink") or None
        return TaskState(
            task_id=str(task.get("taskId") or task_id),
            status=str(task.get("status") or ""),
            submitted=str(task.get("submissionDate") or ""),
            updated=str(task.get("lastUpdatedDate") or ""),
            errors=tuple(
                TaskError(code=e.get("code"), message=scrub(str(e.get("message") or "")))
                for e in task.get("errors") or ()
                if isinstance(e, dict)
            ),
            link=link,
            link_expires_at=asked_at + _LINK_LIFETIME if link else None,
        )

    async def check_access(self) -> None:
        """Obtain a token: proves the credentials, without touching any shopper's data."""
        await self._access_token(force=True)

    # ----------------------------------------------------------------- internals

    async def _call(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        """POST one GraphQL document, retrying what may succeed on a second try."""
        delays = self._retry.delays()
        while True:
            try:
                return await self._call_once(document, variables)
            except PrimeUnavailable as error:
                delay = next(delays, None)
                if delay is None:
                    raise
                wait = max(delay, error.retry_after)
                logger.info("Buy with Prime unavailable (%s); retrying in %.2f s", error.kind, wait)
                await self._retry.sleep(wait)

    async def _call_once(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        token = await self._access_token()
        with self._observed(_operation(document)):
            return await self._post_document(token, document, variables)

    @contextmanager
    def _observed(self, operation: str) -> Iterator[None]:
        """Count one HTTP call to Amazon and time it, for /metrics: ok, throttled, unavailable or refused."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            yield
        except PrimeUnavailable as error:
            outcome = "throttled" if error.kind in ("ThrottlingError", "HTTP 429") else "unavailable"
            raise
        except PrimeRejected:
            outcome = "refused"
            raise
        finally:
            if self._metrics is not None:
                self._metrics.observe_amazon(operation, outcome, time.perf_counter() - started)

    async def _post_document(self, token: str, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.post(
                self._api_url,
                json={"query": document, "variables": variables},
                headers={
                    "Authorization": f"Bearer {token}",
                    "x-api-target-id": self._target_id,
                    "x-api-version": self._api_version,
                },
            )
        except httpx.TimeoutException as error:
            raise PrimeUnavailable("Buy with Prime did not answer in time", kind="Timeout") from error
        except httpx.TransportError as error:
            raise PrimeUnavailable("Buy with Prime could not be reached", kind=type(error).__name__) from error
        if response.status_code == 401:
            if self._token == token:  # expired or revoked early; a newer token from another call stays
                self._token = None
            raise PrimeUnavailable("Buy with Prime refused the access token", kind="HTTP 401")
        body = _json(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            raise _graphql_error(errors, response)
        if response.status_code == 429 or response.status_code >= 500:
            raise _unavailable(f"Buy with Prime answered HTTP {response.status_code}", response)
        if response.status_code >= 400 or not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise PrimeRejected(
                f"Buy with Prime answered HTTP {response.status_code} without data", kind=f"HTTP {response.status_code}"
            )
        data: dict[str, Any] = body["data"]
        return data

    async def _access_token(self, *, force: bool = False) -> str:
        """A cached OAuth token, refreshed before it expires; concurrent callers share one refresh."""
        if not force and self._token and self._clock() < self._token_expires_at - _TOKEN_MARGIN:
            return self._token
        async with self._token_lock:
            if not force and self._token and self._clock() < self._token_expires_at - _TOKEN_MARGIN:
                return self._token
            with self._observed("token"):
                self._token, self._token_expires_at = await self._fetch_token()
            return self._token

    async def _fetch_token(self) -> tuple[str, float]:
        try:
            response = await self._http.post(
                self._token_url,
                data={"grant_type": "client_credentials"},
                auth=(self._client_id, self._client_secret),
            )
        except httpx.TimeoutException as error:
            raise PrimeUnavailable("the token endpoint did not answer in time", kind="Timeout") from error
        except httpx.TransportError as error:
            raise PrimeUnavailable(
                "the Buy with Prime token endpoint could not be reached", kind=type(error).__name__
            ) from error
        if response.status_code in (400, 401, 403):
            raise PrimeRejected(
                "Buy with Prime refused the API credentials: check BWP_CLIENT_ID and BWP_CLIENT_SECRET",
                kind=f"HTTP {response.status_code}",
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise _unavailable(f"the Buy with Prime token endpoint answered HTTP {response.status_code}", response)
        body = _json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise PrimeUnavailable("the Buy with Prime token endpoint answered without a token", kind="EmptyResponse")
        self._redactor.add_secret(token)
        try:
            lifetime = float(body.get("expires_in", 900))
        except (TypeError, ValueError):
            lifetime = 900.0
        return token, self._clock() + lifetime


# ``@`` plain or percent-encoded (``bob%40shop.example``, as a URL or form body would carry it).
_EMAIL_IN_TEXT = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*?(?:@|%40)([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


_OPERATION = re.compile(r"\{\s*(\w+)")


def _operation(document: str) -> str:
    """The GraphQL field a document asks for (``startPersonalDataRetrievalTask``): a fixed name, safe as a label."""
    found = _OPERATION.search(document)
    return found.group(1) if found else "graphql"


def scrub(text: str) -> str:
    """Mask any email address in Amazon's words: they are stored, and shown in the request's thread."""
    return _EMAIL_IN_TEXT.sub(r"\1***@\2", text)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(response: httpx.Response) -> float:
    """Seconds Amazon asked us to wait (Retry-After as seconds or an HTTP date); 0 when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return 0.0
    return max(0.0, min(seconds, 60.0)) if seconds == seconds else 0.0  # NaN: unreadable


def _unavailable(message: str, response: httpx.Response) -> PrimeUnavailable:
    return PrimeUnavailable(message, kind=f"HTTP {response.status_code}", retry_after=_retry_after(response))


def _graphql_error(errors: Any, response: httpx.Response) -> PrimeError:
    """Turn Amazon's ``errors[]`` into the error a caller can act on, by ``classification.type``."""
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    classification = (first.get("extensions") or {}).get("classification") or {}
    kind = str(classification.get("type") or "")
    code = classification.get("errorCode")
    message = scrub(str(first.get("message") or "unknown error"))
    text = f"Buy with Prime: {message}" + (f" ({kind})" if kind else "")
    retryable = kind in _RETRYABLE_TYPES or (
        not kind and (response.status_code == 429 or response.status_code >= 500 or code in (429, 500, 502, 503))
    )
    if retryable:
        return PrimeUnavailable(text, kind=kind or f"HTTP {response.status_code}", retry_after=_retry_after(response))
    return PrimeRejected(text, kind=kind or f"HTTP {response.status_code}")
