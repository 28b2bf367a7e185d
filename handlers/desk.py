"""What answers a person: the ``Desk`` every listener (the command, the buttons) is given.

It carries the ``Flow`` (``handlers/flow.py``) their requests move through, Slack, who may act, the
background work a listener starts after its acknowledgement, and the threads' permalinks. Timers that
only keep cases (reminders, retention) and the Home tab take the few things they use, not a ``Desk``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core import Background
from handlers.flow import Flow
from handlers.workers.access import Authorizer
from store import Request

__all__ = ["Desk", "Permalinks", "StartGate"]


@dataclass(frozen=True, slots=True)
class StartGate:
    """How a burst of new requests starts: two at a time.

    A burst of commands must not queue so much background work (threads opened, starts at Amazon) that
    the next acknowledgement waits behind it (benchmarks/README.md, "start_slots", has the figures).
    """

    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))


@dataclass(frozen=True, slots=True)
class Desk:
    """What answers a person: the flow their request moves through, Slack, who may act, background work.

    ``deadline_days`` and ``verification_required`` have no default here: RESPONSE_DEADLINE_DAYS's and
    IDENTITY_VERIFICATION's defaults (bot/settings.py) are the ones.
    ``kind_defaults``: a kind's params the command may leave out, by kind, as the settings give them
    (``KindFlow.defaults``: an erasure's ``hold_days`` from DELETION_HOLD_DAYS).
    """

    flow: Flow
    slack: AsyncWebClient
    authorizer: Authorizer
    background: Background
    permalinks: Permalinks
    deadline_days: int
    verification_required: bool  # IDENTITY_VERIFICATION: Download and Approve wait for the shopper's identity
    starts: StartGate = field(default_factory=StartGate)
    kind_defaults: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    async def permalink(self, request: Request) -> str | None:
        """A link to the request's thread, or None when Slack cannot give one."""
        return await self.permalinks.get(request)


class Permalinks:
    """Links to request threads, asked of Slack once each: a thread's permalink never changes."""

    def __init__(self, slack: AsyncWebClient, *, size: int = 2048) -> None:
        self._slack = slack
        self._known: dict[tuple[str, str], str] = {}
        self._size = size

    async def get(self, request: Request) -> str | None:
        """The thread's permalink, or None when Slack cannot give one (best effort, never raises)."""
        if not request.thread_ts:
            return None
        key = (request.channel, request.thread_ts)
        if key in self._known:
            return self._known[key]
        try:
            response = await self._slack.chat_getPermalink(channel=request.channel, message_ts=request.thread_ts)
        except (SlackApiError, OSError, TimeoutError):
            return None
        link = response.get("permalink")
        if not link:
            return None
        if len(self._known) >= self._size:
            self._known.pop(next(iter(self._known)))
        self._known[key] = str(link)
        return str(link)
