"""The compliance record's facts as the thread's first message shows them: identity, outcome, and its buttons.

Kept apart from ``handlers/texts/record.py`` (the replies, answers and forms) because the shared frame of
the first message (``handlers/texts/__init__.py``) draws them, and that frame is imported by every text module.
"""

from __future__ import annotations

from collections.abc import Collection

from core import DenialReason, Outcome, VerificationMethod
from handlers.buttons import DENY_ACTION, VERIFY_ACTION, button_value
from handlers.texts.blocks import Block, Message, actions, button, section
from handlers.texts.mrkdwn import date, escape_clip
from store import Request, RequestStatus

__all__ = [
    "HOW",
    "METHOD_WORDS",
    "REASON_WORDS",
    "WHY",
    "case_actions",
    "closed_line",
    "denied_reply",
    "how",
    "identity_line",
    "outcome_words",
    "parent_fields",
    "verified_reply",
    "why",
]

METHOD_WORDS = ", ".join(f"`{method.value}`" for method in VerificationMethod)  # as a command takes them
REASON_WORDS = ", ".join(f"`{reason.value}`" for reason in DenialReason)
# A method and a reason as a sentence says them.
HOW = {
    VerificationMethod.ORDER: "order details only the shopper knows",
    VerificationMethod.EMAIL: "the shopper's own email address",
    VerificationMethod.DOCUMENT: "a document",
    VerificationMethod.AGENT: "an authorized agent's proof of authority",
    VerificationMethod.OTHER: "another way (its note is kept with the case)",
}
WHY = {
    DenialReason.UNVERIFIABLE: "the shopper's identity could not be verified",
    DenialReason.EXEMPT: "an exemption in the law applies",
    DenialReason.WITHDRAWN: "the shopper withdrew the request",
    DenialReason.DUPLICATE: "it duplicates another request",
    DenialReason.UNFOUNDED: "the request is manifestly unfounded or excessive",
    DenialReason.OTHER: "another reason (its note is kept with the case)",
}


def how(method: str | None) -> str:
    """A verification method in words (an unknown stored value shown as it is, escaped)."""
    try:
        return HOW[VerificationMethod(method or "")]
    except ValueError:
        return escape_clip(method or "a way not recorded", 40)


def why(reason: str | None) -> str:
    """A denial reason in words (an unknown stored value shown as it is, escaped)."""
    try:
        return WHY[DenialReason(reason or "")]
    except ValueError:
        return escape_clip(reason or "no reason recorded", 40)


def outcome_words(request: Request) -> str:
    """The nature of the answer, as a list or a status line says it: ``complied in part``, ``denied (duplicate)``."""
    if request.outcome == Outcome.DENIED:
        return f"denied ({escape_clip(request.denial_reason or 'no reason', 40)})"
    return escape_clip(request.outcome or "answered", 40)


# ----------------------------------------------------------------- the thread's first message


def parent_fields(request: Request) -> list[tuple[str, str]]:
    """The first message's facts about the shopper's identity."""
    if request.verified_at is None:
        return [("Identity", "_not verified yet_")]
    when = date(request.verified_at, "then")
    return [("Identity", f"verified by <@{request.verified_by}> {when} ({escape_clip(request.verified_how, 40)})")]


def closed_line(request: Request) -> str:
    """The Status field once the case is closed: by whom, when, and the nature of the answer."""
    when = date(request.closed_at or 0, "then")
    if request.outcome == Outcome.DENIED:
        return f":no_entry: Denied by <@{request.closed_by}> {when}: {why(request.denial_reason)}"
    outcome = f" ({escape_clip(request.outcome, 40)})" if request.outcome else ""
    return f":lock: Closed: answer sent to the shopper by <@{request.closed_by}> {when}{outcome}"


def case_actions(request: Request, *, deniable: Collection[RequestStatus]) -> list[Block]:
    """**Verify identity** until it is recorded, and **Deny** where the kind allows it, while the case is open."""
    if request.closed_at is not None or request.status.never_started:
        return []
    value = button_value(request)
    offered = []
    if request.verified_at is None:
        offered.append(button("Verify identity", action_id=VERIFY_ACTION, value=value))
    if request.status in deniable:
        offered.append(button("Deny", action_id=DENY_ACTION, value=value))
    return [actions(f"case-{request.id}", *offered)] if offered else []


def identity_line(request: Request) -> str:
    """The shopper's identity in a sentence, for ``status``."""
    if request.verified_at is None:
        return "Identity: _not verified yet_"
    when = date(request.verified_at, "then")
    return f"Identity: verified by <@{request.verified_by}> {when}, by {how(request.verified_how)}"


# ----------------------------------------------------------------- thread replies


def verified_reply(request: Request) -> Message:
    text = (
        f":white_check_mark: <@{request.verified_by}> recorded the shopper's identity as verified by "
        f"{how(request.verified_how)}."
    )
    return {"text": "The shopper's identity is recorded as verified.", "blocks": [section(text)]}


def denied_reply(request: Request) -> Message:
    unstarted = request.status is RequestStatus.REJECTED
    then = " Nothing was sent to Buy with Prime." if unstarted else ""
    text = (
        f":no_entry: <@{request.closed_by}> denied this request: {why(request.denial_reason)}.{then} "
        "The case is closed; tell the shopper why."
    )
    said = escape_clip(request.denial_reason or "no reason", 40)
    return {"text": f"Denied: {said}. The case is closed.", "blocks": [section(text)]}
