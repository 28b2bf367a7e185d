"""``/data-request``: what staff type, read into one of a few intents, then acted on.

Slack wants an answer within 3 seconds. Parsing is instant, so a mistake is
answered in the acknowledgement itself; everything slower (authorization,
the thread, the call to Amazon) runs after ``ack()`` in tracked background work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from core import StoreUnavailable, case_context, mask_email
from handlers import notices, texts
from handlers.deadlines import (
    JURISDICTIONS,
    DeadlineSpec,
    extension_reminder_at,
    next_reminder_at,
    parse_deadline_days,
)
from handlers.desk import Desk
from handlers.emails import parse_email
from handlers.guard import allowed, ephemeral_reply, saving
from handlers.intake import FLAGS, Intake, Refused, add_fact, received_at
from handlers.intake_form import open_form
from handlers.kinds import KindFlow
from handlers.lifecycle import Reply, advance, kind_of
from handlers.listing import Page, list_page
from handlers.record.actions import close_case, deny_case, verify_case
from handlers.record.verbs import RECORD_VERBS, Close, Deny, Verify, parse_record
from handlers.reporting import parse_year, show_report
from handlers.texts import casework, record
from handlers.texts import figures as figures_texts
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

NEW_FLAG = "--new"
AGAIN_FLAG = "--again"  # extend a deadline that was extended before (CCPA allows one extension)
TOLD_FLAG = "--told"  # the shopper was told of the extension (GDPR and CCPA both require telling them)
DEADLINE_FLAG = "--deadline"
LIST_LIMIT = casework.PAGE  # a page of ``list``; **More** shows the next (handlers/listing.py)


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Start:
    """A new request of ``kind`` for the shopper at ``email``; ``params`` are the kind's own options."""

    email: str
    kind: str
    force_new: bool = False
    deadline: DeadlineSpec = field(default_factory=DeadlineSpec)
    params: Mapping[str, str] = field(default_factory=dict)
    intake: Intake = field(default_factory=Intake)


@dataclass(frozen=True, slots=True)
class OpenForm:
    """A bare ``/data-request``: the new-request form."""


@dataclass(frozen=True, slots=True)
class Status:
    query: str


@dataclass(frozen=True, slots=True)
class Extend:
    """Extend a case's deadline by ``days`` (None: only record that the shopper was ``told``)."""

    query: str
    days: int | None
    again: bool = False
    told: bool = False


@dataclass(frozen=True, slots=True)
class ListOpen:
    whole_team: bool = False


@dataclass(frozen=True, slots=True)
class ShowReport:
    """The figures for the cases received in ``year`` (None: this year)."""

    year: int | None = None


@dataclass(frozen=True, slots=True)
class Invalid:
    message: texts.Message


Intent = Help | OpenForm | Start | Status | Extend | ListOpen | ShowReport | Verify | Deny | Close | Invalid


def parse_command(text: str, kinds: Mapping[str, KindFlow], *, now: float | None = None) -> Intent:
    """Read the command's text into what the user meant; a new request's kind is its first word's.

    ``now`` is the clock's time, for what is read against today (``--received``); no text at all opens the form.
    """
    now = time.time() if now is None else now
    words = text.split()
    if not words:
        return OpenForm()
    first = words[0].lower()
    if first in ("help", "-h", "--help"):
        return Help()
    if first == "status":
        if len(words) != 2:
            return Invalid(texts.usage_error("`status` takes one email, task id or ticket reference."))
        return Status(words[1])
    if first == "extend":
        flags = {word.lower() for word in words[1:]} & {AGAIN_FLAG, TOLD_FLAG}
        rest = [word for word in words[1:] if word.lower() not in (AGAIN_FLAG, TOLD_FLAG)]
        again, told = AGAIN_FLAG in flags, TOLD_FLAG in flags
        if told and not again and len(rest) == 1:
            return Extend(rest[0], None, told=True)
        days = parse_deadline_days(rest[1]) if len(rest) == 2 else None
        if days is None:
            return Invalid(
                texts.usage_error(
                    f"`extend` takes an email or task id and a number of days, like `45d` (and `{AGAIN_FLAG}` "
                    f"for a second extension, `{TOLD_FLAG}` once the shopper is told of it)."
                )
            )
        return Extend(rest[0], days, again=again, told=told)
    if first == "list":
        if len(words) > 2 or (len(words) == 2 and words[1].lower() != "all"):
            return Invalid(texts.usage_error("`list` shows your open requests; `list all` shows the team's."))
        return ListOpen(whole_team=len(words) == 2)
    if first == "report":
        year = parse_year(words[1]) if len(words) == 2 else None
        if len(words) > 2 or (len(words) == 2 and year is None):
            return Invalid({"text": figures_texts.report_usage()})
        return ShowReport(year)
    if first in RECORD_VERBS:
        parsed = parse_record(first, words[1:])
        return parsed if isinstance(parsed, Verify | Deny | Close) else Invalid(parsed)
    by_verb = {kind.verb: kind for kind in kinds.values()}
    if first in by_verb:
        return _parse_start(words[1:], by_verb[first], now=now)
    return _parse_start(words, by_verb[None], now=now)


def _parse_start(words: list[str], kind: KindFlow, *, now: float) -> Intent:
    """A new request: the kind's own options first, then what every kind shares (flags, deadline, intake, email)."""
    verb = kind.verb  # a mistake is answered with an example of this kind's command
    own = kind.options(words)
    if isinstance(own, str):
        return Invalid(texts.usage_error(own, verb=verb))
    params, words = own
    force_new, jurisdiction, days, addresses = False, None, None, []
    intake = Intake()
    rest = iter(words)
    for word in rest:
        lowered = word.lower()
        if lowered == NEW_FLAG:
            force_new = True
        elif lowered == DEADLINE_FLAG:
            days = parse_deadline_days(next(rest, ""))
            if days is None:
                return Invalid(texts.usage_error(f"`{DEADLINE_FLAG}` takes {texts.DAYS_TAKEN}, like `45d`.", verb=verb))
        elif lowered in FLAGS:
            read = add_fact(intake, lowered, next(rest, ""), now=now)
            if isinstance(read, Refused):
                return Invalid(texts.usage_error(read.words, verb=verb))
            intake = read
        elif lowered in JURISDICTIONS:
            jurisdiction = lowered
        elif word.startswith("--"):
            return Invalid(texts.unknown_option(word, verb=verb))
        else:
            addresses.append(word)
    if len(addresses) != 1:
        return Invalid(texts.usage_error("Give one shopper email per request.", verb=verb))
    if jurisdiction and days:
        return Invalid(texts.usage_error(f"Give either `{jurisdiction}` or `{DEADLINE_FLAG}`, not both.", verb=verb))
    email = parse_email(addresses[0])
    if email is None:
        return Invalid(texts.invalid_email(addresses[0], verb=verb))
    deadline = DeadlineSpec(jurisdiction=jurisdiction, days=days)
    return Start(email, kind=kind.kind, force_new=force_new, deadline=deadline, params=params, intake=intake)


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
    a slot, so a burst never runs more than the slots' starts beside the foreground.
    """
    async with deps.starts.slots:
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
