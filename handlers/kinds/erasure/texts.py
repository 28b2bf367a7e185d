"""What Slack users see of an erasure (GDPR erasure, CCPA deletion): approval, the hold, Cancel, Try again.

The shared frame of every message (the thread's first message, ``status``, refusals) is in
``handlers/texts/``; this is what only an erasure says. Amazon's numbers (the longest hold, how long a
deletion may take) come from ``prime``. Staff's reasons are outside text: always escaped.
"""

from __future__ import annotations

from types import MappingProxyType

from handlers.buttons import CLOSE_ACTION, button_value
from handlers.kinds import KindTexts
from handlers.kinds.erasure.rules import (
    APPROVE_ACTION,
    CANCEL_ACTION,
    DENIABLE,
    OPEN_ORDERS,
    REJECT_ACTION,
    RETRY_ACTION,
    hold_days,
    hold_past_due,
    open_orders,
    ran_after_cancel,
    retryable,
)
from handlers.texts import COMMAND, explain_errors, hours, task_shown
from handlers.texts.blocks import Block, Button, Message, actions, button, context, section
from handlers.texts.mrkdwn import date, escape, escape_clip
from prime import CLIENT_TOKEN_WINDOW, DELETION, MAX_HOLD_DAYS
from store import Request, RequestStatus

__all__ = ["ERASURE_TEXTS", "ErasureTexts", "hold_past_due_words"]

# Characters of a staff reason as the thread shows it, escaped: room to spare in a 2,000-character field.
REASON_SHOWN = 1_000
_DAYS = DELETION.processing_days
_S = RequestStatus

_MEANINGS = {
    OPEN_ORDERS: (
        "The shopper still has open Buy with Prime orders, and Amazon deletes nothing while they are open. "
        "When the orders are closed (delivered, returned or cancelled), click *Try again*: it starts a new "
        "deletion task with the same holding period."
    ),
    "DATA_SUBJECT_NOT_FOUND": (
        "Buy with Prime holds no shopper with this email, so there is nothing to delete. Check the address "
        "with the shopper; if it is right, you can answer that no Buy with Prime data is held about them."
    ),
}


# What Amazon did with a task the bot had recorded as cancelled, by where that left the request.
_RAN = {
    _S.IN_PROGRESS: "it is deleting the shopper's data, which can no longer be stopped",
    _S.COMPLETED: "it *deleted the shopper's data*",
    _S.FAILED: "the deletion ran and failed, so nothing was deleted",
}


