"""Every text a Slack user sees, in one place so the bot speaks with one voice.

Functions return Block Kit payload pieces (``text`` plus ``blocks``); none of
them sends anything. Nothing here ever receives a shopper's email in the clear
except ``invalid_email``, which answers the person who typed it, alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from handlers.deadlines import CCPA_DAYS, DAY, DEADLINE_DAYS, REMINDERS, law_of
from handlers.texts import facts
from handlers.texts.blocks import Block, Message, context, fields, section, sections
from handlers.texts.intake import facts_line
from handlers.texts.mrkdwn import date, escape, escape_clip, more, subject
from prime import CLIENT_TOKEN_WINDOW
from store import Request, RequestStatus, TaskError

if TYPE_CHECKING:  # a kind's words are rendered here, and the kinds' contract names Message in turn
    from handlers.kinds import KindTexts

__all__ = [
    "COMMAND",
    "DAYS_TAKEN",
    "Message",
    "cannot_save",
    "checking_access",
    "duplicate_request",
    "explain_errors",
    "help_message",
    "hours",
    "intake_facts",
    "invalid_email",
    "not_allowed",
    "not_in_channel",
    "post_abandoned",
    "slack_trouble",
    "stale_button",
    "start_trouble",
    "status_message",
    "task_shown",
    "thread_parent",
    "thread_refused",
    "thread_reply",
    "unknown_option",
    "unknown_request",
    "usage_error",
]

COMMAND = "/data-request"
ERRORS_SHOWN = 5  # Amazon's reasons for one task shown in full; the rest are counted
ERROR_WORDS = 500  # characters of one of Amazon's messages shown (its code always whole)
TYPED_SHOWN = 80  # characters of what a user typed echoed back to them
_WAITING = ":hourglass_flowing_sand: Waiting for Buy with Prime, which is not accepting requests right now"


def task_shown(request: Request) -> str:
    """Amazon's task id as a text shows it: escaped, and bounded (Amazon sets no length)."""
    return escape_clip(request.task_id or "", 100)


def hours(seconds: float) -> str:
    """A span Amazon gives in hours, as a text says it: ``8 hours``."""
    return f"{seconds / 3600:.0f} hours"


def thread_parent(request: Request, kind: KindTexts) -> Message:
    """The channel message that opens a request's thread and shows its status as it changes."""
    status = kind.status_line(request, waiting=_WAITING, closed=facts.closed_line(request))
    task = f"`{task_shown(request)}`" if request.task_id else "_not started yet_"
    due = f"{date(request.due_at, 'the due date', time=False)} ({request.deadline})" if request.due_at else "_none_"
    return {
        "text": f"{kind.title} for {request.email_masked} by <@{request.requester}>: {kind.short_status(request)}",
        "blocks": [
            section(f"*{kind.title}* for {subject(request)}"),
            fields(
                ("Requested by", f"<@{request.requester}>"),
                ("Requested", date(request.created_at, "today")),
                ("Task", task),
                ("Answer due", due),
                *kind.extra_fields(request),
                *facts.parent_fields(request),
                ("Status", status),
            ),
            context(intake_facts(request)),
            *kind.parent_actions(request),
            *facts.case_actions(request, deniable=kind.deniable),
        ],
    }


def intake_facts(request: Request) -> str:
    """The request's intake facts in one line: received, law, how, staff's ticket."""
    return facts_line(
        received_on=request.received_on,
        law=law_of(request.deadline),
        via=request.received_via,
        outside_ref=request.outside_ref,
        extension_told_at=request.extension_told_at,
    )


