"""What staff see about cases as a whole: reminders, closing, their lists and the Home tab."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.blocks import Block, context, divider, header, home, section, sections
from handlers.deadlines import DAY, REMINDERS
from handlers.mrkdwn import date, more, subject
from handlers.texts import COMMAND, Message
from store import Extension, Request, RequestStatus

__all__ = [
    "HOME_SHOWN",
    "already_closed",
    "cannot_close_yet",
    "cannot_extend_unstarted",
    "closed_ack",
    "deadline_extended",
    "extended_before",
    "home_view",
    "open_cases_message",
    "reminder_message",
]

HOME_SHOWN = 40  # cases of each list the Home tab shows, soonest due first; the rest are counted
_BEFORE = dict(REMINDERS)  # a reminder's name -> seconds before the due date


def reminder_message(request: Request, when: str) -> Message:
    """A thread reply that nudges the requester before (or at) the due date (``when``: a ``REMINDERS`` name)."""
    due = date(request.due_at, "the due date", time=False)
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
    return {
        "text": text,
        "blocks": [
            section(text),
            context(
                f"Deadline: {request.deadline}. Close the case with *Mark as sent to shopper* when it is answered."
            ),
        ],
    }


def deadline_extended(request: Request, *, days: int) -> Message:
    due = date(request.due_at, "the new due date", time=False)
    return {
        "text": (
            f"Extended by {days} days: the answer to `{request.email_masked}` is now due {due}. "
            "Reminders start over from the new date. Tell the shopper about the extension and why."
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


def open_cases_message(
    cases: list[Request],
    *,
    whole_team: bool,
    more: bool,
    limit: int,
    now: float,
    permalinks: dict[int, str] | None = None,
    nouns: Mapping[str, str] | None = None,
) -> Message:
    """The answer to ``list``: open cases, newest first, for the asker alone (the newest ``limit`` of them)."""
    whose = "The team's" if whole_team else "Your"
    if not cases:
        return {"text": f"{whose} open data requests: none. :tada:"}
    links = permalinks or {}
    lines = (f"• {_case_line(r, now, links.get(r.id), nouns or {})}" for r in cases)
    blocks: list[Block] = [
        section(f"*{whose} open data requests* ({len(cases)}{'+' if more else ''})"),
        *sections(lines),
    ]
    if more:
        blocks.append(context(f"Showing the newest {limit}."))
    return {"text": f"{whose} open data requests: {len(cases)}", "blocks": blocks}


def home_view(
    mine: list[Request],
    team: list[Request] | None,
    *,
    now: float,
    permalinks: dict[int, str],
    mine_total: int | None = None,
    team_total: int | None = None,
    nouns: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Home tab: the viewer's open cases and, for allowed users, the team's; soonest due first.

    Each list shows ``HOME_SHOWN`` cases and counts the rest (``*_total``: how many there are in all).
    """

    def listing(cases: list[Request], total: int | None, empty: str) -> list[Block]:
        if not cases:
            return [context(empty)]
        ordered = sorted(cases, key=lambda r: r.due_at)[:HOME_SHOWN]
        blocks = sections(f"• {_case_line(r, now, permalinks.get(r.id), nouns or {})}" for r in ordered)
        left_out = (len(cases) if total is None else total) - len(ordered)
        if left_out > 0:
            blocks.append(context(more(left_out, f"more due later (`{COMMAND} list` shows the newest)")))
        return blocks

    blocks: list[Block] = [
        header("Shopper data requests"),
        section("*Your open requests*"),
        *listing(mine, mine_total, "You have no open requests."),
    ]
    if team is not None:
        blocks += [divider(), section("*The team's open requests*"), *listing(team, team_total, "No open requests.")]
    blocks.append(context(f"Start one in any channel with `{COMMAND} <shopper email>`; `{COMMAND} help` for more."))
    return home(blocks)
