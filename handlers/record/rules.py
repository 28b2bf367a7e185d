"""What the compliance record accepts, apart from its words: methods, reasons, notes, and what a close records.

The commands, the forms and the texts all read these; none of them says words.
"""

from __future__ import annotations

from enum import Enum

from core import DenialReason, Outcome, VerificationMethod
from handlers.emails import names_an_email
from store import Request, RequestStatus

__all__ = [
    "DENY_VIEW",
    "NOTE_FLAG",
    "NOTE_LIMIT",
    "NO_SHOPPER",
    "PARTLY_FLAG",
    "VERIFY_VIEW",
    "NoteProblem",
    "close_outcome",
    "denial_target",
    "denied",
    "method_named",
    "note_problem",
    "reason_named",
    "unverified",
]

NOTE_FLAG = "--note"
PARTLY_FLAG = "--partly"
NOTE_LIMIT = 500  # characters of a note: sealed in the database, shown to staff who ask about the case
NO_SHOPPER = "DATA_SUBJECT_NOT_FOUND"  # Amazon's error code: it holds no shopper with that email
VERIFY_VIEW = "record_verify"  # the Verify identity form's callback id
DENY_VIEW = "record_deny"  # the Deny form's callback id


class NoteProblem(Enum):
    """Why a note cannot be kept."""

    MISSING = "missing"  # ``other`` as a denial reason says what in a note
    UNFIT = "unfit"  # too long, or it names an email (notes are about the shopper, never their address)


def note_problem(note: str, *, needed: bool = False) -> NoteProblem | None:
    """What is wrong with ``note`` (``needed``: it may not be empty); None: it can be kept."""
    if not note.strip():
        return NoteProblem.MISSING if needed else None
    if len(note) > NOTE_LIMIT or names_an_email(note):
        return NoteProblem.UNFIT
    return None


def method_named(word: str) -> VerificationMethod | None:
    """The verification method ``word`` names (``order``, ``email``…), or None."""
    try:
        return VerificationMethod(word.strip().lower())
    except ValueError:
        return None


def reason_named(word: str) -> DenialReason | None:
    """The denial reason ``word`` names (``unverifiable``, ``exempt``…), or None."""
    try:
        return DenialReason(word.strip().lower())
    except ValueError:
        return None


def close_outcome(request: Request, *, partly: bool = False) -> Outcome:
    """The nature of the answer a close records: no data when Amazon found no shopper, else complied (in part)."""
    if request.status is RequestStatus.FAILED and any(error.code == NO_SHOPPER for error in request.errors):
        return Outcome.NO_DATA
    return Outcome.COMPLIED_IN_PART if partly else Outcome.COMPLIED


def denial_target(status: RequestStatus) -> RequestStatus:
    """Where a denial leaves a request: one still waiting for approval ends unstarted (nothing reaches Amazon);
    any other stays where Amazon has it."""
    return RequestStatus.REJECTED if status is RequestStatus.AWAITING_APPROVAL else status


def denied(request: Request) -> bool:
    """The case was closed as denied."""
    return request.outcome == Outcome.DENIED


def unverified(request: Request, *, required: bool) -> bool:
    """The shopper's identity must be recorded as verified first (IDENTITY_VERIFICATION=required), and is not."""
    return required and request.verified_at is None
