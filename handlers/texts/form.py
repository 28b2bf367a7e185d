"""The new-request form (a bare ``/data-request``, or the "New data request" shortcut): the same fields as the command.

Each field is an input block whose block id and action id are the same name (``FIELD_*``), so a refusal is
shown beside the field that caused it (``response_action: "errors"`` keys errors by block id). A kind's own
options (an erasure's holding period and reason) come from its ``KindFlow.form_fields``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from core import ReceivedVia, VerificationMethod
from handlers.deadlines import CCPA_DAYS
from handlers.intake import REF_LIMIT
from handlers.kinds import FormField, KindFlow
from handlers.texts.blocks import modal
from handlers.texts.intake import LAW_NONE, VERIFIED_LABELS, VIA_LABELS

__all__ = [
    "FIELD_CHANNEL",
    "FIELD_EMAIL",
    "FIELD_KIND",
    "FIELD_LAW",
    "FIELD_RECEIVED",
    "FIELD_REF",
    "FIELD_VERIFIED",
    "FIELD_VIA",
    "FORM_VIEW",
    "field_id",
    "request_form",
]

FORM_VIEW = "data_request_form"  # the form's callback id
FIELD_KIND, FIELD_EMAIL, FIELD_RECEIVED, FIELD_VIA = "kind", "email", "received", "via"
FIELD_LAW, FIELD_REF, FIELD_VERIFIED, FIELD_CHANNEL = "law", "ref", "verified", "channel"
_LAWS = (("gdpr", "GDPR: one month"), ("ccpa", f"CCPA: {CCPA_DAYS} days"), (LAW_NONE, "None named: the default"))


def field_id(kind: KindFlow, field: FormField) -> str:
    """The block (and action) id of one of a kind's own fields: ``erasure_hold``."""
    return f"{kind.kind}_{field.flag.strip('-')}"


def _text(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": _text(label), "value": value}


def _input(name: str, label: str, element: dict[str, Any], *, optional: bool = False, hint: str = "") -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": name,
        "label": _text(label),
        "element": {**element, "action_id": name},
    }
    if optional:
        block["optional"] = True
    if hint:
        block["hint"] = _text(hint)
    return block


def _select(name: str, label: str, choices: Mapping[str, str], *, hint: str) -> dict[str, Any]:
    options = [_option(value, text) for value, text in choices.items()]
    element = {"type": "static_select", "placeholder": _text("Not recorded"), "options": options}
    return _input(name, label, element, optional=True, hint=hint)


def request_form(
    kinds: Sequence[KindFlow], *, today: date, metadata: Mapping[str, str], pick_channel: bool
) -> dict[str, Any]:
    """The form: kind, email, received, via, law, ref, verified, each kind's own fields; a channel when asked
    from a shortcut (``pick_channel``), which has no channel of its own. ``metadata`` rides along to the submission."""
    kind_options = [_option(kind.kind, kind.texts.form_label) for kind in kinds]
    blocks = [
        _input(
            FIELD_KIND,
            "Kind of request",
            {"type": "radio_buttons", "options": kind_options, "initial_option": kind_options[0]},
        ),
        _input(FIELD_EMAIL, "Shopper's email", {"type": "plain_text_input", "placeholder": _text("jane@example.com")}),
        _input(
            FIELD_RECEIVED,
            "Received on",
            {"type": "datepicker", "initial_date": today.isoformat()},
            hint="The day the shopper asked: the answer's due date counts from it.",
        ),
        _select(FIELD_VIA, "Received via", {v.value: VIA_LABELS[v.value] for v in ReceivedVia}, hint="How they asked."),
        _input(
            FIELD_LAW,
            "Law",
            {
                "type": "radio_buttons",
                "options": [_option(value, label) for value, label in _LAWS],
                "initial_option": _option(*_LAWS[-1]),
            },
        ),
        _input(
            FIELD_REF,
            "Your ticket's reference",
            {"type": "plain_text_input", "max_length": REF_LIMIT, "placeholder": _text("ZD-4711")},
            optional=True,
            hint="One word, shown in the thread; /data-request status finds the case by it.",
        ),
        _select(
            FIELD_VERIFIED,
            "Identity already verified by",
            {v.value: VERIFIED_LABELS[v.value] for v in VerificationMethod},
            hint="Leave empty if the shopper's identity is not verified yet.",
        ),
    ]
    for kind in kinds:
        for field in kind.form_fields:
            element: dict[str, Any] = {"type": "plain_text_input", "multiline": field.multiline}
            if field.max_length:
                element["max_length"] = field.max_length
            blocks.append(_input(field_id(kind, field), field.label, element, optional=True, hint=field.hint))
    if pick_channel:
        picker = {
            "type": "conversations_select",
            "default_to_current_conversation": True,
            "response_url_enabled": True,  # Slack sends a response_url for the channel: refusals reach the asker
            "filter": {"include": ["public", "private"], "exclude_bot_users": True},
        }
        blocks.append(_input(FIELD_CHANNEL, "Channel for the request's thread", picker))
    return modal(
        callback_id=FORM_VIEW,
        metadata=json.dumps(dict(metadata)),
        title="New data request",
        submit="Start request",
        close="Cancel",
        blocks=blocks,
    )
