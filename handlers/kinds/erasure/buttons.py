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
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError

from core import PrimeRejected, PrimeUnavailable, RequestKind, log_ids
from handlers import texts
from handlers.buttons import Pressed, submitted
from handlers.desk import Desk
from handlers.guard import Clicked, about_request, clicked_by, clicked_request, form_reply, request_button
from handlers.kinds.erasure import answers as say
from handlers.kinds.erasure.rules import OPEN_ORDERS, hold_past_due, reason_problem, retryable
from handlers.lifecycle import Reply, advance, kind_of
from handlers.notices import thread_update
from handlers.record.rules import unverified
from handlers.slack_errors import slack_error_code
from handlers.texts import record
from store import Request, RequestStatus

__all__ = ["on_approve", "on_cancel", "on_reject", "on_reject_submitted", "on_retry"]

logger = logging.getLogger(__name__)

TOO_LATE = "CannotCancelPersonalDataDeletionTask"  # Amazon's classification code: the hold is over
NOT_FOUND = "ResourceNotFoundError"  # Amazon's classification type: it knows no such task


# ---------------------------------------------------------------- Approve


@request_button(action="approve", name="erasure approve", kind=RequestKind.ERASURE)
async def on_approve(deps: Desk, click: Clicked) -> None:
    """**Approve**: an allowed person other than the requester lets the erasure start at Amazon (once the
    shopper's identity is recorded as verified, with IDENTITY_VERIFICATION=required)."""
    request, user, reply = click.request, click.user, click.reply
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
        if unverified(current, required=deps.verification_required):
            await flow.store.audit.append(
                request_id=current.id, actor=user, action="refused", detail="approve: identity not verified"
            )
            await reply(record.approve_unverified(current))
            return
        longest = hold_past_due(current, at=flow.clock())  # told, not refused: the approver may go on
        told = thread_update("hold_past_due" if longest is not None else None)
        approved = await flow.store.decisions.approve(current.id, user=user, notices=told)
    if not approved.moved or approved.request is None:
        await reply(say.already_decided(approved.request or current))
        return
    logger.info("request %s: approved by %s", request.id, user)
    await reply(say.approved_ack(approved.request, longest_hold=longest))
    await advance(flow, request.id)  # the start, with the stored clientToken; a crash here resumes it


# ---------------------------------------------------------------- Reject


@request_button(action="reject", name="erasure reject", kind=RequestKind.ERASURE)
async def on_reject(deps: Desk, click: Clicked) -> None:
    """**Reject**: ask why in a modal (opened with the click's trigger id, which lives 3 seconds)."""
    request, reply = click.request, click.reply
    trigger = str(click.body.get("trigger_id") or "")
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
    problem = reason_problem(reason)
    if problem is not None:
        await ack(response_action="errors", errors={"reason": say.reason_refused(problem)})
        return
    await ack()
    user = clicked_by(deps, body)
    form = submitted(str(view.get("private_metadata") or ""))
    with about_request(form):
        deps.background.spawn(_reject(deps, form, user=user, reason=" ".join(reason.split())), name="erasure rejected")


async def _reject(deps: Desk, form: Pressed, *, user: str, reason: str) -> None:
    flow = deps.flow
    reply = form_reply(deps, form.thread, user)
    request = await clicked_request(deps, form, user=user, action="reject", reply=reply, kind=RequestKind.ERASURE)
    if request is None:
        return
    async with flow.locks.hold(request.id):
        rejected = await flow.store.decisions.reject(
            request.id, user=user, reason=reason, notices=thread_update("rejected_by_staff")
        )
    if not rejected.moved or rejected.request is None:
        await reply(say.already_decided(rejected.request or request))
        return
    logger.info("request %s: rejected by %s", request.id, user)  # never the reason: staff's free text
    await reply(say.rejected_ack(rejected.request))


# ---------------------------------------------------------------- Cancel deletion


@request_button(action="cancel", name="erasure cancel", kind=RequestKind.ERASURE)
async def on_cancel(deps: Desk, click: Clicked) -> None:
    """**Cancel deletion**: during the hold, anyone allowed (the requester too) stops the deletion at Amazon."""
    request, user, reply = click.request, click.user, click.reply
    flow = deps.flow
    kind = kind_of(flow, request)
    answer: texts.Message  # when Amazon did not cancel: told after the lock, then Amazon's word on the task now
    async with flow.locks.hold(request.id):
        current = await flow.store.requests.get(request.id) or request
        if current.status is not RequestStatus.ON_HOLD or not current.task_id or kind is None:
            await reply(say.cannot_cancel(current))
            return
        ids = log_ids(task_id=current.task_id)
        earlier = await flow.store.decisions.mark_cancel_sent(current.id)  # durable before the call goes out
        try:
            await flow.prime.cancel_task(kind.operations, current.task_id)
        except PrimeUnavailable as error:
            logger.warning("request %s: cancel not answered by Buy with Prime (%s)", current.id, error.kind, extra=ids)
            if not error.reached and earlier is None:
                await flow.store.decisions.clear_cancel_sent(current.id)
            await reply(say.cancel_failed(current))
            return
        except PrimeRejected as error:
            if error.reason == TOO_LATE:
                logger.info("request %s: cancel by %s came too late", current.id, user, extra=ids)
                await flow.store.decisions.record_cancel_too_late(current.id, user=user, notices=thread_update())
                answer = say.too_late_to_cancel()
            elif error.kind == NOT_FOUND and (earlier is not None or error.earlier_reached):
                # Amazon forgets a cancelled task: a cancel of ours that may have reached it took.
                await _cancelled(deps, current, user=user, reply=reply, note="Amazon no longer knows it")
                return
            elif error.kind == NOT_FOUND:  # no cancel of ours can explain it: the task may still run
                logger.warning("request %s: Buy with Prime does not know the held task", current.id, extra=ids)
                detail = f"task {current.task_id} ({NOT_FOUND})"
                await flow.store.decisions.record_cancel_unconfirmed(current.id, user=user, detail=detail)
                answer = say.cancel_not_confirmed(current)
            else:
                logger.warning("request %s: Buy with Prime refused the cancel (%s)", current.id, error.kind, extra=ids)
                if earlier is None:
                    await flow.store.decisions.clear_cancel_sent(current.id)
                await reply(say.cancel_failed(current))
                return
        else:
            await _cancelled(deps, current, user=user, reply=reply)
            return
    await reply(answer)
    await advance(flow, request.id)  # it may be deleting, or even done already; the reconciler goes on after


async def _cancelled(deps: Desk, request: Request, *, user: str, reply: Reply, note: str = "") -> None:
    flow = deps.flow
    cancelled = await flow.store.decisions.record_cancelled(
        request.id, user=user, note=note, notices=thread_update("cancelled")
    )
    if not cancelled.moved or cancelled.request is None:
        await reply(say.cannot_cancel(cancelled.request or request))
        return
    logger.info("request %s: cancelled by %s", request.id, user, extra=log_ids(task_id=request.task_id))
    await reply(say.cancelled_ack(cancelled.request))


# ---------------------------------------------------------------- Try again


@request_button(action="retry", name="erasure retry", kind=RequestKind.ERASURE)
async def on_retry(deps: Desk, click: Clicked) -> None:
    """**Try again**: a new deletion task (a new clientToken) after open orders or a start that timed out."""
    request, user, reply = click.request, click.user, click.reply
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
    if not retried.moved or retried.request is None:
        await reply(say.cannot_retry(retried.request or current))
        return
    logger.info("request %s: started again by %s", request.id, user)
    await reply(say.retried_ack(retried.request))
    await advance(flow, request.id)