class ErasureTexts(KindTexts):
    """An erasure's words: two people decide, Amazon holds the task (Cancel works then), then deletes."""

    title = "Shopper data erasure"
    form_label = "Erasure: delete the shopper's data"
    noun = "erasure"
    deniable = DENIABLE
    status_lines = MappingProxyType(
        {
            _S.NEW: (
                ":raised_hand: Waiting for approval: another allowed person must click *Approve*. Nothing is sent "
                "to Buy with Prime before that; deletion cannot be undone once its hold ends."
            ),
            _S.AWAITING_APPROVAL: (
                ":raised_hand: Waiting for approval: another allowed person must click *Approve*. Nothing is sent "
                "to Buy with Prime before that; deletion cannot be undone once its hold ends."
            ),
            _S.STARTING: ":hourglass_flowing_sand: Approved: starting the deletion task at Buy with Prime…",
            _S.ON_HOLD: (
                ":pause_button: On hold at Buy with Prime: it deletes the shopper's data when the hold ends. "
                "*Cancel deletion* stops it until then."
            ),
            _S.IN_PROGRESS: (
                f":wastebasket: Deleting at Buy with Prime: it can no longer be cancelled (Amazon allows up to "
                f"{_DAYS} days)."
            ),
            _S.COMPLETED: ":white_check_mark: Deleted: Buy with Prime deleted the shopper's data",
            _S.FAILED: ":x: Not deleted: see the reason in this thread",
            _S.CANCELLED: ":no_entry_sign: Cancelled: nothing will be deleted",
            _S.REJECTED: ":no_entry: Not started: the erasure was rejected (see this thread)",
            _S.ABANDONED: ":no_entry: Not started",
        }
    )
    short_statuses = MappingProxyType(
        {
            _S.NEW: "waiting for approval",
            _S.AWAITING_APPROVAL: "waiting for approval",
            _S.ON_HOLD: "on hold",
            _S.IN_PROGRESS: "deleting",
            _S.COMPLETED: "deleted",
            _S.FAILED: "not deleted",
            _S.CANCELLED: "cancelled",
            _S.REJECTED: "rejected",
            _S.ABANDONED: "not started",
        }
    )

    def status_line(self, request: Request, *, waiting: str, closed: str) -> str:
        """Who decided and until when, where it matters: approved, rejected, cancelled, on hold."""
        status = request.status
        if status is _S.REJECTED and request.closed_by and "reject_reason" in request.params:
            reason = escape_clip(request.params.get("reject_reason", ""), REASON_SHOWN) or "_no reason kept_"
            return f":no_entry: Rejected by <@{request.closed_by}> {date(request.closed_at or 0, 'then')}: {reason}"
        if ran_after_cancel(request):  # before "closed": the answer the case was closed with may be wrong
            when = date(request.cancelled_at or 0, "earlier")
            return f":rotating_light: Not cancelled at Buy with Prime: {_RAN[status]} (the cancel {when} did not take)"
        if request.closed_at is not None:
            return closed
        if status is _S.STARTING and request.waiting_since is None and request.approved_by:
            return (
                f":hourglass_flowing_sand: Approved by <@{request.approved_by}>: starting the deletion task at "
                "Buy with Prime…"
            )
        if status is _S.ON_HOLD and request.hold_ends_at:
            return (
                f":pause_button: On hold until {date(request.hold_ends_at, 'the end of the hold')}: Buy with Prime "
                f"deletes the shopper's data after that (then up to {_DAYS} more days). *Cancel deletion* stops it "
                "until then."
            )
        if status is _S.IN_PROGRESS and hold_days(request) == 0:
            return (
                ":wastebasket: Deleting at Buy with Prime (no holding period): it can no longer be cancelled "
                f"(Amazon allows up to {_DAYS} days)."
            )
        if status is _S.COMPLETED:
            return f"{self.status_lines[status]} {date(request.updated_at, 'recently')}"
        if open_orders(request):
            return ":x: Not deleted: the shopper has open orders (see this thread)"
        if status is _S.CANCELLED and request.cancelled_by:
            when = date(request.cancelled_at or 0, "then")
            return f":no_entry_sign: Cancelled by <@{request.cancelled_by}> {when}: nothing will be deleted"
        return super().status_line(request, waiting=waiting, closed=closed)

    def extra_fields(self, request: Request) -> list[tuple[str, str]]:
        days = hold_days(request)
        hold = f"{days} days" if days else "none: deletion starts at once"
        reason = escape_clip(request.params["reason"], REASON_SHOWN) if request.params.get("reason") else "_none given_"
        fields = [("Reason", reason), ("Holding period", hold)]
        if request.approved_by:
            fields.append(("Approved by", f"<@{request.approved_by}> {date(request.approved_at or 0, 'then')}"))
        return fields

    def parent_actions(self, request: Request) -> list[Block]:
        value = button_value(request)
        if request.status in (_S.NEW, _S.AWAITING_APPROVAL):
            return [
                actions(
                    f"erasure-{request.id}",
                    button("Approve", action_id=APPROVE_ACTION, value=value, style="primary"),
                    button("Reject", action_id=REJECT_ACTION, value=value, style="danger"),
                )
            ]
        if request.status is _S.ON_HOLD:
            cancel = button("Cancel deletion", action_id=CANCEL_ACTION, value=value, style="danger")
            return [actions(f"erasure-{request.id}", cancel)]
        if retryable(request):
            return [actions(f"erasure-{request.id}", button("Try again", action_id=RETRY_ACTION, value=value))]
        return []

    def reply(self, name: str, request: Request) -> Message | None:
        make = _REPLIES.get(name)
        return make(request) if make is not None else None

    def help(self, command: str) -> str:
        return (
            f"*`{command} delete <shopper email> [--hold 10d] [--reason <why>]`*: erase a shopper's Buy with Prime "
            "data (GDPR erasure, CCPA deletion) once *another* allowed person clicks *Approve*. Buy with Prime "
            f"holds the deletion for the holding period (`--hold`, 0 to {MAX_HOLD_DAYS} days; default "
            "DELETION_HOLD_DAYS), and *Cancel deletion* stops it until then. Everything after `--reason` is the "
            "reason (kept in the thread and sent to Amazon: no email in it).\n\n"
        )

    def start_command(self, subject: str) -> str:
        return f"{COMMAND} delete {subject}"

    def duplicate(self, existing: Request, *, permalink: str | None) -> Message | None:
        thread = f"<{permalink}|its thread>" if permalink else "its thread in <#" + existing.channel + ">"
        return {
            "text": (
                f"An erasure for `{existing.email_masked}` is already open ({self.short_status(existing)}, by "
                f"<@{existing.requester}>, {date(existing.created_at, 'recently')}): follow {thread}. Nothing new "
                "was started."
            )
        }


