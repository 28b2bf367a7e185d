"""Every kind of request the bot runs, by the value of the database's ``kind`` column: one entry each.

A new kind is added here (one line) and in its own modules (its ``KindFlow``, its texts, its buttons);
the shared steps follow the entry (see ``handlers/kinds/__init__.py`` for what an entry provides).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from handlers.kinds import KindFlow
from handlers.kinds.erasure import ERASURE_FLOW
from handlers.kinds.retrieval import RETRIEVAL_FLOW

__all__ = ["KINDS"]

KINDS: Mapping[str, KindFlow] = MappingProxyType({flow.kind: flow for flow in (RETRIEVAL_FLOW, ERASURE_FLOW)})
