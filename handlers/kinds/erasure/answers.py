"""What the person who clicked an erasure's button sees, alone: refusals, acknowledgements, the Reject form.

The thread's words are in ``handlers/kinds/erasure/texts.py``; these answer one person, through the click's
response_url (or an ephemeral in the thread, after a form). Staff's reasons are outside text: escaped.
"""

from __future__ import annotations

from typing import Any

from handlers.buttons import form_metadata
from handlers.kinds.erasure.rules import REASON_LIMIT, REJECT_VIEW, ReasonProblem
from handlers.kinds.erasure.texts import ERASURE_TEXTS, hold_past_due_words
from handlers.texts.blocks import Message, modal, section
from handlers.texts.mrkdwn import date, subject
from prime import MAX_HOLD_DAYS
from store import Request, RequestStatus

__all__ = [
    "already_decided",
    "approved_ack",
    "cancel_failed",
    "cancel_not_confirmed",
    "cancelled_ack",
    "cannot_cancel",
    "cannot_retry",
    "hold_refused",
    "never_twice",
    "own_approval",
    "reason_needs_words",
    "reason_refused",
    "reject_view",
    "rejected_ack",
    "retried_ack",
    "still_opening",
    "too_late_to_cancel",
]

_S = RequestStatus


def own_approval() -> Message:
    return {
        "text": (
            "You asked for this erasure, so another allowed person must approve it: deletion cannot be undone once "
            "its hold ends, so two people decide. Ask a colleague to click *Approve*."
        )
    }


def still_opening() -> Message:
    return {"text": "The erasure's thread is still opening; click again in a moment."}


def already_decided(request: Request) -> Message:
    """A click on Approve or Reject after someone decided: say who and when; nothing changes."""
    if request.status is _S.REJECTED and request.closed_by:
        said = f"Already rejected by <@{request.closed_by}> {date(request.closed_at or 0, 'earlier')}."
    elif request.approved_by:
        said = f"Already approved by <@{request.approved_by}> {date(request.approved_at or 0, 'earlier')}."
    else:
        said = f"This erasure no longer waits for approval ({ERASURE_TEXTS.short_status(request)})."
    return {"text": f"{said} Nothing changed."}


def approved_ack(request: Request, *, longest_hold: int | None = None) -> Message:
    """To the approver; ``longest_hold``: the hold does not fit the due date, and this is the longest that does."""
    said = f"Approved: the erasure for `{request.email_masked}` starts at Buy with Prime now."
    if longest_hold is None:
        return {"text": said}
    return {"text": f"{said} :warning: {hold_past_due_words(request, longest=longest_hold)}"}


def rejected_ack(request: Request) -> Message:
    return {"text": f"Rejected: the erasure for `{request.email_masked}` is closed; nothing was sent to Amazon."}


def cancelled_ack(request: Request) -> Message:
    return {"text": f"Cancelled: Buy with Prime will not delete the data of `{request.email_masked}`."}


def retried_ack(request: Request) -> Message:
    return {"text": f"Started again: a new deletion task for `{request.email_masked}`; the thread will follow it."}


def too_late_to_cancel() -> Message:
    return {
        "text": (
            "Too late to cancel: the holding period has ended and Buy with Prime is deleting the shopper's data now "
            "(`CannotCancelPersonalDataDeletionTask`). It cannot be stopped; the thread will say when it is done."
        )
    }


def cancel_failed(request: Request) -> Message:
    until = date(request.hold_ends_at or 0, "the end of the hold")
    return {
        "text": (
            f"Buy with Prime did not answer, so the deletion is *not* cancelled. It stays on hold until {until}: "
            "click *Cancel deletion* again in a moment."
        )
    }


def cancel_not_confirmed(request: Request) -> Message:
    """Amazon answered a cancel with "no such task", and no earlier cancel of the bot's can explain it."""
    until = date(request.hold_ends_at or 0, "the end of the hold")
    return {
        "text": (
            "Buy with Prime answered that it does not know this deletion task, so the cancel is *not confirmed*: "
            f"the deletion may still run when the hold ends ({until}). It stays on hold here, and the bot keeps "
            "asking Buy with Prime about it; the thread will say what happens. Click *Cancel deletion* again in "
            "a moment, or ask the operator to check the task with Buy with Prime."
        )
    }


def cannot_cancel(request: Request) -> Message:
    """Cancel on an erasure that is not on hold (any more): say where it stands."""
    if request.status is _S.CANCELLED:
        return {"text": f"Already cancelled by <@{request.cancelled_by}>. Nothing changed."}
    if request.status in (_S.IN_PROGRESS, _S.COMPLETED, _S.FAILED):
        return too_late_to_cancel()
    return {
        "text": f"This erasure is not on hold ({ERASURE_TEXTS.short_status(request)}), so there is nothing to cancel."
    }


def cannot_retry(request: Request) -> Message:
    if request.status in (_S.STARTING, _S.ON_HOLD, _S.IN_PROGRESS):
        return {"text": "Already started again; the thread follows the new task. Nothing changed."}
    return {
        "text": (
            "*Try again* is for an erasure refused because of open orders, or not started in time; this one is "
            f"{ERASURE_TEXTS.short_status(request)}. Nothing changed."
        )
    }


def reason_refused(problem: ReasonProblem) -> str:
    """Why a reason cannot be kept, for the form or the command that gave it."""
    if problem is ReasonProblem.MISSING:
        return "Write why this erasure is rejected."
    return (
        "The reason is kept in the thread, the database and at Amazon: write it without the shopper's email "
        f"(at most {REASON_LIMIT} characters)."
    )


def reason_needs_words(flag: str) -> str:
    return f"`{flag}` needs the words after it."


def hold_refused(flag: str) -> str:
    return f"`{flag}` takes a number of days from 0 to {MAX_HOLD_DAYS}, like `10d`."


def hold_hint() -> str:
    return f"0 to {MAX_HOLD_DAYS} days; empty: DELETION_HOLD_DAYS. Buy with Prime waits this long before deleting."


def reason_hint() -> str:
    return "Kept with the case, shown in the thread and sent to Buy with Prime; no email addresses."


def never_twice() -> str:
    return (
        "An erasure is never started twice: if one is open for this shopper, follow its thread, "
        "or Reject or Cancel it first."
    )


def reject_view(request: Request) -> dict[str, Any]:
    """The Reject modal: why (kept in the thread and the request, never in the audit log)."""
    return modal(
        callback_id=REJECT_VIEW,
        metadata=form_metadata(request),
        title="Reject erasure",
        submit="Reject",
        blocks=[
            section(
                f"Reject the erasure for {subject(request)} asked by <@{request.requester}>? Nothing is sent to "
                "Buy with Prime, and the case closes."
            ),
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "reason",
                    "multiline": True,
                    "max_length": REASON_LIMIT,
                },
            },
        ],
    )
