"""The kinds of request the bot runs: the one name every package uses for them."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RequestKind"]


class RequestKind(StrEnum):
    """The kinds of request the bot runs; the value is what the database's ``kind`` column holds."""

    RETRIEVAL = "retrieval"  # GDPR access, CCPA right to know
    ERASURE = "erasure"  # GDPR erasure, CCPA deletion (Amazon's word, kept to its API)
