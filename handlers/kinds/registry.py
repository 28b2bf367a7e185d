"""Every kind of request the bot runs, by the value of the database's ``kind`` column: one entry each.

A new kind is a package of its own under ``handlers/kinds/`` (its ``KindFlow``, its rules, texts and
buttons) and one entry here; the shared steps follow the entry (``handlers/kinds/__init__.py`` says what
an entry provides). Nothing but the wiring reads this registry: everything else is handed ``Flow.kinds``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from handlers.kinds import KindFlow, KindSettings
from handlers.kinds.erasure import ERASURE_FLOW
from handlers.kinds.retrieval import RETRIEVAL_FLOW
from store import RequestStatus

__all__ = ["KINDS", "defaults", "free_text", "opened"]

KINDS: Mapping[str, KindFlow] = MappingProxyType({flow.kind: flow for flow in (RETRIEVAL_FLOW, ERASURE_FLOW)})


def defaults(kinds: Mapping[str, KindFlow], settings: KindSettings) -> Mapping[str, Mapping[str, str]]:
    """Each kind's params a command may leave out, as ``settings`` give them."""
    return {kind: flow.defaults(settings) for kind, flow in kinds.items()}


def opened(kinds: Mapping[str, KindFlow]) -> Mapping[str, RequestStatus]:
    """Where a request of each kind goes once its thread is posted."""
    return {kind: flow.opened for kind, flow in kinds.items()}


def free_text(kinds: Mapping[str, KindFlow]) -> frozenset[str]:
    """Every kind's params that staff type freely: erased with the email at retention."""
    return frozenset().union(*(flow.free_text for flow in kinds.values()))
