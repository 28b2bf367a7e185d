"""Every text a Slack user sees, in one place so the bot speaks with one voice.

Functions return Block Kit payload pieces (``text`` plus ``blocks``); none of
them sends anything. Nothing here ever receives a shopper's email in the clear
except ``invalid_email``, which answers the person who typed it, alone.
"""

from __future__ import annotations

from typing import Any

from handlers.blocks import Block, button, context, date, escape, fields, section, subject
from prime import CLIENT_TOKEN_WINDOW
from store import Request, RequestStatus, TaskError

__all__ = [
    "CLOSE_ACTION",
    "COMMAND",
    "DOWNLOAD_ACTION",
    "Message",
    "cannot_save",
    "checking_access",
    "completion_reply",
    "download_failed",
    "duplicate_request",
    "failed_after_completion",
    "failure_reply",
    "help_message",
    "invalid_email",
    "link_message",
    "not_allowed",
    "not_in_channel",
    "not_ready",
    "post_abandoned",
    "rejected_reply",
    "slack_trouble",
    "start_trouble",
    "start_window_passed",
    "started_after_wait",
    "status_message",
    "thread_parent",
    "thread_refused",
    "unknown_option",
    "unknown_request",
    "usage_error",
    "waiting_for_prime",
]

COMMAND = "/data-request"
DOWNLOAD_ACTION = "download_data"
CLOSE_ACTION = "close_case"
Message = dict[str, Any]

_STATUS_LINES = {
    RequestStatus.NEW: ":hourglass_flowing_sand: Starting…",
    RequestStatus.STARTING: ":hourglass_flowing_sand: Starting the task at Buy with Prime…",
    RequestStatus.IN_PROGRESS: ":hourglass_flowing_sand: In progress at Buy with Prime (Amazon allows up to 30 days)",
    RequestStatus.COMPLETED: ":white_check_mark: Ready: the shopper's data can be downloaded from this thread",
    RequestStatus.FAILED: ":x: Failed: see the reason in this thread",
    RequestStatus.REJECTED: ":no_entry: Not started: Buy with Prime refused the request (see this thread)",
    RequestStatus.ABANDONED: ":no_entry: Not started",
}

# What Amazon's error codes mean for the person who must answer the shopper.
_ERROR_EXPLANATIONS = {
    "DATA_SUBJECT_NOT_FOUND": (
        "Buy with Prime holds no shopper with this email. Check the address with the shopper; "
        "if it is right, you can answer that no Buy with Prime data is held about them."
    ),
    "ORDERS_NOT_CLOSED": (
        "The shopper still has open Buy with Prime orders. Wait until they are closed, then run the request again."
    ),
}


def thread_parent(request: Request) -> Message:
    """The channel message that opens a request's thread and shows its status as it changes."""
    status = _STATUS_LINES[request.status]
    if request.status is RequestStatus.STARTING and request.waiting_since is not None:
        status = ":hourglass_flowing_sand: Waiting for Buy with Prime, which is not accepting requests right now"
    if request.closed_at is not None:
        status = (
            f":lock: Closed: answer sent to the shopper by <@{request.closed_by}> {date(request.closed_at, 'then')}"
        )
    task = f"`{escape(request.task_id)}`" if request.task_id else "_not started yet_"
    due = f"{date(request.due_at, 'the due date', time=False)} ({request.deadline})" if request.due_at else "_none_"
    return {
        "text": f"Shopper data request for {request.email_masked} by <@{request.requester}>: {_short_status(request)}",
        "blocks": [
            section(f"*Shopper data request* for {subject(request)}"),
            fields(
                ("Requested by", f"<@{request.requester}>"),
                ("Requested", date(request.created_at, "today")),
                ("Task", task),
                ("Answer due", due),
                ("Status", status),
            ),
        ],
    }


def _short_status(request: Request) -> str:
    if request.closed_at is not None:
        return "closed"
    return {
        RequestStatus.IN_PROGRESS: "in progress",
        RequestStatus.COMPLETED: "ready to download",
        RequestStatus.FAILED: "failed",
        RequestStatus.REJECTED: "not started",
        RequestStatus.ABANDONED: "not started",
    }.get(request.status, "starting")


