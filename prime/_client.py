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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import httpx

from core import Outages, PrimeError, PrimeRejected, PrimeUnavailable, RetryPolicy
from prime._answers import (
    UNEXPECTED,
    GraphQLErrorInfo,
    TaskState,
    read_data,
    read_errors,
    read_start,
    read_task,
    read_token,
    unexpected,
)
from prime._kinds import Operations

__all__ = [
    "CREDENTIALS_REFUSED",
    "AmazonCalls",
    "PrimeClient",
    "TaskState",
]

logger = logging.getLogger(__name__)

_RETRYABLE_TYPES = frozenset({"ThrottlingError", "InternalServerError", "ServiceUnavailableError"})
# Amazon's verdicts on the call itself: final, never retried. Anything else is an outage of some kind.
_START_VERDICTS = frozenset({"ValidationError", "ConflictError"})
_QUERY_VERDICTS = frozenset({"ValidationError", "ResourceNotFoundError"})
_CANCEL_VERDICTS = _QUERY_VERDICTS  # too late (ValidationError, CannotCancel…), or no such task
_TOKEN_MARGIN = 60.0  # refresh this many seconds before the token expires
CREDENTIALS_REFUSED = "CredentialsRefused"


class AmazonCalls(Protocol):
    """Where the client reports each call to Amazon (the bot's /metrics)."""

    def observe_amazon(self, operation: str, outcome: str, seconds: float) -> None: ...


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
        on_secret: Callable[[str], None],
        metrics: AmazonCalls | None = None,
        outages: Outages | None = None,
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
        self._on_secret = on_secret
        self._metrics = metrics
        self._outages = outages
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = asyncio.Lock()

    async def start_task(
        self, operations: Operations, *, email: str, client_token: str, extra: Mapping[str, Any] | None = None
    ) -> str:
        """Start (or, with a token used before, find again) a task of this kind; return its id.

        ``extra`` is the kind's own input beside the shopper (a deletion's ``holdingPeriod``, ``reason``).
        """
        subject = {"type": "SHOPPER", "email": email}
        variables = {"input": {"clientToken": {"token": client_token}, "dataSubject": subject, **(extra or {})}}
        data = await self._call(operations.start_document, variables, verdicts=_START_VERDICTS)
        return read_start(data, field_name=operations.start_field)

    async def task(self, operations: Operations, task_id: str) -> TaskState:
        """The task's current state; a completed retrieval comes with a new link (``LINK_LIFETIME``)."""
        asked_at = self._clock()
        data = await self._call(operations.task_document, {"taskId": task_id}, verdicts=_QUERY_VERDICTS)
        return read_task(data, field_name=operations.task_field, task_id=task_id, asked_at=asked_at)

    async def cancel_task(self, operations: Operations, task_id: str) -> None:
        """Cancel a task of a kind that can be cancelled (a deletion on hold).

        ``PrimeRejected`` when Amazon refuses: its ``reason`` says why (``CannotCancelPersonalDataDeletionTask``:
        the hold is over), or ``kind`` ResourceNotFoundError: no such task, which is a cancel that took only when
        an earlier cancel may have reached Amazon (Amazon forgets a cancelled task; see ``earlier_reached``).
        """
        if operations.cancel_document is None:
            raise ValueError(f"a {operations.kind} task cannot be cancelled")
        data = await self._call(operations.cancel_document, {"taskId": task_id}, verdicts=_CANCEL_VERDICTS)
        read_start(data, field_name=operations.cancel_field)  # the answer names the task: checked, like a start's

    async def check_access(self) -> None:
        """Obtain a token: proves the credentials, without touching any shopper's data."""
        try:
            await self._access_token(force=True)
        except PrimeUnavailable as error:
            self._note(error)
            raise

    # ----------------------------------------------------------------- internals

    async def _call(self, document: str, variables: dict[str, Any], *, verdicts: frozenset[str]) -> dict[str, Any]:
        """POST one GraphQL document, retrying what may succeed on a second try.

        An outage someone must fix (credentials refused, access denied) and an answer of the wrong
        shape are not retried here: the caller backs off on its own schedule. The error says whether
        any attempt may have been carried out at Amazon (``reached``): the clientToken window needs it; a
        verdict says whether an attempt before it may have been (``earlier_reached``): a cancel needs it.
        """
        delays = self._retry.delays()
        reached = False
        while True:
            try:
                data = await self._call_once(document, variables, verdicts=verdicts)
            except PrimeUnavailable as error:
                reached = reached or error.reached
                # Asking again at once would get the same odd answer or refusal: the caller's backoff decides.
                delay = None if error.needs_operator or error.kind == UNEXPECTED else next(delays, None)
                if delay is None:
                    error.reached = reached
                    self._note(error)
                    raise
                wait = max(delay, error.retry_after)
                logger.info("Buy with Prime unavailable (%s); retrying in %.2f s", error.kind, wait)
                await self._retry.sleep(wait)
            except PrimeRejected as error:
                error.earlier_reached = reached
                raise
            else:
                self._note(None)
                return data

    def _note(self, error: PrimeUnavailable | None) -> None:
        """Tell the outage board: an outage someone must fix began (or goes on), or calls work again."""
        if self._outages is None:
            return
        if error is None:
            self._outages.recovered("buy_with_prime")
        elif error.needs_operator:
            self._outages.failing("buy_with_prime", error.kind, str(error))

    async def _call_once(self, document: str, variables: dict[str, Any], *, verdicts: frozenset[str]) -> dict[str, Any]:
        token = await self._access_token()
        with self._observed(_operation(document)):
            return await self._post_document(token, document, variables, verdicts=verdicts)

    @contextmanager
    def _observed(self, operation: str) -> Iterator[None]:
        """Count one HTTP call to Amazon and time it, for /metrics: ok, throttled, unavailable or refused."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            yield
        except PrimeUnavailable as error:
            if error.kind == CREDENTIALS_REFUSED:
                outcome = "credentials_refused"
            elif error.needs_operator:
                outcome = "needs_operator"
            else:
                outcome = "throttled" if error.kind in ("ThrottlingError", "HTTP 429") else "unavailable"
            raise
        except PrimeRejected:
            outcome = "refused"
            raise
        finally:
            if self._metrics is not None:
                self._metrics.observe_amazon(operation, outcome, time.perf_counter() - started)

    async def _post_document(
        self, token: str, document: str, variables: dict[str, Any], *, verdicts: frozenset[str]
    ) -> dict[str, Any]:
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
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise PrimeUnavailable(
                "Buy with Prime could not be reached", kind=type(error).__name__, reached=False
            ) from error
        except httpx.TimeoutException as error:
            raise PrimeUnavailable("Buy with Prime did not answer in time", kind="Timeout") from error
        except httpx.TransportError as error:
            raise PrimeUnavailable("Buy with Prime could not be reached", kind=type(error).__name__) from error
        status = response.status_code
        if status == 401:
            if self._token == token:  # expired or revoked early; a newer token from another call stays
                self._token = None
            raise PrimeUnavailable("Buy with Prime refused the access token", kind="HTTP 401", reached=False)
        body = _json(response)
        if isinstance(body, dict) and body.get("errors"):
            raise _graphql_error(read_errors(body["errors"]), response, verdicts=verdicts)
        if status == 429 or status >= 500:
            raise _unavailable(f"Buy with Prime answered HTTP {status}", response, reached=status != 429)
        if status >= 400:  # 403/404 at the door: a wrong URL, target id or grant; nothing was carried out
            raise PrimeUnavailable(
                f"Buy with Prime answered HTTP {status}", kind=f"HTTP {status}", needs_operator=True, reached=False
            )
        if not isinstance(body, dict):  # HTML from a gateway or a proxy's login page: not Amazon at all
            raise unexpected(f"HTTP {status} that is not JSON", needs_operator=True, reached=False)
        return read_data(body)

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
            raise PrimeUnavailable(
                "the token endpoint did not answer in time", kind="Timeout", reached=False
            ) from error
        except httpx.TransportError as error:
            raise PrimeUnavailable(
                "the Buy with Prime token endpoint could not be reached", kind=type(error).__name__, reached=False
            ) from error
        status = response.status_code
        if status in (400, 401, 403):  # credentials being rotated, or wrong: an outage the operator ends
            raise PrimeUnavailable(
                "Buy with Prime refused the API credentials: check BWP_CLIENT_ID and BWP_CLIENT_SECRET",
                kind=CREDENTIALS_REFUSED,
                needs_operator=True,
                reached=False,
            )
        if status == 429 or status >= 500:
            raise _unavailable(f"the Buy with Prime token endpoint answered HTTP {status}", response, reached=False)
        body = _json(response)
        if status >= 300 or not isinstance(body, dict):
            what = f"the token endpoint answered HTTP {status} without JSON"
            raise unexpected(what, needs_operator=True, reached=False)
        try:
            token, lifetime = read_token(body)
        except PrimeUnavailable as error:
            error.reached = False
            raise
        self._on_secret(token)
        return token, self._clock() + lifetime


_OPERATION = re.compile(r"\{\s*(\w+)")


def _operation(document: str) -> str:
    """The GraphQL field a document asks for (``startPersonalDataRetrievalTask``): a fixed name, safe as a label."""
    found = _OPERATION.search(document)
    return found.group(1) if found else "graphql"


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


def _unavailable(message: str, response: httpx.Response, *, reached: bool = True) -> PrimeUnavailable:
    return PrimeUnavailable(
        message, kind=f"HTTP {response.status_code}", retry_after=_retry_after(response), reached=reached
    )


def _graphql_error(info: GraphQLErrorInfo, response: httpx.Response, *, verdicts: frozenset[str]) -> PrimeError:
    """Turn Amazon's first error into what a caller can act on, by its ``classification.type``.

    Only Amazon's verdict on this very call (``verdicts``: validation, conflict, unknown task) is
    final; throttling and 5xx are transient; anything else (access denied, a type Amazon never
    documented) is an outage the operator must look at.
    """
    status = response.status_code
    text = f"Buy with Prime: {info.message}" + (f" ({info.kind})" if info.kind else "")
    if info.kind in verdicts:
        return PrimeRejected(text, kind=info.kind, reason=info.reason)
    transient = info.kind in _RETRYABLE_TYPES or (
        not info.kind and (status == 429 or status >= 500 or info.code in (429, 500, 502, 503))
    )
    throttled = info.kind == "ThrottlingError" or status == 429 or info.code == 429
    return PrimeUnavailable(
        text,
        kind=info.kind or f"HTTP {status}",
        retry_after=_retry_after(response),
        needs_operator=not transient,
        reached=not throttled and info.kind != "AccessDeniedError",
    )
