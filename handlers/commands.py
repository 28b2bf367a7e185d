"""``/data-request``: what staff type, read into one of a few intents (``handlers/intents.py``), then acted on.

Slack wants an answer within 3 seconds. Reading is instant, so a mistake is
answered in the acknowledgement itself; everything slower (authorization,
the thread, the call to Amazon) runs after ``ack()`` in tracked background work.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from core import StoreUnavailable, case_context, mask_email
from handlers import notices, texts
from handlers.deadlines import (
    extension_reminder_at,
    next_reminder_at,
)
from handlers.desk import Desk
from handlers.emails import parse_email
from handlers.guard import allowed, ephemeral_reply, saving
from handlers.intake import received_at
from handlers.intake_form import open_form
from handlers.intents import (
    AGAIN_FLAG,
    NEW_FLAG,
    TOLD_FLAG,
    Close,
    Deny,
    Extend,
    Help,
    Invalid,
    ListOpen,
    OpenForm,
    ShowReport,
    Start,
    Status,
    Verify,
    parse_command,
)
from handlers.lifecycle import Reply, advance, kind_of
from handlers.listing import Page, list_page
from handlers.record.actions import close_case, deny_case, verify_case
from handlers.reporting import show_report
from handlers.texts import casework, record
from handlers.texts.intake import form_failed
from store import Request, behind

__all__ = [
    "Close",
    "Deny",
    "Extend",
    "Help",
    "Invalid",
    "ListOpen",
    "OpenForm",
    "ShowReport",
    "Start",
    "Status",
    "Verify",
    "decide_then_request",
    "handle_command",
    "parse_command",
    "start_in_turn",
]

logger = logging.getLogger(__name__)

LIST_LIMIT = casework.PAGE  # a page of ``list``; **More** shows the next (handlers/listing.py)


async def handle_command(deps: Desk, *, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
    """Answer within Slack's 3 seconds; a new request is stored before it is acknowledged."""
    intent = parse_command(str(command.get("text") or ""), deps.flow.kinds, now=deps.flow.clock())
    if isinstance(intent, Help):
        kinds = [kind.texts for kind in deps.flow.kinds.values()]
        await ack(**texts.help_message(kinds, everyone_allowed=deps.authorizer.everyone_allowed))
        return
    if isinstance(intent, Invalid):
        await ack(**intent.message)
        return
    user, channel = str(command.get("user_id")), str(command.get("channel_id"))
    deps.flow.store.know_name(user, str(command.get("user_name") or ""))
    reply = ephemeral_reply(respond)
    if isinstance(intent, OpenForm):
        await _open_form(deps, ack=ack, command=command, user=user, reply=reply)
        return
    if isinstance(intent, Status):
        await ack()
        deps.background.spawn(saving(_status(deps, intent, user=user, reply=reply), reply=reply), name="command status")
        return
    if isinstance(intent, Extend):
        await ack()
        deps.background.spawn(saving(_extend(deps, intent, user=user, reply=reply), reply=reply), name="command extend")
        return
    if isinstance(intent, ListOpen):
        await ack()
        deps.background.spawn(saving(_list(deps, intent, user=user, reply=reply), reply=reply), name="command list")
        return
    if isinstance(intent, ShowReport):
        await ack()
        deps.background.spawn(
            saving(show_report(deps, intent.year, user=user, reply=reply), reply=reply), name="command report"
        )
        return
    if isinstance(intent, Verify | Deny | Close):
        await ack()
        work = _keep_record(deps, intent, user=user, reply=reply)
        deps.background.spawn(saving(work, reply=reply), name="command record")
        return
    decision = deps.authorizer.known(user)  # never waits: nothing before ack() may wait on the network
    if decision is None:  # the allowed group's members are not known yet: answer first, decide after
        await ack(**texts.checking_access())
        deps.background.spawn(
            saving(decide_then_request(deps, intent, user=user, channel=channel, reply=reply), reply=reply),
            name="command request",
        )
        return
    if not decision.allowed:
        await ack(**texts.not_allowed(decision.reason))
        await _audit_refusal(deps, user)
        return
    try:
        request, created = await _save(deps, intent, user=user, channel=channel)
    except StoreUnavailable:
        logger.warning("a request by %s was not saved: the database refused the write", user)
        await ack(**texts.cannot_save())
        return
    await ack()
    _follow_up(deps, request, created, user=user, reply=reply)