def completion_reply(request: Request) -> Message:
    """The thread reply that says the data is ready and carries the Download button."""
    return {
        "text": "The shopper's data is ready. Click Download for a link (it works for 60 seconds).",
        "blocks": [
            section(
                f"<@{request.requester}> The shopper's data is ready (task `{escape(request.task_id)}`). "
                "*Download* gives you a link that works for 60 seconds, shown to you alone."
            ),
            {
                "type": "actions",
                "block_id": f"request-{request.id}",
                "elements": [
                    button("Download", action_id=DOWNLOAD_ACTION, value=str(request.id), style="primary"),
                    button("Mark as sent to shopper", action_id=CLOSE_ACTION, value=str(request.id)),
                ],
            },
            context("When the shopper has their answer, *Mark as sent to shopper* closes the case and its reminders."),
        ],
    }


def _explain(errors: tuple[TaskError, ...] | list[TaskError]) -> str:
    if not errors:
        return "• Buy with Prime gave no reason."
    lines = []
    for error in errors:
        code = str(error.code or "UNKNOWN")
        meaning = _ERROR_EXPLANATIONS.get(code, "")
        lines.append(f"• `{escape(code)}`: {escape(error.message)}" + (f"\n   {meaning}" if meaning else ""))
    return "\n".join(lines)


def failure_reply(request: Request) -> Message:
    """The thread reply for a task Amazon ran and could not finish, with what to do next."""
    codes = escape(", ".join(str(e.code or "UNKNOWN") for e in request.errors) or "no reason given")
    return {
        "text": f"The data request failed at Buy with Prime: {codes}",
        "blocks": [
            section(f"<@{request.requester}> Buy with Prime could not retrieve the shopper's data:"),
            section(_explain(request.errors)),
            {
                "type": "actions",
                "block_id": f"request-{request.id}",
                "elements": [button("Mark as answered to shopper", action_id=CLOSE_ACTION, value=str(request.id))],
            },
        ],
    }


def failed_after_completion(request: Request) -> Message:
    """The thread reply for a task Amazon reported complete and now reports failed: Download no longer works."""
    codes = escape(", ".join(str(e.code or "UNKNOWN") for e in request.errors) or "no reason given")
    return {
        "text": f"The data request now failed at Buy with Prime: {codes}. Download no longer works.",
        "blocks": [
            section(
                f"<@{request.requester}> Buy with Prime now reports this task as *failed*, after it was ready. "
                "*Download* no longer gives a link. Amazon's reason:"
            ),
            section(_explain(request.errors)),
            {
                "type": "actions",
                "block_id": f"request-{request.id}-failed",
                "elements": [button("Mark as answered to shopper", action_id=CLOSE_ACTION, value=str(request.id))],
            },
        ],
    }


def rejected_reply(request: Request) -> Message:
    """The thread reply for a request Amazon refused to start at all."""
    return {
        "text": "Buy with Prime refused to start this data request.",
        "blocks": [
            section(f"<@{request.requester}> Buy with Prime refused to start this request:"),
            section(_explain(request.errors)),
            context(f"Nothing was started. Fix the cause, then run `{COMMAND}` again."),
        ],
    }


def link_message(link: str, expires_at: float) -> Message:
    """The ephemeral answer to a Download click: the link, when it stops working, how to get another."""
    return {
        "text": "Your download link (works for 60 seconds; click Download again for a new one).",
        "blocks": [
            section(f":arrow_down: <{link}|Download data_retrieval.zip>"),
            context(
                f"Works until {date(expires_at, 'one minute from now')} (60 seconds); a download that has "
                "started by then completes. Shown to you alone. Click *Download* again for a new link."
            ),
        ],
    }


def not_ready(request: Request, amazon_status: str) -> Message:
    if amazon_status == "FAILED" or request.status is RequestStatus.FAILED:
        text = "This request failed, so there is nothing to download. The reason is in the thread."
    else:
        text = (
            "The shopper's data is not ready yet: Buy with Prime is still working on it "
            "(it can take up to 30 days). The thread will say when it is ready."
        )
    return {"text": text}


def help_message(*, everyone_allowed: bool) -> Message:
    who = "Anyone in this workspace may use it." if everyone_allowed else "Only allowed staff may use it."
    return {
        "text": f"How to use {COMMAND}",
        "blocks": [
            section(
                f"*`{COMMAND} <shopper email>`*: start a Buy with Prime personal-data retrieval "
                f"(GDPR access, CCPA right to know). Example: `{COMMAND} jane@example.com`\n"
                "The bot opens a thread in this channel (the email masked), posts there when the data "
                "is ready, and *Download* shows a fresh 60-second link to whoever clicks it, alone.\n\n"
                f"*`{COMMAND} <shopper email> --new`*: start another request although one for this shopper "
                "is open or was made in the last 8 hours (the bot otherwise points you to the existing thread).\n"
                f"*`{COMMAND} <shopper email> gdpr`* (one month) or *`ccpa`* (45 days) or *`--deadline 45d`*: "
                "set the answer's due date (default: RESPONSE_DEADLINE_DAYS). Reminders come 7 and 2 days before.\n"
                f"*`{COMMAND} extend <email or task id> 45d`*: push an open request's due date back "
                "(CCPA allows one 45-day extension; a second one needs `--again`).\n"
                f"*`{COMMAND} list`*: your open requests; *`{COMMAND} list all`*: the team's.\n"
                f"*`{COMMAND} status <email or task id>`*: where a request stands, shown to you alone. "
                f"Example: `{COMMAND} status jane@example.com`\n"
                f"*`{COMMAND} help`*: this message."
            ),
            context(f"{who} The bot must be a member of the channel: `/invite @data-request`."),
        ],
    }


