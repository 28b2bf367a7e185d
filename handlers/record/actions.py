"""Keeping the compliance record: the shopper's identity verified, a case denied or closed with its outcome.

The commands (``verify``, ``deny``, ``close``: handlers/commands.py finds the case and checks the user) and
the thread's **Verify identity** and **Deny** buttons (each opens a form; what was typed is checked in the
form, beside its field, before anything is saved) end in the same three decisions here. Each is one store
intent: the change, its audit entry and the thread's update commit together.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError

from core import DenialReason, Outcome
from handlers import notices
from handlers.buttons import submitted
from handlers.desk import Desk
from handlers.guard import Clicked, about_request, clicked_by, clicked_request, form_reply, request_button, saving
from handlers.lifecycle import Reply, kind_of
from handlers.record.rules import close_outcome, denial_target, method_named, note_problem, reason_named
from handlers.slack_errors import slack_error_code
from handlers.texts import casework
from handlers.texts import record as words
from store import Request, RequestStatus

__all__ = ["close_case", "deny_case", "on_deny", "on_deny_submitted", "on_verify", "on_verify_submitted", "verify_case"]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------- the decisions


async def verify_case(deps: Desk, request: Request, *, user: str, method: str, note: str, reply: Reply) -> None:
    """Record that ``user`` verified the shopper's identity by ``method``, once, while the case is open."""
    done = await deps.flow.store.verdicts.verify(
        request.id, user=user, method=method, note=note, notices=notices.thread_update("verified")
    )
    if not done.moved or done.request is None:
        await reply(words.cannot_verify(done.request or request))
        return
    logger.info("request %s: identity verified by %s (%s)", request.id, user, method)  # never the note
    await reply(words.verified_ack(done.request))


async def deny_case(deps: Desk, request: Request, *, user: str, reason: str, note: str, reply: Reply) -> None:
    """Close the case as denied for ``reason``, where its kind allows it; an erasure not approved yet ends unstarted."""
    flow = deps.flow
    async with flow.locks.hold(request.id):  # Approve decides under the same lock: one of the two wins
        current = await flow.store.requests.get(request.id) or request
        kind = kind_of(flow, current)
        deniable = kind.texts.deniable if kind is not None else frozenset()
        if current.closed_at is not None or current.status is RequestStatus.NEW or current.status not in deniable:
            await reply(words.cannot_deny(current))
            return
        done = await flow.store.verdicts.deny(
            current.id,
            user=user,
            reason=reason,
            note=note,
            from_=current.status,
            to=denial_target(current.status),
            notices=notices.thread_update("denied"),
        )
    if not done.moved or done.request is None:
        await reply(words.cannot_deny(done.request or current))
        return
    logger.info("request %s: denied by %s (%s)", request.id, user, reason)  # never the note
    await reply(words.denied_ack(done.request))


async def close_case(deps: Desk, request: Request, *, user: str, partly: bool, reply: Reply) -> None:
    """The shopper has their answer: close the case with its outcome (no data, complied, or complied in part)."""
    outcome = close_outcome(request, partly=partly)
    closed, changed = await deps.flow.store.cases.close(
        request.id, user=user, notices=notices.thread_update(), outcome=outcome
    )
    if changed and closed is not None:
        await reply(casework.closed_ack(closed) if outcome is Outcome.COMPLIED else words.closed_ack(closed))
    elif closed is not None and closed.closed_at is not None:
        await reply(casework.already_closed(closed))
    else:
        await reply(casework.cannot_close_yet(request))


# ----------------------------------------------------------------- the buttons and their forms


async def _open_form(deps: Desk, click: Clicked, view: dict[str, Any], *, what: str) -> None:
    """Open ``view`` with the click's trigger id (it lives 3 seconds, so nothing slow comes before)."""
    trigger = str(click.body.get("trigger_id") or "")
    try:
        await deps.slack.views_open(trigger_id=trigger, view=view)
    except (SlackApiError, OSError, TimeoutError) as error:
        code = slack_error_code(error) if isinstance(error, SlackApiError) else type(error).__name__
        logger.warning("request %s: the %s form did not open (%s)", click.request.id, what, code)
        await click.reply({"text": f"Slack did not open the {what} form; click *{what}* again."})


