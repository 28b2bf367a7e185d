"""One request, one state machine: every input moves a request through ``advance``.

A slash command, a relayed event, the reconciler and a button click all end
here: ask Amazon for the task's state, then apply it. Applying is idempotent
(the store moves a request only from the state the change applies to), so
duplicate events, retries, races and the poller cannot disagree.

The steps are the same for every kind of request; what differs (Amazon's
operations, which of its statuses move a request where, the texts) is read from
the request's entry in ``deps.kinds`` (``handlers/kinds/__init__.py``), never spelt here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from enum import Enum

from core import EmailUnreadable, PrimeRejected, PrimeUnavailable, log_ids
from handlers import notices, texts
from handlers.flow import Flow
from handlers.kinds import KindFlow
from handlers.slack_errors import NOT_A_MEMBER, SlackFault
from prime import CLIENT_TOKEN_WINDOW, UNEXPECTED, TaskState
from store import NOTICE, OPENS_THREAD, OutboxEntry, Request, RequestStatus, TaskError

__all__ = [
    "START_WINDOW",
    "Reply",
    "Synced",
    "advance",
    "apply_task_state",
    "kind_of",
    "next_check",
    "post_abandoned",
    "sync_task",
]

logger = logging.getLogger(__name__)

Reply = Callable[[texts.Message], Awaitable[None]]
# A start is retried under its clientToken only while Amazon would still answer with the same task:
# past this (the 8-hour window, less room for the call itself), a retry could start a second task.
START_WINDOW = CLIENT_TOKEN_WINDOW - 15 * 60.0


class Synced(Enum):
    """How asking Amazon about one task went: answered, this task's answer failed, or Amazon is down."""

    ANSWERED = "answered"
    ITEM_FAILED = "item failed"  # an answer of the wrong shape for this task: the others may be fine
    AMAZON_DOWN = "amazon down"  # throttling, 5xx, network, credentials: the same for every task


def kind_of(deps: Flow, request: Request) -> KindFlow | None:
    """The request's kind, as this bot runs it; None (logged) for a kind it does not know."""
    kind = deps.kinds.get(request.kind)
    if kind is None:
        logger.error("request %s: its kind %r is not one this bot runs; it is left as it is", request.id, request.kind)
    return kind


async def advance(deps: Flow, request_id: int, *, reply: Reply | None = None) -> Request | None:
    """Take a request as far as it can go now; ``reply`` tells the person who asked, if anyone did."""
    async with deps.locks.hold(request_id):
        request = await deps.store.requests.get(request_id)
        kind = kind_of(deps, request) if request is not None else None
        if request is None or kind is None:
            return request
        if request.status is RequestStatus.NEW:
            request = await _open_thread(deps, request, reply)
        if request is not None and request.status is RequestStatus.STARTING:
            # A task Amazon has just created has nothing more to say: what it does next comes as an event or
            # at the next check. One an earlier start may have created (the same clientToken) is asked about.
            first = request.start_sent_at is None
            request = await _start_task(deps, kind, request, reply)
            if first:
                return request
        if request is not None and request.status in kind.ask_amazon:
            request, _ = await _sync(deps, kind, request)
        return request


async def sync_task(deps: Flow, request_id: int) -> Synced:
    """Ask Amazon for a started request's task and apply it; say how asking went."""
    async with deps.locks.hold(request_id):
        request = await deps.store.requests.get(request_id)
        kind = kind_of(deps, request) if request is not None else None
        if request is None or kind is None or request.status not in kind.ask_amazon:
            return Synced.ANSWERED
        _, synced = await _sync(deps, kind, request)
        return synced


async def _sync(deps: Flow, kind: KindFlow, request: Request) -> tuple[Request, Synced]:
    """Query and apply; a failure backs this request off on its own schedule (``check_failures``)."""
    if not request.task_id:
        return request, Synced.ANSWERED
    try:
        state = await deps.prime.task(kind.operations, request.task_id)
    except PrimeUnavailable as error:
        delay = deps.retry_delay(request.check_failures)
        logger.info("request %s: task state not available (%s); next try in %.0f s", request.id, error.kind, delay)
        await deps.store.requests.schedule_check(request.id, at=deps.clock() + delay, failed=True)
        return request, Synced.ITEM_FAILED if error.kind == UNEXPECTED else Synced.AMAZON_DOWN
    except PrimeRejected as error:
        if not request.status.moving:  # a cancelled task: Amazon forgets it, and nothing polls it
            logger.info("request %s: Buy with Prime no longer knows its task (%s)", request.id, error.kind)
            return request, Synced.ANSWERED
        logger.warning("request %s: Buy with Prime refused the task query (%s)", request.id, error.kind)
        await deps.store.requests.schedule_check(request.id, at=deps.clock() + deps.reconcile_interval)
        return request, Synced.ANSWERED
    applied = await apply_task_state(deps, request, state)
    if applied.status.moving:
        await deps.store.requests.schedule_check(request.id, at=next_check(deps, applied))
    return applied, Synced.ANSWERED


def next_check(deps: Flow, request: Request) -> float:
    """When to ask Amazon about a started task again: after ``reconcile_interval``, never before its hold ends.

    Nothing can change during a hold but a cancel (the bot's own click), so a 10-day hold is looked at
    once, when it ends, rather than every few minutes; events still end it at once.
    """
    return _next_check_at(deps, request.hold_ends_at)


def _next_check_at(deps: Flow, hold_ends_at: float | None) -> float:
    return max(deps.clock() + deps.reconcile_interval, hold_ends_at or 0.0)