def usage_error(what: str) -> Message:
    return {"text": f"{what} Try `{COMMAND} jane@example.com`, or `{COMMAND} help` for every command."}


def unknown_option(typed: str) -> Message:
    return usage_error(f"I don't know the option `{escape(typed[:40])}`.")


def invalid_email(typed: str) -> Message:
    shown = escape(typed.strip()[:80] or "nothing")
    return usage_error(f"`{shown}` is not an email address Buy with Prime accepts.")


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
    what = f"`{escape(request.task_id)}`" if request.task_id else f"for `{request.email_masked}`"
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
    return {"text": f"Buy with Prime answered: the task `{escape(request.task_id or '')}` has started."}


def start_window_passed(request: Request) -> Message:
    """The thread reply when Buy with Prime stayed unavailable past the clientToken's 8-hour window."""
    return {
        "text": "This request could not be started: Buy with Prime stayed unavailable for too long.",
        "blocks": [
            section(
                f":no_entry: <@{request.requester}> Buy with Prime did not confirm this request within "
                f"{CLIENT_TOKEN_WINDOW / 3600:.0f} hours, "
                "the time during which a retry is certain to find the same task instead of starting a second one. "
                "The bot has stopped trying, so no duplicate task can start. An earlier attempt may still have "
                "reached Amazon. When Buy with Prime answers again, run "
                f"`{COMMAND} <shopper email> --new` to start a new request."
            )
        ],
    }


def duplicate_request(existing: Request, *, permalink: str | None) -> Message:
    thread = f"<{permalink}|its thread>" if permalink else "its thread in <#" + existing.channel + ">"
    state = "is still open" if existing.status.unfinished else "was made in the last 8 hours"
    return {
        "text": (
            f"A request for `{existing.email_masked}` {state} (by <@{existing.requester}>, "
            f"{date(existing.created_at, 'recently')}): follow {thread}. Nothing new was started. "
            f"To start another one anyway, add `--new`: `{COMMAND} <email> --new`."
        )
    }


def unknown_request(what: str) -> Message:
    return {"text": f"I know of no data request for {what}. Check the email or task id."}


def download_failed() -> Message:
    return {
        "text": (
            "Buy with Prime did not give me a download link just now. Click *Download* again in a minute; "
            "if it keeps failing, tell whoever runs the bot."
        )
    }


def status_message(request: Request, *, permalink: str | None, now: float) -> Message:
    """The answer to ``status``: where one request stands, for the asker alone."""
    days = max(0, int((now - request.created_at) // 86_400))
    thread = f"<{permalink}|the thread>" if permalink else "its thread"
    if request.closed_at is not None:
        answer = f"answered: closed by <@{request.closed_by}> {date(request.closed_at, 'then')}"
    else:
        left = int((request.due_at - now) // 86_400)
        when = f"in {left} days" if left >= 0 else f"*{-left} days overdue*"
        answer = f"answer due {date(request.due_at, 'soon', time=False)} ({when}; {request.deadline})"
    return {
        "text": f"Request for {request.email_masked}: {_short_status(request)}",
        "blocks": [
            section(
                f"*Request for {subject(request)}*: {_STATUS_LINES[request.status]}\n"
                f"Task `{escape(request.task_id or 'not started')}` · requested by <@{request.requester}> "
                f"on {date(request.created_at, 'that day')} ({days} days ago) · see {thread}\n"
                f"The shopper's {answer}"
            ),
            *_download_offer(request),
        ],
    }


def _download_offer(request: Request) -> list[Block]:
    """A completed request's Download button, so nothing depends on the thread's post having arrived."""
    if request.status is not RequestStatus.COMPLETED:
        return []
    button_ = button("Download", action_id=DOWNLOAD_ACTION, value=str(request.id), style="primary")
    return [{"type": "actions", "block_id": f"status-{request.id}", "elements": [button_]}]
