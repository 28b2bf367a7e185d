"""What Slack users see of a retrieval (GDPR access, CCPA right to know): its statuses, replies and Download.

The shared frame of every message (the thread's first message, ``status``, refusals) is in
``handlers/texts/``; this is what only a retrieval says. Numbers it quotes come from Amazon's facts in
``prime`` (a link's lifetime, the clientToken's window, the processing time), never typed again here.
"""

from __future__ import annotations

from types import MappingProxyType

from handlers.buttons import CLOSE_ACTION, button_value
from handlers.kinds import KindTexts
from handlers.kinds.retrieval.rules import DENIABLE, DOWNLOAD_ACTION
from handlers.record.rules import denied
from handlers.texts import COMMAND, ERRORS_SHOWN, explain_errors, hours, task_shown
from handlers.texts.blocks import Block, Message, actions, button, context, section
from handlers.texts.mrkdwn import clip, date, escape
from prime import CLIENT_TOKEN_WINDOW, LINK_LIFETIME, RETRIEVAL
from store import Request, RequestStatus

__all__ = ["RETRIEVAL_TEXTS", "RetrievalTexts", "download_failed", "link_message", "not_ready"]

_LINK = f"{LINK_LIFETIME:.0f} seconds"
_DAYS = RETRIEVAL.processing_days

# What Amazon's error codes mean for the person who must answer the shopper.
_MEANINGS = {
    "DATA_SUBJECT_NOT_FOUND": (
        "Buy with Prime holds no shopper with this email. Check the address with the shopper; "
        "if it is right, you can answer that no Buy with Prime data is held about them."
    ),
    "ORDERS_NOT_CLOSED": (
        "The shopper still has open Buy with Prime orders. Wait until they are closed, then run the request again."
    ),
}


class RetrievalTexts(KindTexts):
    """A retrieval's words: Amazon runs it at once; when it is ready, *Download* gives a link."""

    title = "Shopper data request"
    form_label = "Access: a copy of the shopper's data"
    noun = "retrieval"
    deniable = DENIABLE
    status_lines = MappingProxyType(
        {
            RequestStatus.NEW: ":hourglass_flowing_sand: Starting…",
            RequestStatus.STARTING: ":hourglass_flowing_sand: Starting the task at Buy with Prime…",
            RequestStatus.IN_PROGRESS: (
                f":hourglass_flowing_sand: In progress at Buy with Prime (Amazon allows up to {_DAYS} days)"
            ),
            RequestStatus.COMPLETED: ":white_check_mark: Ready: the shopper's data can be downloaded from this thread",
            RequestStatus.FAILED: ":x: Failed: see the reason in this thread",
            RequestStatus.REJECTED: ":no_entry: Not started: Buy with Prime refused the request (see this thread)",
            RequestStatus.ABANDONED: ":no_entry: Not started",
            # A retrieval starts at once and cannot be held or cancelled; these are here so every status reads.
            RequestStatus.AWAITING_APPROVAL: ":raised_hand: Waiting for approval",
            RequestStatus.ON_HOLD: ":pause_button: On hold at Buy with Prime",
            RequestStatus.CANCELLED: ":no_entry_sign: Cancelled",
        }
    )
    short_statuses = MappingProxyType(
        {
            RequestStatus.IN_PROGRESS: "in progress",
            RequestStatus.COMPLETED: "ready to download",
            RequestStatus.FAILED: "failed",
            RequestStatus.REJECTED: "not started",
            RequestStatus.ABANDONED: "not started",
        }
    )

    def reply(self, name: str, request: Request) -> Message | None:
        make = _REPLIES.get(name)
        return make(request) if make is not None else None

    def help(self, command: str) -> str:
        return (
            f"*`{command} <shopper email>`*: start a Buy with Prime personal-data retrieval "
            f"(GDPR access, CCPA right to know). Example: `{command} jane@example.com`\n"
            "The bot opens a thread in this channel (the email masked), posts there when the data "
            f"is ready, and *Download* shows a fresh {LINK_LIFETIME:.0f}-second link to whoever clicks it, alone.\n\n"
            f"*`{command} <shopper email> --new`*: start another request although one for this shopper "
            f"is open or was made in the last {hours(CLIENT_TOKEN_WINDOW)} (the bot otherwise points you to the "
            "existing thread).\n"
        )

    def start_command(self, subject: str) -> str:
        return f"{COMMAND} {subject} --new"

    def status_offer(self, request: Request) -> list[Block]:
        """A completed request's Download button, so nothing depends on the thread's post having arrived."""
        if request.status is not RequestStatus.COMPLETED or denied(request):
            return []
        download = button("Download", action_id=DOWNLOAD_ACTION, value=button_value(request), style="primary")
        return [actions(f"status-{request.id}", download)]


