"""What staff see about cases as a whole: reminders, closing, their lists and the Home tab."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from handlers.buttons import HOME_MORE_ACTION, LIST_MORE_ACTION
from handlers.deadlines import DAY, EXTENSION_REMINDER, REMINDERS, first_month_end
from handlers.figures import Report
from handlers.texts import COMMAND, Message, facts
from handlers.texts.blocks import Block, actions, button, context, divider, header, home, section, sections
from handlers.texts.figures import figures_blocks
from handlers.texts.mrkdwn import date, subject
from store import Extension, Request, RequestStatus

__all__ = [
    "PAGE",
    "already_closed",
    "cannot_close_yet",
    "cannot_extend_unstarted",
    "closed_ack",
    "deadline_extended",
    "extended_before",
    "extension_told",
    "home_view",
    "list_cannot_continue",
    "open_cases_message",
    "reminder_message",
]

_BEFORE = dict(REMINDERS)  # a reminder's name -> seconds before the due date


def reminder_message(request: Request, when: str, *, extension: bool = False) -> Message:
    """A thread reply that nudges the requester before (or at) the due date (``when``: a ``REMINDERS`` name, or
    ``EXTENSION_REMINDER``); ``extension`` adds that an extension must be told to the shopper within the month."""
    due = date(request.due_at, "the due date", time=False)
    told = _extension_words(request)
    if when == EXTENSION_REMINDER:
        text = f":calendar: <@{request.requester}> {told}"
        return {"text": text, "blocks": [section(text), context(f"Deadline: {request.deadline}.")]}
    days = _BEFORE[when] / DAY
    if request.status is RequestStatus.AWAITING_APPROVAL:  # nobody has decided yet: that is what is late
        due_in = f"in {days:.0f} days" if days else "today"
        text = (
            f":alarm_clock: <@{request.requester}> Reminder: this request still waits for another person's "
            f"approval, and the answer to the shopper is due {due_in} ({due}). Ask an allowed colleague to "
            "*Approve* or *Reject* it."
        )
    elif not days:
        text = (
            f":rotating_light: <@{request.requester}> The answer to this shopper is due today ({due}) and not sent yet."
        )
    else:
        text = (
            f":alarm_clock: <@{request.requester}> Reminder: the answer to this shopper is due in {days:.0f} days"
            f" ({due})."
        )
    if extension:
        text = f"{text}\n{told}"
    return {
        "text": text,
        "blocks": [
            section(text),
            context(
                f"Deadline: {request.deadline}. Close the case with its thread's *Mark as …* button when the shopper"
                " has their answer."
            ),
        ],
    }


def _extension_words(request: Request) -> str:
    """GDPR's rule on extensions, said for this case: the shopper must be told by the end of the first month."""
    month_end = date(first_month_end(request.received_on), "the end of the first month", time=False)
    return (
        f"GDPR: if this answer needs longer than a month, the shopper must be told of the extension and why "
        f"by {month_end}, the end of its first month. Tell them, then record it with "
        f"`{COMMAND} extend <email or task id> 60d --told` (GDPR allows up to two more months)."
    )


def deadline_extended(request: Request, *, days: int, told: bool = False, flag: str = "--told") -> Message:
    due = date(request.due_at, "the new due date", time=False)
    then = (
        "Recorded that the shopper was told of the extension."
        if told
        else "Tell the shopper about the extension and why, then record it: "
        f"`{COMMAND} extend <email or task id> {flag}`."
    )
    return {
        "text": (
            f"Extended by {days} days: the answer to `{request.email_masked}` is now due {due}. "
            f"Reminders start over from the new date. {then}"
        )
    }


def extension_told(request: Request) -> Message:
    return {
        "text": (
            f"Recorded: the shopper of `{request.email_masked}` was told of the extension "
            f"{date(request.extension_told_at or 0, 'now')}. The audit log keeps who and when."
        )
    }


def cannot_extend_unstarted(request: Request) -> Message:
    state = "was never started" if request.status.never_started else "has not started yet"
    return {
        "text": (
            f"The request for `{request.email_masked}` {state} at Buy with Prime, so it has no deadline to extend. "
            "Nothing changed."
        )
    }


def extended_before(extension: Extension, *, flag: str) -> Message:
    when = date(extension.before_at or 0, "earlier", time=False)
    return {
        "text": (
            f"This request's deadline was already extended (by <@{extension.before_by}> {when}), and CCPA allows "
            f"one extension. Nothing changed. To extend it again anyway, add `{flag}`: "
            f"`{COMMAND} extend <email or task id> 45d {flag}` (the audit log records it)."
        )
    }


def closed_ack(request: Request) -> Message:
    return {"text": f"Closed: the request for `{request.email_masked}` is marked as answered. Reminders stop."}


def already_closed(request: Request) -> Message:
    when = date(request.closed_at or 0, "earlier")
    return {"text": f"This case was already closed by <@{request.closed_by}> {when}. Nothing changed."}


def cannot_close_yet(request: Request) -> Message:
    return {
        "text": (
            "This request has not ended at Buy with Prime yet, so there is no answer to send. "
            "It can be closed once it is done, cancelled or has failed "
            f"(`{COMMAND} status` shows where it stands)."
        )
    }