async def _open_form(deps: Desk, *, ack: AsyncAck, command: dict[str, Any], user: str, reply: Reply) -> None:
    """A bare command: the new-request form, for this channel; one known not to be allowed is told so instead."""
    decision = deps.authorizer.known(user)
    if decision is not None and not decision.allowed:
        await ack(**texts.not_allowed(decision.reason))
        await _audit_refusal(deps, user)
        return
    await ack()
    trigger, channel = str(command.get("trigger_id") or ""), str(command.get("channel_id"))
    if not await open_form(deps, trigger_id=trigger, channel=channel, response_url=command.get("response_url")):
        await reply({"text": form_failed()})


async def decide_then_request(deps: Desk, intent: Start, *, user: str, channel: str, reply: Reply) -> None:
    """Decide, then store and start as usual: the command's cold-cache path (acknowledged already), and the form's."""
    decision = await deps.authorizer.check(user)
    if not decision.allowed:
        await _audit_refusal(deps, user)
        await reply(texts.not_allowed(decision.reason))
        return
    request, created = await _save(deps, intent, user=user, channel=channel)
    _follow_up(deps, request, created, user=user, reply=reply)


async def _save(deps: Desk, intent: Start, *, user: str, channel: str) -> tuple[Request, bool]:
    """Store the request (or find the open or recent one for this shopper) before anything is sent anywhere."""
    now = deps.flow.clock()
    facts = intent.intake
    deadline = intent.deadline.resolve(received_at(facts.received_on, now=now), default_days=deps.deadline_days)
    received_on = facts.received_on.isoformat() if facts.received_on else time.strftime("%Y-%m-%d", time.gmtime(now))
    extension_at = extension_reminder_at(deadline=deadline.label, received_on=received_on, told=False)
    kind = deps.flow.kinds[intent.kind]
    params = {**deps.kind_defaults.get(intent.kind, {}), **intent.params}
    notes = [kind.note(params)]
    if intent.force_new:
        notes.append(f"{NEW_FLAG}: another request for this shopper was open or recent")
    return await deps.flow.store.requests.create(
        kind=intent.kind,
        email=intent.email,
        email_masked=mask_email(intent.email),
        requester=user,
        channel=channel,
        due_at=deadline.due_at,
        deadline=deadline.label,
        first_reminder_at=next_reminder_at(deadline.due_at, set(), extension_at=extension_at),
        params=params,
        duplicate_window=None if intent.force_new else kind.duplicate_window,
        note="; ".join(note for note in notes if note),
        notices=[notices.opener()],
        received_on=received_on,
        received_via=facts.via.value if facts.via else None,
        outside_ref=facts.outside_ref,
        verified_how=facts.verified_how.value if facts.verified_how else None,
    )


def _follow_up(deps: Desk, request: Request, created: bool, *, user: str, reply: Reply) -> None:
    with case_context(request_id=request.id):  # this line, and the work it starts
        if created:
            logger.info("request %s: created by %s in %s", request.id, user, request.channel)
            deps.background.spawn(behind(start_in_turn(deps, request.id, reply=reply)), name="command start")
        else:
            deps.background.spawn(_duplicate(deps, request, user=user, reply=reply), name="command duplicate")


async def _audit_refusal(deps: Desk, user: str) -> None:
    try:
        await deps.flow.store.audit.append(request_id=None, actor=user, action="refused", detail="request: not allowed")
    except StoreUnavailable:  # the refusal stands; the log keeps what the audit log could not
        logger.warning("refused a request by %s (not allowed); the audit entry could not be saved", user)


async def start_in_turn(deps: Desk, request_id: int, *, reply: Reply | None = None) -> None:
    """Take a new request as far as it goes (its thread, its start at Amazon) in one of the start slots.

    Whoever sets it off, a command or the outbox having opened the thread first: every start waits for
    a slot, so a burst never runs more than the slots' starts beside the foreground; and a slot that comes
    while a request is being answered waits for it (given back meanwhile: ``Foreground.turn``).
    """
    async with deps.flow.foreground.turn(deps.starts.slots):
        await advance(deps.flow, request_id, reply=reply)


