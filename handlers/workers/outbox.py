"""The Slack outbox sender: every queued thread post and update, sent once, in order per request.

Entries are written in the same transaction as the state change that caused
them, so a crash never loses one; the message that opens a request's thread is
one of them. Each entry is put into words when it is sent (``render``: handlers/notices.py), with
its request as it stands then. What a failure means comes from one table (handlers/slack_errors.py):
429 honours Retry-After; 5xx, timeouts and network errors back off; an error
the operator must fix (a revoked token, the bot removed from the channel) keeps
the entry and keeps retrying with capped backoff, with one log line per
episode; only a message Slack finds wrong in itself is given up, audited, and
handed to ``on_abandoned`` so that the requester is told. A call is never cut off by
its caller; a post whose answer never came (the bot stopped or died waiting) is looked
for before it is made again (handlers/workers/posted.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core import Foreground, Outages, Wakeup, backoff
from handlers.slack_errors import SlackFault, classify, operator_hint, slack_error_code
from handlers.workers.posted import find_posted, tag
from store import CLAIM_LEASE, OPENS_THREAD, OutboxEntry, Request, RequestStatus, Store

__all__ = ["OutboxSender", "SendResult", "SlackCall"]

logger = logging.getLogger(__name__)

UNRENDERABLE = "unrenderable"  # the give-up code of an entry that could not be put into words


@dataclass(frozen=True, slots=True)
class SlackCall:
    """One Slack Web API call: the method and its arguments, as an outbox entry is sent."""

    method: str
    payload: dict[str, Any]


CLAIMED = "claimed_elsewhere"  # the entry was taken by another copy of the bot sharing the database


@dataclass(frozen=True, slots=True)
class SendResult:
    """How one attempt went: sent, or the Slack code it failed with and what kind of failure that is."""

    sent: bool
    code: str | None = None
    fault: SlackFault | None = None
    opened: Request | None = None  # a thread's first message sent: its request as that left it

    @property
    def settled(self) -> bool:
        """Nothing more to do in this round: sent, given up, rescheduled by Slack's own Retry-After, or another
        copy of the bot's to send."""
        return self.sent or self.fault is SlackFault.MESSAGE or self.code in ("ratelimited", CLAIMED)


