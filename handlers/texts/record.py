"""What staff see of the compliance record: the thread's replies, the answers to whoever acted, and the forms.

The first message's facts and buttons are in ``handlers/texts/facts.py``. Staff's notes are outside text:
escaped wherever they are shown, and never shown in a channel (they stay with the case, sealed; ``status``
shows them to whoever asks), so a thread outlives no note that retention erased.
"""

from __future__ import annotations

from typing import Any

from core import DenialReason, VerificationMethod
from handlers.buttons import form_metadata
from handlers.record.rules import DENY_VIEW, NOTE_FLAG, NOTE_LIMIT, PARTLY_FLAG, VERIFY_VIEW, NoteProblem
from handlers.texts import COMMAND
from handlers.texts.blocks import Message, context, modal, section
from handlers.texts.facts import HOW, METHOD_WORDS, REASON_WORDS, WHY
from handlers.texts.mrkdwn import date, escape_clip, subject
from store import Notes, Request, RequestStatus

__all__ = [
    "already_verified",
    "approve_unverified",
    "cannot_deny",
    "cannot_verify",
    "close_usage",
    "closed_ack",
    "denied_ack",
    "deny_usage",
    "deny_view",
    "download_unverified",
    "note_needs_words",
    "note_refused",
    "notes_lines",
    "nothing_to_download",
    "verified_ack",
    "verify_usage",
    "verify_view",
]

NOTE_SHOWN = 600  # characters of a note as shown, escaped: room for NOTE_LIMIT typed ones
_VERIFY = f"{COMMAND} verify <email or task id> <method>"

# ----------------------------------------------------------------- to the person who acted


def verified_ack(request: Request) -> Message:
    return {"text": f"Recorded: the identity of the shopper `{request.email_masked}` is verified. The thread says so."}


def already_verified(request: Request) -> Message:
    when = date(request.verified_at or 0, "earlier")
    return {
        "text": (
            f"The shopper's identity was already recorded as verified by <@{request.verified_by}> {when} "
            f"({escape_clip(request.verified_how, 40)}). Nothing changed."
        )
    }


def cannot_verify(request: Request) -> Message:
    if request.verified_at is not None:
        return already_verified(request)
    if request.closed_at is not None:
        return {"text": "This case is closed, so its record is final. Nothing changed."}
    return {"text": "This request never started, so there is no case to record a verification on. Nothing changed."}


def closed_ack(request: Request) -> Message:
    """``close`` done: the case is closed, with the nature of the answer it recorded."""
    return {
        "text": f"Closed: the request for `{request.email_masked}` is marked as answered ({request.outcome}). "
        "Reminders stop."
    }


def denied_ack(request: Request) -> Message:
    return {"text": f"Denied: the case for `{request.email_masked}` is closed ({request.denial_reason})."}


def cannot_deny(request: Request) -> Message:
    """Deny on a request that cannot be denied now: say why, and what to do instead."""
    status = request.status
    if request.closed_at is not None:
        when = date(request.closed_at, "earlier")
        return {"text": f"This case was already closed by <@{request.closed_by}> {when}. Nothing changed."}
    if status is RequestStatus.NEW:
        return {"text": "The request's thread is still opening; try again in a moment."}
    if status is RequestStatus.ON_HOLD:
        return {"text": "The deletion is on hold at Buy with Prime: click *Cancel deletion* first, then deny it."}
    if status in (RequestStatus.STARTING, RequestStatus.IN_PROGRESS):
        return {
            "text": "Buy with Prime is running this deletion now; it cannot be denied. The thread says when it ends."
        }
    return {"text": "This request never started, so there is no case to deny. Nothing changed."}


def download_unverified(request: Request) -> Message:
    """Download refused: IDENTITY_VERIFICATION=required and the shopper's identity is not recorded yet."""
    return {
        "text": (
            "The shopper's identity is not recorded as verified yet, so their data cannot be downloaded. Verify it, "
            f"then record how: click *Verify identity* on the thread's first message, or run `{_VERIFY}` "
            f"(methods: {METHOD_WORDS}). Then click *Download* again."
        )
    }