def explain_errors(errors: Sequence[TaskError], meanings: Mapping[str, str]) -> list[Block]:
    """Amazon's reasons for a failed task, each code with what it means for staff (``meanings``, per kind).

    Amazon's words have no limit of their own: the first ``ERRORS_SHOWN`` reasons are shown, each
    message in at most ``ERROR_WORDS`` characters, and the rest are counted; the lines go in as many
    sections as Slack's limit needs.
    """
    if not errors:
        return [section("• Buy with Prime gave no reason.")]
    lines = []
    for error in errors[:ERRORS_SHOWN]:
        code = escape_clip(str(error.code or "UNKNOWN"), 100)
        meaning = meanings.get(str(error.code or ""), "")
        words = escape_clip(error.message, ERROR_WORDS)
        lines.append(f"• `{code}`: {words}" + (f"\n   {meaning}" if meaning else ""))
    left_out = more(len(errors) - ERRORS_SHOWN, "more reasons (the audit log has every code)")
    return sections([*lines, left_out] if left_out else lines)


def help_message(kinds: Sequence[KindTexts], *, everyone_allowed: bool) -> Message:
    """``help``: each kind's own lines, then the commands every kind shares."""
    who = "Anyone in this workspace may use it." if everyone_allowed else "Only allowed staff may use it."
    return {
        "text": f"How to use {COMMAND}",
        "blocks": [
            section(
                "".join(kind.help(COMMAND) for kind in kinds)
                + f"*`{COMMAND} <shopper email> gdpr`* (one month) or *`ccpa`* ({CCPA_DAYS} days) or "
                "*`--deadline 45d`*: set the answer's due date (default: RESPONSE_DEADLINE_DAYS). "
                f"Reminders come {_REMINDER_DAYS} days before.\n"
                f"*`--received 2026-03-01`* (the day the shopper asked: deadlines count from it; default today), "
                "*`--via email|form|phone|mail|agent|other`*, *`--ref ZD-4711`* (your ticket) and "
                "*`--verified order|email|document|agent|other`* (identity already verified) record how the request "
                f"came in. *`{COMMAND}`* alone opens a form with every field.\n"
                f"*`{COMMAND} extend <email or task id> 45d`*: push an open request's due date back "
                f"(CCPA allows one {CCPA_DAYS}-day extension; a second one needs `--again`). Add `--told` once the "
                f"shopper is told of it, or record that later: `{COMMAND} extend <email or task id> --told`.\n"
                f"*`{COMMAND} verify <email or task id> <method> [--note <words>]`*: record how you verified the "
                f"shopper's identity ({facts.METHOD_WORDS}); *Download* and an erasure's *Approve* may wait for it. "
                "The thread's *Verify identity* button does the same.\n"
                f"*`{COMMAND} deny <email or task id> <reason> [--note <words>]`*: close a case as denied "
                f"({facts.REASON_WORDS}; `other` needs a note), or the thread's *Deny* button.\n"
                f"*`{COMMAND} close <email or task id> [--partly]`*: the shopper has their answer (in part, with "
                "`--partly`); the thread's *Mark as …* buttons do the same.\n"
                f"*`{COMMAND} list`*: your open requests; *`{COMMAND} list all`*: the team's.\n"
                f"*`{COMMAND} report [YYYY]`*: the year's figures (received, answered, denied, days to answer), "
                "shown to you alone.\n"
                f"*`{COMMAND} status <email, task id or ticket ref>`*: where a request stands, shown to you alone. "
                f"Example: `{COMMAND} status jane@example.com`\n"
                f"*`{COMMAND} help`*: this message."
            ),
            context(f"{who} The bot must be a member of the channel: `/invite @data-request`."),
        ],
    }


_REMINDER_DAYS = " and ".join(f"{before / DAY:.0f}" for _, before in REMINDERS if before)
DAYS_TAKEN = f"a number of days from {DEADLINE_DAYS.start} to {DEADLINE_DAYS.stop - 1}"


def usage_error(what: str, *, verb: str | None = None) -> Message:
    """A mistake in the command, with an example of the kind of request it was (``verb``: ``delete``)."""
    example = f"{COMMAND} {verb} jane@example.com" if verb else f"{COMMAND} jane@example.com"
    return {"text": f"{what} Try `{example}`, or `{COMMAND} help` for every command."}


def unknown_option(typed: str, *, verb: str | None = None) -> Message:
    return usage_error(f"I don't know the option `{escape_clip(typed, TYPED_SHOWN)}`.", verb=verb)