def _mark_answered(request: Request, block_id: str, *extra: Button) -> Block:
    close = button("Mark as answered to shopper", action_id=CLOSE_ACTION, value=button_value(request))
    return actions(block_id, *extra, close)


def completed_reply(request: Request) -> Message:
    text = (
        f"<@{request.requester}> Buy with Prime deleted the shopper's data (task `{task_shown(request)}`). "
        "Tell the shopper their data was deleted, then click *Mark as answered to shopper*."
    )
    return {
        "text": "Buy with Prime deleted the shopper's data.",
        "blocks": [section(text), _mark_answered(request, f"erasure-{request.id}-done")],
    }


def failed_reply(request: Request) -> Message:
    codes = escape(", ".join(str(e.code or "UNKNOWN") for e in request.errors) or "no reason given")
    buttons: list[Button] = []
    if open_orders(request):
        buttons.append(button("Try again", action_id=RETRY_ACTION, value=button_value(request), style="primary"))
    return {
        "text": f"The erasure failed at Buy with Prime: {codes}",
        "blocks": [
            section(f"<@{request.requester}> Buy with Prime could not delete the shopper's data:"),
            *explain_errors(request.errors, _MEANINGS),
            _mark_answered(request, f"erasure-{request.id}-failed", *buttons),
        ],
    }


def cancelled_reply(request: Request) -> Message:
    text = (
        f"Deletion cancelled by <@{request.cancelled_by}>: Buy with Prime will not delete the shopper's data "
        f"(task `{task_shown(request)}`). Tell the shopper why, then click *Mark as answered to shopper*."
    )
    return {
        "text": "The deletion was cancelled: nothing will be deleted.",
        "blocks": [section(text), _mark_answered(request, f"erasure-{request.id}-cancelled")],
    }


_DELETED_AFTER_ALL = "Correction: the deletion was not cancelled; Buy with Prime deleted the data."


def cancel_contradicted(request: Request) -> Message:
    """Amazon ran a deletion this thread said was cancelled: a correction, loud, to who asked and who cancelled."""
    people = " ".join(dict.fromkeys(f"<@{user}>" for user in (request.requester, request.cancelled_by) if user))
    said = (
        f":rotating_light: {people} *Correction:* this thread said {date(request.cancelled_at or 0, 'earlier')} "
        f"that the deletion was cancelled and nothing would be deleted. That was wrong: Buy with Prime did not "
        f"cancel task `{task_shown(request)}`, and {_RAN.get(request.status, 'it went on')}."
    )
    still_open = request.closed_at is None
    if request.status is _S.FAILED:
        blocks = [section(f"{said} Amazon's reasons:"), *explain_errors(request.errors, _MEANINGS)]
        if still_open:
            retry = (
                [button("Try again", action_id=RETRY_ACTION, value=button_value(request))] if retryable(request) else []
            )
            blocks.append(_mark_answered(request, f"erasure-{request.id}-failed", *retry))
        return {"text": "Correction: the deletion was not cancelled; it ran and failed.", "blocks": blocks}
    if request.status is _S.COMPLETED:
        tell = "if the shopper was told their data would be kept, tell them it was deleted"
        if not still_open:
            return {"text": _DELETED_AFTER_ALL, "blocks": [section(f"{said} The case was closed before this: {tell}.")]}
        told = section(f"{said} {tell.capitalize()}, then click *Mark as answered to shopper*.")
        return {"text": _DELETED_AFTER_ALL, "blocks": [told, _mark_answered(request, f"erasure-{request.id}-done")]}
    return {
        "text": "Correction: the deletion was not cancelled; Buy with Prime is deleting the data.",
        "blocks": [section(f"{said} The thread will say when it is done.")],
    }