def approve_unverified(request: Request) -> Message:
    """Approve refused: IDENTITY_VERIFICATION=required and the shopper's identity is not recorded yet."""
    return {
        "text": (
            "The shopper's identity is not recorded as verified yet, so this erasure cannot be approved. Verify it, "
            f"then record how: click *Verify identity* on the thread's first message, or run `{_VERIFY}` "
            f"(methods: {METHOD_WORDS}). Then click *Approve* again."
        )
    }


def nothing_to_download(request: Request) -> Message:
    return {"text": "This case was denied, so nothing is to be downloaded or sent to the shopper."}


def note_refused(problem: NoteProblem) -> str:
    """Why a note cannot be kept, for the form or the command that gave it."""
    if problem is NoteProblem.MISSING:
        return "Say what the reason is in a note (`other` needs one)."
    return f"The note is kept with the case: write it without the shopper's email (at most {NOTE_LIMIT} characters)."


def note_needs_words() -> Message:
    return {"text": f"`{NOTE_FLAG}` needs the words after it."}


def verify_usage(what: str = "") -> str:
    return (
        f"{what}`verify` takes an email or task id and how the shopper's identity was verified ({METHOD_WORDS}), "
        f"and `{NOTE_FLAG}` with words after it if you like. Example: `{COMMAND} verify jane@example.com order`."
    ).strip()


def deny_usage(what: str = "") -> str:
    return (
        f"{what}`deny` takes an email or task id and a reason ({REASON_WORDS}), and `{NOTE_FLAG}` with words after it "
        f"(`other` needs one). Example: `{COMMAND} deny jane@example.com unverifiable`."
    ).strip()


def close_usage(what: str = "") -> str:
    return (
        f"{what}`close` takes an email or task id, and `{PARTLY_FLAG}` when the shopper was answered in part. "
        f"Example: `{COMMAND} close jane@example.com {PARTLY_FLAG}`."
    ).strip()


def notes_lines(notes: Notes) -> list[str]:
    """Staff's notes on a case, for the person who asked about it: escaped, never a mention or a link."""
    lines = []
    if notes.verified:
        lines.append(f"Verification note: {escape_clip(notes.verified, NOTE_SHOWN)}")
    if notes.outcome:
        lines.append(f"Outcome note: {escape_clip(notes.outcome, NOTE_SHOWN)}")
    return lines


# ----------------------------------------------------------------- the forms


def _select(block_id: str, label: str, options: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": {
            "type": "static_select",
            "action_id": block_id,
            "options": [{"text": {"type": "plain_text", "text": text}, "value": value} for value, text in options],
        },
    }


def _note(optional: bool, hint: str) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": "note",
        "optional": optional,
        "label": {"type": "plain_text", "text": "Note"},
        "hint": {"type": "plain_text", "text": hint},
        "element": {"type": "plain_text_input", "action_id": "note", "multiline": True, "max_length": NOTE_LIMIT},
    }


def verify_view(request: Request) -> dict[str, Any]:
    """The Verify identity form: how (a method), and an optional note (sealed, never in the channel)."""
    methods = [(method.value, HOW[method].capitalize()) for method in VerificationMethod]
    return modal(
        callback_id=VERIFY_VIEW,
        metadata=form_metadata(request),
        title="Verify identity",
        submit="Record",
        blocks=[
            section(
                f"Record that the requester of {subject(request)} is the shopper, and how you checked. "
                "Who and when are recorded with it."
            ),
            _select("method", "Verified by", methods),
            _note(True, "Kept with the case, never shown in the channel. No email address."),
        ],
    )


def deny_view(request: Request) -> dict[str, Any]:
    """The Deny form: why (a reason), and a note (``other`` needs one)."""
    reasons = [(reason.value, WHY[reason].capitalize()) for reason in DenialReason]
    unstarted = request.status in (RequestStatus.NEW, RequestStatus.AWAITING_APPROVAL)
    then = " Nothing is sent to Buy with Prime." if unstarted else ""
    return modal(
        callback_id=DENY_VIEW,
        metadata=form_metadata(request),
        title="Deny request",
        submit="Deny",
        blocks=[
            section(f"Deny the request for {subject(request)}? The case closes as denied.{then}"),
            _select("reason", "Why", reasons),
            _note(True, "Needed for “another reason”. Kept with the case, never shown in the channel. No email."),
            context("Tell the shopper why their request was denied."),
        ],
    )