@request_button(action="verify", name="record verify")
async def on_verify(deps: Desk, click: Clicked) -> None:
    """**Verify identity**: ask how in a form, unless there is nothing to record."""
    request = click.request
    if request.verified_at is not None or request.closed_at is not None or request.status.never_started:
        await click.reply(words.cannot_verify(request))
        return
    await _open_form(deps, click, words.verify_view(request), what="Verify identity")


@request_button(action="deny", name="record deny")
async def on_deny(deps: Desk, click: Clicked) -> None:
    """**Deny**: ask why in a form, unless the case cannot be denied now."""
    request = click.request
    kind = kind_of(deps.flow, request)
    deniable = kind.texts.deniable if kind is not None else frozenset()
    if request.closed_at is not None or request.status is RequestStatus.NEW or request.status not in deniable:
        await click.reply(words.cannot_deny(request))
        return
    await _open_form(deps, click, words.deny_view(request), what="Deny")


def _typed(view: dict[str, Any], block: str) -> str:
    """What was typed into, or chosen in, the form's input ``block`` ("" when nothing)."""
    state = (((view.get("state") or {}).get("values") or {}).get(block) or {}).get(block) or {}
    chosen = state.get("selected_option") or {}
    return str(chosen.get("value") or state.get("value") or "").strip()


async def on_verify_submitted(deps: Desk, *, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
    """The Verify identity form sent: a method it does not know or an unfit note is answered beside its field."""
    method, note = method_named(_typed(view, "method")), _typed(view, "note")
    errors = {}
    if method is None:
        errors["method"] = "Choose how the shopper's identity was verified."
    if (problem := note_problem(note)) is not None:
        errors["note"] = words.note_refused(problem)
    if errors or method is None:
        await ack(response_action="errors", errors=errors)
        return
    how, said = method.value, " ".join(note.split())

    async def record(request: Request, user: str, reply: Reply) -> None:
        await verify_case(deps, request, user=user, method=how, note=said, reply=reply)

    await _act_on_form(deps, ack=ack, body=body, view=view, action="verify", act=record)


async def on_deny_submitted(deps: Desk, *, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
    """The Deny form sent: no reason, an unfit note, or ``other`` without one is answered beside its field."""
    reason, note = reason_named(_typed(view, "reason")), _typed(view, "note")
    errors = {}
    if reason is None:
        errors["reason"] = "Choose why the request is denied."
    if (problem := note_problem(note, needed=reason is DenialReason.OTHER)) is not None:
        errors["note"] = words.note_refused(problem)
    if errors or reason is None:
        await ack(response_action="errors", errors=errors)
        return
    why, said = reason.value, " ".join(note.split())

    async def record(request: Request, user: str, reply: Reply) -> None:
        await deny_case(deps, request, user=user, reason=why, note=said, reply=reply)

    await _act_on_form(deps, ack=ack, body=body, view=view, action="deny", act=record)


async def _act_on_form(
    deps: Desk,
    *,
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    action: str,
    act: Callable[[Request, str, Reply], Awaitable[None]],
) -> None:
    """A valid form: closed at once, then ``act`` on its case in the background, once the clicker may."""
    await ack()
    user = clicked_by(deps, body)
    form = submitted(str(view.get("private_metadata") or ""))
    reply = form_reply(deps, form.thread, user)

    async def on_its_case() -> None:
        request = await clicked_request(deps, form, user=user, action=action, reply=reply)
        if request is not None:
            await act(request, user, reply)

    with about_request(form):
        deps.background.spawn(saving(on_its_case(), reply=reply), name=f"record {action}")
