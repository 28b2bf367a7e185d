"""What staff read about a request's intake facts: refusals of what they typed, the facts line, the form.

The refusals are words without an example: the command adds one (``usage_error``), the form shows them
beside the field. The form's field names are here too, so one voice labels the command and the form.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from handlers.texts.mrkdwn import date as shown_date
from handlers.texts.mrkdwn import escape, escape_clip

__all__ = [
    "LAW_NONE",
    "VERIFIED_LABELS",
    "VIA_LABELS",
    "channel_needed",
    "facts_line",
    "form_failed",
    "kind_field_not_for",
    "not_an_email",
    "not_one_of",
    "one_value_only",
    "received_in_future",
    "received_not_a_date",
    "ref_names_email",
    "ref_not_one_word",
    "ref_too_long",
]

_TYPED = 40  # characters of a mistyped value echoed back
LAW_NONE = "none"  # the form's choice for "no law named": the default deadline
VIA_LABELS = {
    "email": "Email",
    "form": "Web form",
    "phone": "Phone",
    "mail": "Letter",
    "agent": "Authorized agent",
    "other": "Other",
}
VERIFIED_LABELS = {
    "order": "Order details only the shopper knows",
    "email": "From the shopper's own email address",
    "document": "Identity document",
    "agent": "Agent's proof of authority",
    "other": "Other",
}


def received_not_a_date(typed: str, *, flag: str) -> str:
    shown = escape_clip(typed or "nothing", _TYPED)
    return f"`{flag}` takes the day the shopper asked as YYYY-MM-DD, like `2026-03-01`; `{shown}` is not a date."


def received_in_future(day: date) -> str:
    return (
        f"{day.isoformat()} is in the future: give the day the shopper asked (today or earlier), "
        "so their deadline counts from it."
    )


def not_one_of(typed: str, *, flag: str, choices: Sequence[str]) -> str:
    shown = escape_clip(typed.strip() or "nothing", _TYPED)
    listed = ", ".join(f"`{choice}`" for choice in choices)
    return f"`{flag}` takes one of {listed}; `{shown}` is none of them."


def ref_not_one_word(*, flag: str) -> str:
    return f"`{flag}` takes your ticket's reference as one word without backticks, like `ZD-4711`."


def ref_too_long(limit: int) -> str:
    return f"A reference is at most {limit} characters, like `ZD-4711`."


def ref_names_email() -> str:
    return "A reference must not hold an email address: it is shown in the channel. Use the ticket's number."


def kind_field_not_for(noun: str) -> str:
    return f"Only for an {noun}: leave it empty, or choose that kind of request."


def not_an_email(typed: str) -> str:
    shown = escape_clip(typed.strip() or "nothing", _TYPED)
    return f"{shown} is not an email address Buy with Prime accepts. Example: jane@example.com"


def one_value_only() -> str:
    return "Give one value here, like 10."


def channel_needed() -> str:
    return "Choose the channel where the request's thread should open (not a direct message)."


def form_failed() -> str:
    return "Slack did not open the form; run `/data-request` again, or type the command with its options."


def facts_line(
    *,
    received_on: str,
    law: str,
    via: str | None,
    outside_ref: str | None,
    extension_told_at: float | None = None,
) -> str:
    """The thread's one line of intake facts: received, law, how, staff's ticket (identity has a field of its own)."""
    parts = [f"Received {received_on}" if received_on else "Received: not recorded"]
    parts.append(law)
    parts.append(f"via {escape(via)}" if via else "via: not recorded")
    if outside_ref:
        parts.append(f"ref `{escape(outside_ref)}`")
    if extension_told_at is not None:
        parts.append(f"shopper told of the extension {shown_date(extension_told_at, 'then', time=False)}")
    return " · ".join(parts)