class OutboxSender:
    """Sends due outbox entries until cancelled; ``wake()`` says new ones are waiting.

    ``render`` puts an entry into words when it is sent; an entry it cannot render is given up like a
    message Slack refuses (``unrenderable``). ``opened`` says, by kind, where a request goes once its thread's
    first message is posted. ``on_thread_opened(request_id)`` is called when the
    worker posted a thread's first message (the request can now start); ``on_abandoned(entry, code)``
    when a post is given up for good. ``claim_lease``: how long an entry being sent stays this copy's, after
    which, if it is not recorded as sent, another copy of the bot sharing the database may send it.
    ``foreground``: the requests someone waits on; the worker's round gives way to them before each post.
    """

    def __init__(
        self,
        *,
        store: Store,
        slack: AsyncWebClient,
        concurrency: int = 8,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        idle_wait: float = 30.0,
        clock: Callable[[], float] = time.time,
        outages: Outages | None = None,
        render: Callable[[OutboxEntry], SlackCall],
        opened: Mapping[str, RequestStatus],
        claim_lease: float = CLAIM_LEASE,
        foreground: Foreground | None = None,
    ) -> None:
        self._store = store
        self._foreground = foreground or Foreground()
        self._slack = slack
        self._render = render
        self._opened = opened  # where a request of each kind goes once its thread is posted
        self._claim_lease = claim_lease  # an entry being sent is this copy's for so long (CLAIM_LEASE)
        self._slots = asyncio.Semaphore(concurrency)
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._idle_wait = idle_wait
        self._clock = clock
        self._outages = outages or Outages(clock=clock)
        self._wakeup = Wakeup()
        self._failed_rounds = 0  # consecutive rounds in which Slack failed and nothing got through
        self._in_flight: dict[int, asyncio.Task[SendResult]] = {}  # entries being sent now (never twice at once)
        self._calls: set[asyncio.Task[SendResult]] = set()  # the sends themselves, each in a task of its own
        self.on_thread_opened: Callable[[int], object] = lambda _: None
        self.on_abandoned: Callable[[OutboxEntry, str], object] = lambda _entry, _code: None
        self._recorded = asyncio.Event()  # set, then replaced, each time an attempt ends: drained() looks again

    def wake(self) -> None:
        self._wakeup.ring()

    async def drained(self) -> None:
        """Return once every queued post is sent or given up, looking again each time an attempt ends.

        For a caller that must not run ahead of the threads (the demo prints its next step only after
        the last one's posts). A post waiting out a failure's backoff keeps it waiting.
        """
        while True:
            recorded = self._recorded  # taken before the look: an attempt that ends after it wakes this wait
            if await self._store.outbox.next_due() is None:
                return
            await recorded.wait()

    async def run(self) -> None:
        while True:
            sent = await self.send_due()
            if sent:
                continue
            next_due = await self._store.outbox.next_due()
            wait = self._idle_wait if next_due is None else max(0.0, min(self._idle_wait, next_due - self._clock()))
            await self._wakeup.wait(wait)

    async def send_due(self) -> int:
        """Send what is due now (the head entry of each request); return how many were tried.

        When Slack is failing every entry waits the same growing delay, shared by the whole outbox:
        Slack is down (or refusing the token) for all of them, and the first round after it recovers
        sends everything. The delay is capped (``max_delay``), which bounds how long a thread lags
        behind once Slack is back, or once the operator has fixed what Slack refused.

        Each post gives way to the requests being answered before it is claimed, so ``send_for`` (a start
        holding its request's lock) never waits on a post still in line: it sends the entry itself, and
        this round leaves it alone, or finds it sent.
        """
        entries = [e for e in await self._store.outbox.due(limit=64) if e.id not in self._in_flight]
        if not entries:
            return 0  # nothing was due: says nothing about whether Slack is back
        started: list[OutboxEntry] = []
        calls: list[asyncio.Task[SendResult]] = []
        try:
            for entry in entries:
                await self._foreground.give_way()
                if entry.id not in self._in_flight:  # else send_for took it while this one gave way
                    started.append(entry)
                    calls.append(self._start(entry))
            results = await asyncio.gather(*(asyncio.shield(call) for call in calls))
            for entry, result in zip(started, results, strict=True):
                if result.sent and entry.purpose == OPENS_THREAD:
                    self.on_thread_opened(entry.request_id)
            failed = [(e, r) for e, r in zip(started, results, strict=True) if not r.settled]
            if started:  # else send_for took every one: its own attempts say how Slack is doing
                await self._reschedule(failed, len(started))
        finally:
            self._release(started, calls)
        return len(entries)

    async def send_for(self, request_id: int) -> SendResult | None:
        """Send the request's next due entry now (a new thread's first message); None if none is waiting.

        The same attempt, table and backoff as the worker's: a failure waits like any other entry.
        """
        entries = await self._store.outbox.due(limit=1, request_id=request_id)
        if not entries:  # the worker tried it first and it waits for its retry: that attempt is the answer
            error = await self._store.outbox.last_error(request_id)
            return None if error is None else SendResult(False, error, classify(error))
        if (sending := self._in_flight.get(entries[0].id)) is not None:
            return await asyncio.shield(sending)  # the worker is sending it now: its answer is this one's too
        call = self._start(entries[0])
        try:
            result = await asyncio.shield(call)
            if not result.settled:
                await self._reschedule([(entries[0], result)], 1)
                self.wake()  # from now on the worker retries it, on the outbox's schedule
        finally:
            self._release(entries, [call])
        return result

    async def _reschedule(self, failed: list[tuple[OutboxEntry, SendResult]], tried: int) -> None:
        if not failed:
            self._failed_rounds = 0
            return
        self._failed_rounds = self._failed_rounds + 1 if len(failed) == tried else 1
        delay = backoff(self._failed_rounds - 1, base=self._base_delay, cap=self._max_delay)
        transient = [r.code for _, r in failed if r.fault is not SlackFault.OPERATOR]
        if transient:  # operator faults are logged once per episode by the outage board instead
            logger.warning(
                "outbox: %d Slack calls failed (%s); retrying in %.1f s", len(transient), transient[0], delay
            )
        for entry, result in failed:
            await self._store.outbox.retry(entry.id, at=self._clock() + delay, error=result.code or "unknown")

    def _start(self, entry: OutboxEntry) -> asyncio.Task[SendResult]:
        """Claim the entry and make its call once, in a task of its own; recorded if settled for good.

        Its caller waits for it shielded: a caller cancelled (a stopping bot's background work, the
        worker loop) leaves a call Slack may already have carried out to finish and be recorded,
        until ``settle`` gives up on it. The caller releases the claim (``_release``).
        """
        call = asyncio.create_task(self._attempt_in_turn(entry), name=f"outbox {entry.id}")
        self._in_flight[entry.id] = call
        self._calls.add(call)
        call.add_done_callback(self._call_ended)
        return call

    def _release(self, entries: list[OutboxEntry], calls: list[asyncio.Task[SendResult]]) -> None:
        """Unclaim the entries, once each one's failure is rescheduled: until then another round would send
        it again at once. One whose call is still in flight (its caller was cancelled) is unclaimed when it ends.
        """
        for entry, call in zip(entries, calls, strict=True):
            if call.done():
                self._in_flight.pop(entry.id, None)
            else:
                call.add_done_callback(partial(_unclaim, self._in_flight, entry.id))

    async def _attempt_in_turn(self, entry: OutboxEntry) -> SendResult:
        async with self._slots:
            return await self._attempt(entry)

    def _call_ended(self, call: asyncio.Task[SendResult]) -> None:
        self._calls.discard(call)
        self._recorded.set()
        self._recorded = asyncio.Event()
        if not call.cancelled():
            call.exception()  # taken here too: a caller that was cancelled never will (a live one still gets it)

    async def settle(self, grace: float) -> int:
        """Let the calls in flight finish and be recorded for at most ``grace`` seconds, then cancel the rest.

        Return how many were cancelled: Slack may have carried those out, so they are marked as attempted,
        and the next attempt looks for the message before posting it again (handlers/workers/posted.py).
        """
        if not self._calls:
            return 0
        _, pending = await asyncio.wait(set(self._calls), timeout=max(0.0, grace))
        for call in pending:
            call.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)

    async def _attempt(self, entry: OutboxEntry) -> SendResult:
        try:
            call = self._render(entry)
        except Exception:  # a text that cannot be built (too long for Slack, a name no kind knows): a bug
            logger.exception("outbox %s: the %s notice could not be put into words; giving up", entry.id, entry.method)
            return await self._give_up(entry, UNRENDERABLE, entry.method)
        posting = call.method == "chat.postMessage"
        if not await self._store.outbox.attempting(entry.id, lease=self._claim_lease):
            return SendResult(sent=False, code=CLAIMED)  # another copy of the bot sends it (or has sent it)
        if posting and entry.attempts and (found := await find_posted(self._slack, entry, call.payload)):
            logger.info("outbox %s: found already posted by an earlier attempt; not posting again", entry.id)
            return SendResult(sent=True, opened=await self._record_sent(entry, found))
        try:
            response = await self._slack.api_call(
                call.method, json=tag(entry, call.payload) if posting else call.payload
            )
        except SlackApiError as error:
            return await self._failed(entry, call, error)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            return SendResult(sent=False, code=type(error).__name__, fault=SlackFault.RETRY)
        except Exception as error:  # an odd answer from Slack: this entry backs off, the others go on
            logger.exception("outbox %s: %s failed unexpectedly", entry.id, call.method)
            return SendResult(sent=False, code=type(error).__name__, fault=SlackFault.RETRY)
        opened = await self._record_sent(entry, response.get("ts"))
        await self._recovered(entry.last_error)
        return SendResult(sent=True, opened=opened)

    async def _record_sent(self, entry: OutboxEntry, ts: object) -> Request | None:
        """Mark the entry sent; a thread's first message also gives its request the thread (its ``ts``), and
        the request as that left it is returned."""
        if entry.purpose == OPENS_THREAD:
            if not ts:
                raise ValueError(f"outbox {entry.id}: Slack's answer to the thread's first message has no ts")
            kind = entry.request.kind if entry.request is not None else ""
            opened_to = self._opened.get(kind, RequestStatus.STARTING)
            return (
                await self._store.outbox.thread_opened(entry.request_id, str(ts), to=opened_to, sent=entry.id)
            ).request
        await self._store.outbox.sent(entry.id)
        return None

    async def _recovered(self, previous_error: str | None) -> None:
        """A post that had failed for an operator's reason got through: end the episode once none waits on it."""
        if not previous_error or classify(previous_error) is not SlackFault.OPERATOR:
            return
        if not await self._store.outbox.waiting_on(previous_error):
            self._outages.recovered("slack", previous_error)

    async def _failed(self, entry: OutboxEntry, call: SlackCall, error: SlackApiError) -> SendResult:
        status = error.response.status_code
        code = slack_error_code(error)
        if status == 429:
            headers = error.response.headers
            retry_after = _seconds(headers.get("Retry-After") or headers.get("retry-after"))
            logger.info("outbox %s: Slack rate limit, retrying in %.0f s", entry.id, retry_after)
            await self._store.outbox.retry(entry.id, at=self._clock() + retry_after, error="ratelimited")
            return SendResult(sent=False, code="ratelimited", fault=SlackFault.RETRY)
        fault = classify(code)
        if fault is SlackFault.MESSAGE:
            logger.error(
                "outbox %s: Slack refused %s as wrong (%s); giving up, requester told", entry.id, call.method, code
            )
            return await self._give_up(entry, code, call.method)
        if fault is SlackFault.OPERATOR:
            self._outages.failing("slack", code, operator_hint(code))
        return SendResult(sent=False, code=code, fault=fault)

    async def _give_up(self, entry: OutboxEntry, code: str, method: str) -> SendResult:
        """This entry will never go out: audited, and the requester told (``on_abandoned``)."""
        await self._store.outbox.give_up(entry, error=code, method=method)
        await self._recovered(entry.last_error)
        self.on_abandoned(entry, code)
        return SendResult(sent=False, code=code, fault=SlackFault.MESSAGE)


def _unclaim(in_flight: dict[int, asyncio.Task[SendResult]], entry_id: int, _: object) -> None:
    in_flight.pop(entry_id, None)


def _seconds(value: object) -> float:
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, min(float(str(value)), 3600.0))
    except (TypeError, ValueError):
        return 1.0