def rejected_by_staff(request: Request) -> Message:
    reason = escape_clip(request.params.get("reject_reason", ""), REASON_SHOWN)
    return {
        "text": f"Rejected by <@{request.closed_by}>: nothing was sent to Buy with Prime.",
        "blocks": [
            section(
                f"<@{request.closed_by}> rejected this erasure: {reason}\nNothing was sent to Buy with Prime. "
                "The case is closed."
            )
        ],
    }


def rejected_by_amazon(request: Request) -> Message:
    return {
        "text": "Buy with Prime refused to start this erasure.",
        "blocks": [
            section(f"<@{request.requester}> Buy with Prime refused to start this erasure:"),
            *explain_errors(request.errors, _MEANINGS),
            context(f"Nothing was started. Fix the cause, then run `{COMMAND} delete` again."),
        ],
    }


def retried(request: Request) -> Message:
    return {
        "text": "Started again: a new deletion task, with the same holding period.",
        "blocks": [
            section(
                ":arrows_counterclockwise: Started again: the bot asks Buy with Prime for a new deletion task, with "
                f"the same holding period ({hold_days(request)} days) and reason. The approval stands."
            )
        ],
    }


def start_window_passed(request: Request) -> Message:
    retry = button("Try again", action_id=RETRY_ACTION, value=button_value(request), style="primary")
    return {
        "text": "This erasure could not be started: Buy with Prime stayed unavailable for too long.",
        "blocks": [
            section(
                f":no_entry: <@{request.requester}> Buy with Prime did not confirm this erasure within "
                f"{hours(CLIENT_TOKEN_WINDOW)}, the time during which a retry is certain to find the same task "
                "instead of starting a second one, so the bot has stopped trying. An earlier attempt may still have "
                "reached Amazon. When Buy with Prime answers again, click *Try again* to start a new task."
            ),
            actions(f"erasure-{request.id}-window", retry),
        ],
    }


def hold_past_due_words(request: Request, *, longest: int) -> str:
    """The holding period plus Amazon's processing time would end after the answer's due date: what fits."""
    due = date(request.due_at, "the due date", time=False)
    fits = (
        f"The longest hold that fits is {longest} days."
        if longest >= 0
        else "Not even a deletion started at once ends in time: extend the deadline "
        f"(`{COMMAND} extend <email or task id> 30d`) and tell the shopper why."
    )
    return (
        f"The holding period ({hold_days(request)} days) plus the up to {_DAYS} days Buy with Prime takes to delete "
        f"may end after the answer's due date ({due}). {fits} The approval stands: Cancel deletion during the hold "
        f"and start again with `--hold`, or extend the deadline."
    )


def hold_past_due_reply(request: Request) -> Message:
    """The thread reply when an erasure approved now may not be answered by its due date."""
    longest = hold_past_due(request, at=request.approved_at or request.updated_at)
    if longest is None:  # nothing to say after all (the due date moved before the reply was sent)
        longest = hold_days(request)
    text = f":warning: <@{request.requester}> {hold_past_due_words(request, longest=longest)}"
    return {"text": text, "blocks": [section(text)]}


_REPLIES = {
    "hold_past_due": hold_past_due_reply,
    "completed": completed_reply,
    "failed": failed_reply,
    "cancelled": cancelled_reply,
    "cancel_contradicted": cancel_contradicted,
    "rejected": rejected_by_amazon,
    "rejected_by_staff": rejected_by_staff,
    "retried": retried,
    "start_window_passed": start_window_passed,
}


ERASURE_TEXTS = ErasureTexts()