async def apply_task_state(deps: Flow, request: Request, state: TaskState) -> Request:
    """Apply Amazon's view of the task to the stored request; posts once however often it is called.

    Amazon's status is looked up in the kind's ``moves``; a status its kind waits through changes
    nothing, and one it does not know is logged and left.
    """
    kind = kind_of(deps, request)
    move = kind.moves.get(state.status) if kind is not None else None
    if kind is None or move is None:
        if kind is not None and state.status not in kind.waiting:
            logger.warning("request %s: Buy with Prime reported unknown status %r", request.id, state.status)
        return request
    if request.status is move.to:
        return request  # already there: nothing to write
    moved = await deps.store.requests.record_task_state(
        request.id,
        from_=move.from_,
        to=move.to,
        errors=state.errors if move.errors else (),
        action=move.action,
        passed=move.passed_from(request.status),
        notices=notices.thread_update(move.reply_from(request.status)),
    )
    if not moved.moved or moved.request is None:
        return moved.request or request  # it had moved on already: where it stands now
    now = moved.request
    logger.info("request %s: task %s %s", now.id, now.task_id, move.to.value, extra=log_ids(task_id=now.task_id))
    return now


async def _open_thread(deps: Flow, request: Request, reply: Reply | None) -> Request | None:
    """Send the message that opens the thread now, through the outbox; without it nothing starts at Amazon.

    If Slack refuses, the outbox keeps the message and retries it with its backoff (an operator's
    fix, like inviting the bot, ends the wait); the person who asked is told what is going on.
    """
    result = await deps.open_thread(request.id)
    if result is not None and result.opened is not None:
        return result.opened  # sent: the request as recording it left it, no second look
    current = await deps.store.requests.get(request.id)
    if result is None or result.sent or reply is None or current is None or current.status is not RequestStatus.NEW:
        return current
    if result.code in NOT_A_MEMBER:
        await reply(texts.not_in_channel())
    elif result.fault is SlackFault.MESSAGE:
        await reply(texts.thread_refused(result.code or ""))
    else:
        await reply(texts.slack_trouble())
    return current


async def post_abandoned(deps: Flow, entry: OutboxEntry, code: str) -> None:
    """Slack refused a post of this request for good: never silently. The requester gets a direct message.

    A refused first message means the request cannot go on (nothing was started at Amazon).
    """
    request = await deps.store.requests.get(entry.request_id)
    if request is None or entry.purpose == NOTICE:
        return  # the notice itself was refused: the audit entry is what is left
    if entry.purpose == OPENS_THREAD and request.status is RequestStatus.NEW:
        request = await deps.store.requests.abandon(
            request.id, actor="bot", reason=f"thread message refused by Slack: {code}"
        )
    await deps.store.outbox.queue_notice(request.id, notices.abandoned(code))


async def _start_task(deps: Flow, kind: KindFlow, request: Request, reply: Reply | None) -> Request | None:
    """Start the task at Amazon with the request's stored clientToken, so any retry finds the same task."""
    try:
        email = await deps.store.requests.reveal_email(request.id)
    except EmailUnreadable as error:  # one damaged row: it waits on its own backoff, no traceback, the rest go on
        delay = deps.retry_delay(request.check_failures)
        logger.error("%s (altered, or sealed under another key); next try in %.0f s", error, delay)
        await deps.store.requests.schedule_check(request.id, at=deps.clock() + delay, failed=True)
        return request
    if email is None:
        logger.error("request %s: the email is no longer stored; it cannot be started", request.id)
        return request
    if request.start_sent_at is not None and deps.clock() - request.start_sent_at >= START_WINDOW:
        logger.warning("request %s: not started within the clientToken's window; not retrying", request.id)
        expired = await deps.store.requests.record_start_expired(
            request.id, notices=notices.thread_update("start_window_passed")
        )
        return expired
    earlier_mark = await deps.store.requests.mark_start_attempt(request.id)
    try:
        task_id = await deps.prime.start_task(
            kind.operations, email=email, client_token=request.client_token, extra=kind.start_params(request)
        )
    except PrimeRejected as error:
        logger.warning("request %s: Buy with Prime refused the start (%s)", request.id, error.kind)
        rejected = await deps.store.requests.record_start_rejected(
            request.id, [TaskError(error.kind or None, str(error))], notices=notices.thread_update("rejected")
        )
        return rejected
    except PrimeUnavailable as error:
        if not error.reached and earlier_mark is None:
            await deps.store.requests.clear_start_attempt(
                request.id
            )  # nothing reached Amazon: its window has not begun
        delay = deps.retry_delay(request.check_failures)
        logger.warning(
            "request %s: Buy with Prime unavailable at start (%s); next try in %.0f s", request.id, error.kind, delay
        )
        told = notices.thread_update("waiting_operator" if error.needs_operator else "waiting")
        reason = f"{error.kind}: {error}"
        await deps.store.requests.record_start_waiting(request.id, at=deps.clock() + delay, reason=reason, notices=told)
        if reply is not None:
            await reply(texts.start_trouble(request))
        return await deps.store.requests.get(request.id)
    reply_in_thread = "started_after_wait" if request.waiting_since is not None else None
    hold = kind.hold_days(request)
    hold_ends_at = deps.clock() + hold * deps.hold_day if hold > 0 else None
    started = await deps.store.requests.record_task_started(
        request.id,
        task_id,
        to=kind.started(request),
        hold_ends_at=hold_ends_at,
        next_check_at=_next_check_at(deps, hold_ends_at),
        note=f"hold {hold} days" if hold > 0 else "",
        notices=notices.thread_update(reply_in_thread),
    )
    logger.info("request %s: task %s started", request.id, task_id, extra=log_ids(task_id=task_id))
    deps.wake_inbox()  # its completion event may have arrived before Amazon's answer did
    return started