def completion_reply(request: Request) -> Message:
    """The thread reply that says the data is ready and carries the Download button (none for a denied case)."""
    if denied(request):
        return {
            "text": "Buy with Prime finished the task, but this case was denied: nothing is to be downloaded.",
            "blocks": [
                section(
                    f"Buy with Prime finished task `{task_shown(request)}`, but this case was denied by "
                    f"<@{request.closed_by}>, so nothing is to be downloaded or sent to the shopper."
                )
            ],
        }
    return {
        "text": f"The shopper's data is ready. Click Download for a link (it works for {_LINK}).",
        "blocks": [
            section(
                f"<@{request.requester}> The shopper's data is ready (task `{task_shown(request)}`). "
                f"*Download* gives you a link that works for {_LINK}, shown to you alone."
            ),
            actions(
                f"request-{request.id}",
                button("Download", action_id=DOWNLOAD_ACTION, value=button_value(request), style="primary"),
                button("Mark as sent to shopper", action_id=CLOSE_ACTION, value=button_value(request)),
            ),
            context("When the shopper has their answer, *Mark as sent to shopper* closes the case and its reminders."),
        ],
    }


def _codes(request: Request) -> str:
    """Amazon's codes for the notification text: the first ``ERRORS_SHOWN``, and how many more."""
    codes = [clip(str(e.code or "UNKNOWN"), 100) for e in request.errors[:ERRORS_SHOWN]]
    left_out = len(request.errors) - ERRORS_SHOWN
    return escape(", ".join(codes) + (f" and {left_out} more" if left_out > 0 else "") or "no reason given")


def failure_reply(request: Request) -> Message:
    """The thread reply for a task Amazon ran and could not finish, with what to do next."""
    return {
        "text": f"The data request failed at Buy with Prime: {_codes(request)}",
        "blocks": [
            section(f"<@{request.requester}> Buy with Prime could not retrieve the shopper's data:"),
            *explain_errors(request.errors, _MEANINGS),
            actions(
                f"request-{request.id}",
                button("Mark as answered to shopper", action_id=CLOSE_ACTION, value=button_value(request)),
            ),
        ],
    }


def failed_after_completion(request: Request) -> Message:
    """The thread reply for a task Amazon reported complete and now reports failed: Download no longer works."""
    return {
        "text": f"The data request now failed at Buy with Prime: {_codes(request)}. Download no longer works.",
        "blocks": [
            section(
                f"<@{request.requester}> Buy with Prime now reports this task as *failed*, after it was ready. "
                "*Download* no longer gives a link. Amazon's reason:"
            ),
            *explain_errors(request.errors, _MEANINGS),
            actions(
                f"request-{request.id}-failed",
                button("Mark as answered to shopper", action_id=CLOSE_ACTION, value=button_value(request)),
            ),
        ],
    }


def rejected_reply(request: Request) -> Message:
    """The thread reply for a request Amazon refused to start at all."""
    return {
        "text": "Buy with Prime refused to start this data request.",
        "blocks": [
            section(f"<@{request.requester}> Buy with Prime refused to start this request:"),
            *explain_errors(request.errors, _MEANINGS),
            context(f"Nothing was started. Fix the cause, then run `{COMMAND}` again."),
        ],
    }


_REPLIES = {
    "completed": completion_reply,
    "failed": failure_reply,
    "failed_after_completion": failed_after_completion,
    "rejected": rejected_reply,
}


def link_message(link: str, expires_at: float) -> Message:
    """The ephemeral answer to a Download click: the link, when it stops working, how to get another."""
    return {
        "text": f"Your download link (works for {_LINK}; click Download again for a new one).",
        "blocks": [
            section(f":arrow_down: <{link}|Download data_retrieval.zip>"),
            context(
                f"Works until {date(expires_at, 'one minute from now')} ({_LINK}); a download that has "
                "started by then completes. Shown to you alone. Click *Download* again for a new link."
            ),
        ],
    }


def download_failed() -> Message:
    return {
        "text": (
            "Buy with Prime did not give me a download link just now. Click *Download* again in a minute; "
            "if it keeps failing, tell whoever runs the bot."
        )
    }


def not_ready(request: Request, amazon_status: str) -> Message:
    """The answer to a Download click on a task that has no data to give (yet, or any more)."""
    if amazon_status == "FAILED" or request.status is RequestStatus.FAILED:
        text = "This request failed, so there is nothing to download. The reason is in the thread."
    else:
        text = (
            "The shopper's data is not ready yet: Buy with Prime is still working on it "
            f"(it can take up to {_DAYS} days). The thread will say when it is ready."
        )
    return {"text": text}


RETRIEVAL_TEXTS = RetrievalTexts()