async def _duplicate(deps: Desk, existing: Request, *, user: str, reply: Reply) -> None:
    await deps.flow.store.audit.append(
        request_id=existing.id,
        actor=user,
        action="refused",
        detail=f"{existing.kind}: duplicate of an open or recent request",
    )
    kind = deps.flow.kinds[existing.kind]  # a duplicate is one of the kind just asked for
    permalink = await deps.permalink(existing)
    await reply(texts.duplicate_request(existing, kind.texts, window=kind.duplicate_window, permalink=permalink))


async def _find(deps: Desk, query: str) -> tuple[Request | None, str]:
    """The newest request for an email, the request of a task id, or the newest with that outside reference;
    and how to name what was asked."""
    email = parse_email(query)
    if email is not None:
        found = await deps.flow.store.requests.for_email(email)
        return (found[0] if found else None), f"`{mask_email(email)}`"
    by_task = await deps.flow.store.requests.for_task(query)
    if by_task is not None:
        return by_task, "that task id"
    return await deps.flow.store.requests.for_outside_ref(query), "that task id or reference"


async def _status(deps: Desk, intent: Status, *, user: str, reply: Reply) -> None:
    if not await allowed(deps, user, action="status", reply=reply):
        return
    request, what = await _find(deps, intent.query)
    kind = kind_of(deps.flow, request) if request is not None else None
    if request is None or kind is None:
        await reply(texts.unknown_request(what))
        return
    if request.status.unfinished or request.status in kind.ask_amazon:  # Amazon's word now, where it may move it
        request = await advance(deps.flow, request.id) or request
    await deps.flow.store.audit.append(request_id=request.id, actor=user, action="status viewed")
    notes = record.notes_lines(await deps.flow.store.verdicts.notes(request.id))
    message = texts.status_message(
        request, kind.texts, permalink=await deps.permalink(request), now=deps.flow.clock(), notes=notes
    )
    await reply(message)


async def _extend(deps: Desk, intent: Extend, *, user: str, reply: Reply) -> None:
    request, what = await _find(deps, intent.query)
    if not await allowed(deps, user, action="extend", reply=reply, request_id=request.id if request else None):
        return
    if request is None:
        await reply(texts.unknown_request(what))
        return
    done = await deps.flow.store.cases.extend_deadline(
        request.id,
        days=intent.days,
        user=user,
        again=intent.again,
        told=intent.told,
        notices=notices.thread_update(),
    )
    if done.outcome == "closed":
        await reply(casework.already_closed(done.request or request))
    elif done.outcome == "not started":
        await reply(casework.cannot_extend_unstarted(done.request or request))
    elif done.outcome == "extended before":
        await reply(casework.extended_before(done, flag=AGAIN_FLAG))
    elif done.outcome == "told" or intent.days is None:
        assert done.request is not None
        await reply(casework.extension_told(done.request))
    else:
        assert done.request is not None
        await reply(casework.deadline_extended(done.request, days=intent.days, told=intent.told, flag=TOLD_FLAG))


async def _keep_record(deps: Desk, intent: Verify | Deny | Close, *, user: str, reply: Reply) -> None:
    """``verify``, ``deny``, ``close``: find the case, check the user may act, then record it."""
    request, what = await _find(deps, intent.query)
    action = {Verify: "verify", Deny: "deny", Close: "close"}[type(intent)]
    if not await allowed(deps, user, action=action, reply=reply, request_id=request.id if request else None):
        return
    if request is None:
        await reply(texts.unknown_request(what))
        return
    with case_context(request_id=request.id):
        if isinstance(intent, Verify):
            await verify_case(deps, request, user=user, method=intent.method, note=intent.note, reply=reply)
        elif isinstance(intent, Deny):
            await deny_case(deps, request, user=user, reason=intent.reason, note=intent.note, reply=reply)
        else:
            await close_case(deps, request, user=user, partly=intent.partly, reply=reply)


async def _list(deps: Desk, intent: ListOpen, *, user: str, reply: Reply) -> None:
    await list_page(deps, Page("all" if intent.whole_team else "mine"), user=user, reply=reply)