def invalid_email(typed: str, *, verb: str | None = None) -> Message:
    shown = escape_clip(typed.strip() or "nothing", TYPED_SHOWN)
    return usage_error(f"`{shown}` is not an email address Buy with Prime accepts.", verb=verb)


def not_allowed(reason: str = "") -> Message:
    extra = f" ({reason})" if reason else ""
    return {
        "text": (
            "You are not allowed to handle shopper data requests with this bot" + extra + ". "
            "Ask your compliance lead to add you to ALLOWED_USERS or the allowed user group."
        )
    }


def not_in_channel() -> Message:
    return {
        "text": (
            "I'm not a member of this channel, so I can't open the request's thread here yet. "
            "Invite me with `/invite @data-request`: the request is saved, and its thread opens (and the "
            "request starts at Buy with Prime) once I'm in. Nothing was started yet."
        )
    }


def thread_refused(code: str) -> Message:
    """To the requester: Slack refused the thread's first message itself, so the request cannot go on."""
    return {
        "text": (
            f"Slack refused the request's first message (`{escape(code)}`), so nothing was started. "
            "Tell whoever runs the bot; run the command again once it is fixed."
        )
    }


def post_abandoned(request: Request, code: str) -> Message:
    """A direct message to the requester: a post in their request's thread was given up for good."""
    what = f"`{task_shown(request)}`" if request.task_id else f"for `{request.email_masked}`"
    started = request.status is not RequestStatus.ABANDONED
    then = (
        f"Nothing is lost: `{COMMAND} status {escape(request.task_id or 'the shopper email')}` shows where it stands "
        "and offers *Download* when the data is ready."
        if started
        else f"Nothing was started at Buy with Prime; run `{COMMAND}` again once whoever runs the bot has looked."
    )
    return {
        "text": (
            f"I could not post in the thread of your data request {what}: Slack refused the message "
            f"(`{escape(code)}`). {then}"
        )
    }


def checking_access() -> Message:
    return {
        "text": (
            "Got it. I'm checking with Slack that you are in the allowed user group (I have not read it since "
            "I started); the request's thread appears in this channel once that is done."
        )
    }


def cannot_save() -> Message:
    return {
        "text": (
            "I cannot save requests right now (the bot's database is not taking writes), so nothing was "
            "started. Tell whoever runs the bot, and run the command again later."
        )
    }


def slack_trouble() -> Message:
    return {
        "text": (
            "Slack did not accept the request's first message. The request is saved and I will keep "
            "trying; its thread will appear in this channel."
        )
    }


def start_trouble(request: Request) -> Message:
    return {
        "text": (
            f"Buy with Prime is not answering right now. The request for `{request.email_masked}` is saved "
            "and I will keep trying with the same request token (no duplicate task). The thread will update."
        )
    }


def waiting_for_prime(request: Request, *, needs_operator: bool) -> Message:
    """The thread reply, once, when Amazon cannot be asked to start the task: nothing is lost, nobody must act here."""
    why = (
        "Buy with Prime is refusing the bot's access right now (its credentials are probably being changed); "
        "whoever runs the bot has been alerted."
        if needs_operator
        else "Buy with Prime is not answering right now."
    )
    return {
        "text": "Waiting for Buy with Prime: the request is saved and will start by itself.",
        "blocks": [
            section(
                f":hourglass_flowing_sand: <@{request.requester}> Waiting for Buy with Prime. {why} "
                "The request is saved and the bot keeps trying with the same request token, so Amazon "
                "will start exactly one task. This thread will say when it has started."
            )
        ],
    }


def started_after_wait(request: Request) -> Message:
    """The thread reply when a start that had to wait for Buy with Prime went through."""
    return {"text": f"Buy with Prime answered: the task `{task_shown(request)}` has started."}


