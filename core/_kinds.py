"""The kinds of request the bot runs: the one name every package uses for them."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RequestKind"]


class RequestKind(StrEnum):
    """The kinds of request the bot runs; the value is what the database's ``kind`` column holds."""

    RETRIEVAL = "retrieval"  # GDPR access, CCPA right to know
    # GDPR erasure, CCPA deletion. The stored word is Amazon's ("deletion"): the rows keep it until the schema's
    # baseline renames it, and the member is named as the rest of the code names the kind.
    ERASURE = "deletion"
