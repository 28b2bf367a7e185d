"""An erasure (GDPR erasure, CCPA deletion), as the shared steps run it: its entry in ``KINDS``.

``/data-request delete <email> [--hold Nd] [--reason <words>]`` stores it and opens its thread, where it
waits (AWAITING_APPROVAL, its ``opened``) until an allowed person other than the requester clicks
Approve; only then does the shared lifecycle start it at Amazon, with the holding period and the reason.
Amazon holds the task (ON_HOLD: *Cancel deletion* works), then deletes (IN_PROGRESS), then ends it
COMPLETED, or FAILED with its reasons (open orders: *Try again* starts a new task). COMPLETED is final.
Amazon's word wins over what the bot believed: a task recorded as cancelled that Amazon runs after all
moves on, and the thread says so loudly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from handlers.deadlines import days_typed
from handlers.kinds import FormField, KindFlow, Move
from handlers.kinds.erasure import answers as say
from handlers.kinds.erasure import buttons
from handlers.kinds.erasure.rules import (
    APPROVE_ACTION,
    CANCEL_ACTION,
    REASON_LIMIT,
    REJECT_ACTION,
    REJECT_VIEW,
    RETRY_ACTION,
    hold_days,
    reason_problem,
)
from handlers.kinds.erasure.texts import ERASURE_TEXTS
from prime import DELETION, MAX_HOLD_DAYS
from store import Request, RequestStatus

__all__ = ["ERASURE_FLOW", "HOLD_FLAG", "REASON_FLAG", "parse_hold", "read_options"]

HOLD_FLAG = "--hold"
REASON_FLAG = "--reason"
HOLD_ENDED = "hold ended"  # the audit log's word for the end of Amazon's holding period
CANCEL_CONTRADICTED = "cancel contradicted"  # Amazon ran a task the bot had recorded as cancelled
_ON_HOLD, _IN_PROGRESS = RequestStatus.ON_HOLD, RequestStatus.IN_PROGRESS
_COMPLETED, _FAILED, _CANCELLED = RequestStatus.COMPLETED, RequestStatus.FAILED, RequestStatus.CANCELLED
# Amazon's word is applied whatever the bot believed: a task it had recorded as cancelled that runs after all
# is shown, loudly (``cancel_contradicted``), and every step the bot did not see is audited.
_UNSEEN = {_ON_HOLD: (HOLD_ENDED,), _CANCELLED: (CANCEL_CONTRADICTED, HOLD_ENDED)}
_CONTRADICTED = {_CANCELLED: "cancel_contradicted"}


def parse_hold(word: str) -> int | None:
    """``10d`` or ``10``: a holding period Amazon accepts (0 to 180 days); None otherwise."""
    days = days_typed(word)
    return days if days is not None and 0 <= days <= MAX_HOLD_DAYS else None


def read_options(words: Sequence[str]) -> tuple[dict[str, str], list[str]] | str:
    """An erasure's own words: ``--hold Nd``, and ``--reason`` with every word after it; the rest is shared.

    ``--new`` has no job here: an open erasure is never started twice, and a closed one needs none.
    """
    params: dict[str, str] = {}
    rest: list[str] = []
    items = iter(enumerate(words))
    for index, word in items:
        lowered = word.lower()
        if lowered == REASON_FLAG:
            reason = " ".join(words[index + 1 :])
            if not reason:
                return say.reason_needs_words(REASON_FLAG)
            if (problem := reason_problem(reason)) is not None:
                return say.reason_refused(problem)
            params["reason"] = reason
            break
        if lowered == HOLD_FLAG:
            days = parse_hold(next(items, (0, ""))[1])
            if days is None:
                return say.hold_refused(HOLD_FLAG)
            params["hold_days"] = str(days)
        elif lowered == "--new":
            return say.never_twice()
        else:
            rest.append(word)
    return params, rest


def _start_params(request: Request) -> Mapping[str, object]:
    reason = request.params.get("reason")
    return {"holdingPeriod": hold_days(request), **({"reason": reason} if reason else {})}


ERASURE_FLOW = KindFlow(
    operations=DELETION,
    texts=ERASURE_TEXTS,
    moves={
        "IN_PROGRESS": Move(
            frozenset({_ON_HOLD, _CANCELLED}),
            _IN_PROGRESS,
            HOLD_ENDED,
            replies_after=_CONTRADICTED,
            passed={_CANCELLED: (CANCEL_CONTRADICTED,)},
        ),
        # From ON_HOLD too: an event can come when the bot never saw the hold end.
        "COMPLETED": Move(
            frozenset({_ON_HOLD, _IN_PROGRESS, _CANCELLED}),
            _COMPLETED,
            "completed",
            reply="completed",
            replies_after=_CONTRADICTED,
            passed=_UNSEEN,
        ),
        "FAILED": Move(
            frozenset({_ON_HOLD, _IN_PROGRESS, _CANCELLED}),
            _FAILED,
            "failed",
            reply="failed",
            replies_after=_CONTRADICTED,
            errors=True,
            passed=_UNSEEN,
        ),
    },
    waiting=frozenset({"ON_HOLD"}),
    started=lambda request: _ON_HOLD if hold_days(request) > 0 else _IN_PROGRESS,
    hold_days=hold_days,
    duplicate_window=0.0,  # only an open erasure is a duplicate: nothing like the 8-hour window applies
    actions={
        APPROVE_ACTION: buttons.on_approve,
        REJECT_ACTION: buttons.on_reject,
        CANCEL_ACTION: buttons.on_cancel,
        RETRY_ACTION: buttons.on_retry,
    },
    views={REJECT_VIEW: buttons.on_reject_submitted},
    verb="delete",
    options=read_options,
    start_params=_start_params,
    note=lambda params: f"erasure; hold {params.get('hold_days', '?')} days",
    opened=RequestStatus.AWAITING_APPROVAL,  # two people decide before anything goes to Amazon
    defaults=lambda settings: {"hold_days": str(settings.deletion_hold_days)},
    free_text=frozenset({"reason", "reject_reason"}),
    form_fields=(
        FormField(HOLD_FLAG, "Holding period in days (erasure)", hint=say.hold_hint(), max_length=4),
        FormField(REASON_FLAG, "Reason (erasure)", hint=say.reason_hint(), multiline=True, max_length=REASON_LIMIT),
    ),
)
