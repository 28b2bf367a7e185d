"""A retrieval (GDPR access, CCPA right to know), as the shared steps run it: its entry in ``KINDS``.

Amazon starts the task at once (it cannot be cancelled) and ends it COMPLETED, with a new 60-second
link at every query, or FAILED with its reasons. A completed task can still fail afterwards (its data
could not be kept): COMPLETED moves on to FAILED, so the thread, ``status`` and Download all say so.
Nothing leaves FAILED. Its one button of its own is Download (``handlers/kinds/retrieval/download.py``).
"""

from __future__ import annotations

from handlers.kinds import KindFlow, Move
from handlers.kinds.retrieval.download import handle_download
from handlers.kinds.retrieval.rules import DOWNLOAD_ACTION
from handlers.kinds.retrieval.texts import RETRIEVAL_TEXTS
from prime import CLIENT_TOKEN_WINDOW, RETRIEVAL
from store import RequestStatus

__all__ = ["RETRIEVAL_FLOW"]

_IN_PROGRESS, _COMPLETED, _FAILED = RequestStatus.IN_PROGRESS, RequestStatus.COMPLETED, RequestStatus.FAILED

RETRIEVAL_FLOW = KindFlow(
    operations=RETRIEVAL,
    texts=RETRIEVAL_TEXTS,
    moves={
        "COMPLETED": Move(frozenset({_IN_PROGRESS}), _COMPLETED, "completed", reply="completed"),
        "FAILED": Move(
            frozenset({_IN_PROGRESS, _COMPLETED}),
            _FAILED,
            "failed",
            reply="failed",
            replies_after={_COMPLETED: "failed_after_completion"},
            errors=True,
        ),
    },
    waiting=frozenset({"IN_PROGRESS"}),
    # Amazon returns the same task for the same clientToken within 8 hours: the bot refuses a second
    # request for the same shopper within that window (or while one is open) unless asked with --new.
    duplicate_window=CLIENT_TOKEN_WINDOW,
    actions={DOWNLOAD_ACTION: handle_download},
)
