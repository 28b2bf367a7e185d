"""slack_sdk's retries of a failed Slack call, ended by the bot's stop: a stopping bot waits out no backoff.

slack_sdk retries a 429, a 5xx or a lost connection itself, after a wait (Retry-After, or a backoff of up
to two seconds), inside the call. The outbox retries on its own schedule anyway, and everything unsent is
kept for the next start; so once ``stopping`` is set, a failing call fails at once with the answer it had,
and a wait already begun ends there.
"""

from __future__ import annotations

import asyncio

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

__all__ = ["UntilStopping"]


class UntilStopping(AsyncRetryHandler):
    """One of slack_sdk's retry handlers, as long as ``stopping`` is not set."""

    def __init__(self, handler: AsyncRetryHandler, *, stopping: asyncio.Event) -> None:
        super().__init__(handler.max_retry_count, handler.interval_calculator)
        self.handler = handler
        self.stopping = stopping

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if self.stopping.is_set():
            return False
        return await self.handler.can_retry_async(state=state, request=request, response=response, error=error)

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        """The handler's own wait, cut short by the stop: then no next attempt is made."""
        waiting = asyncio.ensure_future(
            self.handler.prepare_for_next_attempt_async(state=state, request=request, response=response, error=error)
        )
        stopped = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            cut_short = not waiting.done()
            waiting.cancel()
        if cut_short:
            state.next_attempt_requested = False  # slack_sdk then returns (or raises) what the last attempt got
            return
        waiting.result()
