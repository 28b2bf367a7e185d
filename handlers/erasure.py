"""An erasure's buttons: Approve, Reject (with its modal), Cancel deletion and Try again.

Every click is acknowledged at once; the work runs in the background. Who may click is checked first
(a refusal is audited and explained to the clicker alone), then the decision is taken under the
request's lock, so two clicks at once decide once. A decision and its thread update commit together
(the store's intents); the call to Amazon that follows an approval goes through the shared lifecycle,
with the clientToken stored when the erasure was asked for, so a crash after the approval resumes the
same start without asking anyone again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from handlers import erasure_texts as say
from handlers import texts
from handlers.context import Desk
from handlers.deletion_texts import OPEN_ORDERS, retryable
from handlers.guard import about_request, allowed, clicked_by, ephemeral_reply, saving
from handlers.kindflow import Click
from handlers.lifecycle import Reply, advance, kind_of
from handlers.notices import thread_update
from prime import PrimeRejected, PrimeUnavailable, RequestKind, log_ids, slack_error_code
from store import Request, RequestStatus

__all__ = ["on_approve", "on_cancel", "on_reject", "on_reject_submitted", "on_retry"]

logger = logging.getLogger(__name__)

TOO_LATE = "CannotCancelPersonalDataDeletionTask"  # Amazon's classification code: the hold is over


def _clicked(deps: Desk, body: dict[str, Any]) -> tuple[str, str]:
    """(who clicked, the button's value: the request id)."""
    return clicked_by(deps, body), str(((body.get("actions") or [{}])[0]).get("value", ""))


Decide = Callable[..., Coroutine[Any, Any, None]]  # (deps, the button's value, *, user, reply)


def _button(decide: Decide, name: str) -> Click:
    """A button's listener: acknowledged at once, ``decide`` run in the background as task ``name``; a write
    the database refuses meanwhile is explained to the clicker (``saving``)."""

    async def listener(deps: Desk, *, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        user, value = _clicked(deps, body)
        reply = ephemeral_reply(respond)
        with about_request(value):
            deps.background.spawn(saving(decide(deps, value, user=user, reply=reply), reply=reply), name=name)

    return listener


async def _erasure(deps: Desk, value: str, *, user: str, action: str, reply: Reply) -> Request | None:
    """The erasure a button names, once its clicker is known to be allowed; None (answered) otherwise."""
    request = await deps.flow.store.requests.get(int(value)) if value.isdigit() else None
    if not await allowed(deps, user, action=action, reply=reply, request_id=request.id if request else None):
        return None
    if request is None or request.kind != RequestKind.DELETION:
        await reply(texts.unknown_request("this button"))
        return None
    return request


# ---------------------------------------------------------------- Approve


async def _approve(deps: Desk, value: str, *, user: str, reply: Reply) -> None:
    request = await _erasure(deps, value, user=user, action="approve", reply=reply)
    if request is None:
        return
    flow = deps.flow
    async with flow.locks.hold(request.id):
        current = await flow.store.requests.get(request.id) or request
        if current.status is RequestStatus.NEW:
            await reply(say.still_opening())
            return
        if current.status is not RequestStatus.AWAITING_APPROVAL:
            await reply(say.already_decided(current))
            return
        if user == current.requester:
            await flow.store.audit.append(
                request_id=current.id, actor=user, action="refused", detail="approve: own request"
            )
            await reply(say.own_approval())
            return
        approved = await flow.store.decisions.approve(current.id, user=user, notices=thread_update())
    if approved is None:
        await reply(say.already_decided(await flow.store.requests.get(request.id) or request))
        return
    logger.info("request %s: approved by %s", approved.id, user)
    flow.wake_outbox()
    flow.home_changed()
    await reply(say.approved_ack(approved))
    await advance(flow, approved.id)  # the start, with the stored clientToken; a crash here resumes it


# **Approve**: an allowed person other than the requester lets the erasure start at Amazon.
on_approve = _button(_approve, "erasure approve")


# ---------------------------------------------------------------- Reject


async def on_reject(deps: Desk, *, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
    """**Reject**: ask why in a modal (opened with the click's trigger id, which lives 3 seconds)."""
    await ack()
    user, value = _clicked(deps, body)
    reply = ephemeral_reply(respond)
    trigger = str(body.get("trigger_id") or "")
    with about_request(value):
        deps.background.spawn(
            saving(_ask_why(deps, value, user=user, trigger=trigger, reply=reply), reply=reply), name="erasure reject"
        )


async def _ask_why(deps: Desk, value: str, *, user: str, trigger: str, reply: Reply) -> None:
    request = await _erasure(deps, value, user=user, action="reject", reply=reply)
    if request is None:
        return
    if request.status is not RequestStatus.AWAITING_APPROVAL:
        await reply(say.still_opening() if request.status is RequestStatus.NEW else say.already_decided(request))
        return
    try:
        await deps.slack.views_open(trigger_id=trigger, view=say.reject_view(request))
    except (SlackApiError, OSError, TimeoutError) as error:
        code = slack_error_code(error) if isinstance(error, SlackApiError) else type(error).__name__
        logger.warning("request %s: the Reject form did not open (%s)", request.id, code)
        await reply({"text": "Slack did not open the Reject form; click *Reject* again."})


async def on_reject_submitted(deps: Desk, *, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
    """The Reject modal sent: a reason that cannot be kept is answered in the form; else the erasure ends."""
    values = (view.get("state") or {}).get("values") or {}
    reason = str(((values.get("reason") or {}).get("reason") or {}).get("value") or "").strip()
    problem = say.reason_problem(reason)
    if problem is not None:
        await ack(response_action="errors", errors={"reason": problem})
        return
    await ack()
    user = clicked_by(deps, body)
    value = str(view.get("private_metadata") or "")
    with about_request(value):
        deps.background.spawn(_reject(deps, value, user=user, reason=" ".join(reason.split())), name="erasure rejected")


async def _reject(deps: Desk, value: str, *, user: str, reason: str) -> None:
    flow = deps.flow
    request = await flow.store.requests.get(int(value)) if value.isdigit() else None
    if request is None:
        return
    reply = _to_clicker(deps, request, user)
    if await _erasure(deps, value, user=user, action="reject", reply=reply) is None:
        return
    async with flow.locks.hold(request.id):
        rejected = await flow.store.decisions.reject(
            request.id, user=user, reason=reason, notices=thread_update("rejected_by_staff")
        )
    if rejected is None:
        await reply(say.already_decided(await flow.store.requests.get(request.id) or request))
        return
    logger.info("request %s: rejected by %s", request.id, user)  # never the reason: staff's free text
    flow.wake_outbox()
    flow.home_changed()
    await reply(say.rejected_ack(rejected))


def _to_clicker(deps: Desk, request: Request, user: str) -> Reply:
    """An ephemeral in the request's thread (a modal's submission has no response_url)."""

    async def reply(message: texts.Message) -> None:
        try:
            await deps.slack.chat_postEphemeral(
                channel=request.channel, user=user, thread_ts=request.thread_ts, **message
            )
        except (SlackApiError, OSError, TimeoutError) as error:
            logger.info("request %s: could not answer %s (%s)", request.id, user, type(error).__name__)

    return reply


# ---------------------------------------------------------------- Cancel deletion


async def _cancel(deps: Desk, value: str, *, user: str, reply: Reply) -> None:
    request = await _erasure(deps, value, user=user, action="cancel", reply=reply)
    if request is None:
        return
    flow = deps.flow
    kind = kind_of(flow, request)
    too_late = False
    async with flow.locks.hold(request.id):
        current = await flow.store.requests.get(request.id) or request
        if current.status is not RequestStatus.ON_HOLD or not current.task_id or kind is None:
            await reply(say.cannot_cancel(current))
            return
        ids = log_ids(task_id=current.task_id)
        try:
            await flow.prime.cancel_task(kind.operations, current.task_id)
        except PrimeUnavailable as error:
            logger.warning("request %s: cancel not answered by Buy with Prime (%s)", current.id, error.kind, extra=ids)
            await reply(say.cancel_failed(current))
            return
        except PrimeRejected as error:
            if error.reason == TOO_LATE:
                logger.info("request %s: cancel by %s came too late", current.id, user, extra=ids)
                await flow.store.decisions.record_cancel_too_late(current.id, user=user, notices=thread_update())
                too_late = True
            elif error.kind == "ResourceNotFoundError":  # Amazon forgets a cancelled task: an earlier cancel took
                await _cancelled(deps, current, user=user, reply=reply, note="Amazon no longer knows it")
                return
            else:
                logger.warning("request %s: Buy with Prime refused the cancel (%s)", current.id, error.kind, extra=ids)
                await reply(say.cancel_failed(current))
                return
        else:
            await _cancelled(deps, current, user=user, reply=reply)
            return
    if too_late:
        flow.wake_outbox()
        flow.home_changed()
        await reply(say.too_late_to_cancel())
        await advance(flow, request.id)  # Amazon's word now: it may even be done already


async def _cancelled(deps: Desk, request: Request, *, user: str, reply: Reply, note: str = "") -> None:
    flow = deps.flow
    cancelled = await flow.store.decisions.record_cancelled(
        request.id, user=user, note=note, notices=thread_update("cancelled")
    )
    if cancelled is None:
        await reply(say.cannot_cancel(await flow.store.requests.get(request.id) or request))
        return
    logger.info("request %s: cancelled by %s", request.id, user, extra=log_ids(task_id=request.task_id))
    flow.wake_outbox()
    flow.home_changed()
    await reply(say.cancelled_ack(cancelled))


# **Cancel deletion**: during the hold, anyone allowed (the requester too) stops the deletion at Amazon.
on_cancel = _button(_cancel, "erasure cancel")


# ---------------------------------------------------------------- Try again


async def _retry(deps: Desk, value: str, *, user: str, reply: Reply) -> None:
    request = await _erasure(deps, value, user=user, action="retry", reply=reply)
    if request is None:
        return
    flow = deps.flow
    async with flow.locks.hold(request.id):
        current = await flow.store.requests.get(request.id) or request
        if not retryable(current):
            await reply(say.cannot_retry(current))
            return
        why = OPEN_ORDERS if current.status is RequestStatus.FAILED else "the clientToken's window passed"
        detail = f"new task after {why}" + (f" (was task {current.task_id})" if current.task_id else "")
        retried = await flow.store.decisions.retry(
            current.id, user=user, detail=detail, notices=thread_update("retried")
        )
    if retried is None:
        await reply(say.cannot_retry(await flow.store.requests.get(request.id) or request))
        return
    logger.info("request %s: started again by %s", request.id, user)
    flow.wake_outbox()
    flow.home_changed()
    await reply(say.retried_ack(retried))
    await advance(flow, retried.id)


# **Try again**: a new deletion task (a new clientToken) after open orders or a start that timed out.
on_retry = _button(_retry, "erasure retry")