def _case_line(request: Request, now: float, permalink: str | None, nouns: Mapping[str, str]) -> str:
    overdue = now >= request.due_at
    flag = ":rotating_light: *overdue* " if overdue else ""
    thread = f" · <{permalink}|thread>" if permalink else ""
    noun = nouns.get(request.kind, request.kind)
    return (
        f"{flag}{noun} · {subject(request)} · {request.status.value.replace('_', ' ').lower()}"
        f" · by <@{request.requester}>"
        f" · due {date(request.due_at, 'soon', time=False)}{thread}"
    )


PAGE = 20  # cases per page: a list message stays under Slack's 50 blocks, the Home tab's two under its 100


def _page_blocks(
    cases: list[Request],
    *,
    start: int,
    more: str | None,
    total: int | None,
    action_id: str,
    now: float,
    links: dict[int, str],
    nouns: Mapping[str, str] | None,
) -> list[Block]:
    """One page of cases in as few sections as fit (none cut), then where the page stands in the list.

    ``more`` is the **More** button's value (the next page's cursor) when there is a next page, and
    ``total`` how many there are in all; without a next page the page says it is the last, so a reader
    never wonders what was left out.
    """
    blocks = sections(f"• {_case_line(r, now, links.get(r.id), nouns or {})}" for r in cases)
    shown = f"{start + 1}–{start + len(cases)}"
    if more is not None:
        of = f" of {total}" if total is not None else ""
        blocks.append(context(f"Showing {shown}{of}, overdue first, then by due date. *More* shows the next {PAGE}."))
        block_id = f"{action_id}_{more.split(':', 1)[0]}"  # one per listing: the Home tab has two
        blocks.append(actions(block_id, button("More", action_id=action_id, value=more)))
    elif start:
        blocks.append(context(f"Showing {shown}: that is the last page."))
    else:
        blocks.append(context(f"Showing all {len(cases)}, overdue first, then by due date."))
    return blocks


def open_cases_message(
    cases: list[Request],
    *,
    whole_team: bool,
    more: str | None,
    now: float,
    start: int = 0,
    total: int | None = None,
    permalinks: dict[int, str] | None = None,
    nouns: Mapping[str, str] | None = None,
) -> Message:
    """The answer to ``list`` (and to its **More**): a page of open cases, overdue first, for the asker alone."""
    whose = "The team's" if whole_team else "Your"
    if not cases:
        text = f"{whose} open data requests: none. :tada:" if not start else f"{whose} open data requests: no more."
        return {"text": text}
    links = permalinks or {}
    page = _page_blocks(
        cases, start=start, more=more, total=total, action_id=LIST_MORE_ACTION, now=now, links=links, nouns=nouns
    )
    blocks: list[Block] = [section(f"*{whose} open data requests*"), *page]
    return {"text": f"{whose} open data requests: {start + 1}–{start + len(cases)}", "blocks": blocks}


def list_cannot_continue() -> Message:
    """A **More** button whose value is not one the bot made."""
    return {"text": f"That list cannot be continued: `{COMMAND} list` or `{COMMAND} list all` starts it again."}


def home_view(
    mine: list[Request],
    team: list[Request] | None,
    *,
    now: float,
    permalinks: dict[int, str],
    mine_more: str | None = None,
    team_more: str | None = None,
    mine_start: int = 0,
    team_start: int = 0,
    mine_total: int | None = None,
    team_total: int | None = None,
    nouns: Mapping[str, str] | None = None,
    figures: Report | None = None,
    answered: Sequence[Request] = (),
) -> dict[str, Any]:
    """The Home tab: a page of the viewer's open cases and, for allowed users, of the team's; overdue first; then
    the viewer's last ``answered`` cases with the nature of each answer.

    ``*_total``: how many there are in all, when there is more than the page (the page says so).
    ``figures``: this year's (for allowed users), below the lists.
    """

    def listing(cases: list[Request], empty: str, *, more: str | None, start: int, total: int | None) -> list[Block]:
        if not cases:
            return [context(empty if not start else "No more.")]
        return _page_blocks(
            cases,
            start=start,
            more=more,
            total=total,
            action_id=HOME_MORE_ACTION,
            now=now,
            links=permalinks,
            nouns=nouns,
        )

    blocks: list[Block] = [
        header("Shopper data requests"),
        section("*Your open requests*"),
        *listing(mine, "You have no open requests.", more=mine_more, start=mine_start, total=mine_total),
    ]
    if team is not None:
        blocks += [
            divider(),
            section("*The team's open requests*"),
            *listing(team, "No open requests.", more=team_more, start=team_start, total=team_total),
        ]
    if answered:
        nouns_ = nouns or {}
        blocks += [
            divider(),
            section("*Your recently answered requests*"),
            *sections(f"• {_answered_line(r, permalinks.get(r.id), nouns_)}" for r in answered),
        ]
    if figures is not None:
        blocks += [divider(), *figures_blocks(figures)]
    blocks.append(context(f"Start one in any channel with `{COMMAND} <shopper email>`; `{COMMAND} help` for more."))
    return home(blocks)


def _answered_line(request: Request, permalink: str | None, nouns: Mapping[str, str]) -> str:
    """A closed case as the Home tab lists it: what, for whom, the nature of the answer, when, and its thread."""
    thread = f" · <{permalink}|thread>" if permalink else ""
    noun = nouns.get(request.kind, request.kind)
    when = date(request.closed_at or 0, "recently", time=False)
    return f"{noun} · {subject(request)} · {facts.outcome_words(request)} · closed {when}{thread}"