def start_window_passed(request: Request, kind: KindTexts) -> Message:
    """The thread reply when Buy with Prime stayed unavailable past the clientToken's 8-hour window."""
    return {
        "text": "This request could not be started: Buy with Prime stayed unavailable for too long.",
        "blocks": [
            section(
                f":no_entry: <@{request.requester}> Buy with Prime did not confirm this request within "
                f"{hours(CLIENT_TOKEN_WINDOW)}, "
                "the time during which a retry is certain to find the same task instead of starting a second one. "
                "The bot has stopped trying, so no duplicate task can start. An earlier attempt may still have "
                "reached Amazon. When Buy with Prime answers again, run "
                f"`{kind.start_command('<shopper email>')}` to start a new request."
            )
        ],
    }


# Thread replies every kind shares, by the name the lifecycle queues them with; a kind's own replies are
# its ``KindTexts.reply``, and a kind may say one of these its own way (a name it knows goes first).
_SHARED_REPLIES: Mapping[str, Callable[[Request, KindTexts], Message]] = {
    "waiting": lambda request, _kind: waiting_for_prime(request, needs_operator=False),
    "waiting_operator": lambda request, _kind: waiting_for_prime(request, needs_operator=True),
    "started_after_wait": lambda request, _kind: started_after_wait(request),
    "start_window_passed": start_window_passed,
    "verified": lambda request, _kind: facts.verified_reply(request),
    "denied": lambda request, _kind: facts.denied_reply(request),
}


def thread_reply(name: str, request: Request, kind: KindTexts) -> Message:
    """The thread reply called ``name``, in the words of the request's kind."""
    own = kind.reply(name, request)
    return own if own is not None else _SHARED_REPLIES[name](request, kind)


def duplicate_request(existing: Request, kind: KindTexts, *, window: float, permalink: str | None) -> Message:
    """A request of this kind for this shopper is open, or was made within ``window`` seconds: point to it."""
    if (own := kind.duplicate(existing, permalink=permalink)) is not None:
        return own
    thread = f"<{permalink}|its thread>" if permalink else "its thread in <#" + existing.channel + ">"
    state = "is still open" if existing.status.unfinished else f"was made in the last {hours(window)}"
    return {
        "text": (
            f"A request for `{existing.email_masked}` {state} (by <@{existing.requester}>, "
            f"{date(existing.created_at, 'recently')}): follow {thread}. Nothing new was started. "
            f"To start another one anyway, add `--new`: `{kind.start_command('<email>')}`."
        )
    }


def unknown_request(what: str) -> Message:
    return {"text": f"I know of no data request for {what}. Check the email, task id or ticket reference."}


def stale_button() -> Message:
    """The answer to a button that names no request the bot keeps now, or is clicked outside its request's thread."""
    return {
        "text": (
            "This button does not belong to a request I keep now: my database may have been restored from a "
            "backup since it was posted, or it was clicked outside its request's thread. Nothing was done. Find "
            f"the case with `{COMMAND} status <email or task id>` and use the buttons in its own thread."
        )
    }


def status_message(
    request: Request, kind: KindTexts, *, permalink: str | None, now: float, notes: Sequence[str] = ()
) -> Message:
    """The answer to ``status``: where one request stands, for the asker alone (``notes``: staff's, escaped)."""
    days = max(0, int((now - request.created_at) // 86_400))
    thread = f"<{permalink}|the thread>" if permalink else "its thread"
    if request.closed_at is not None:
        when = date(request.closed_at, "then")
        answer = f"answer: {facts.outcome_words(request)}, closed by <@{request.closed_by}> {when}"
    else:
        left = int((request.due_at - now) // 86_400)
        when = f"in {left} days" if left >= 0 else f"*{-left} days overdue*"
        answer = f"answer due {date(request.due_at, 'soon', time=False)} ({when}; {request.deadline})"
    return {
        "text": f"{kind.title} for {request.email_masked}: {kind.short_status(request)}",
        "blocks": [
            section(
                f"*{kind.title} for {subject(request)}*: {kind.status_lines[request.status]}\n"
                f"Task `{task_shown(request) or 'not started'}` · requested by <@{request.requester}> "
                f"on {date(request.created_at, 'that day')} ({days} days ago) · see {thread}\n"
                f"The shopper's {answer}\n{facts.identity_line(request)}" + "".join(f"\n{line}" for line in notes)
            ),
            *kind.status_offer(request),
        ],
    }
