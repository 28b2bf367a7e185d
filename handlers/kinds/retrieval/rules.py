"""What a retrieval is, apart from its words: its one button's id (the flow routes it, the texts draw it), and
where **Deny** closes one."""

from __future__ import annotations

from store import RequestStatus

__all__ = ["DENIABLE", "DOWNLOAD_ACTION"]

DOWNLOAD_ACTION = "download_data"
# A retrieval harms nobody while it runs: it may be denied from its start on (its data is then never downloaded).
DENIABLE = frozenset({RequestStatus.STARTING, RequestStatus.IN_PROGRESS, RequestStatus.COMPLETED, RequestStatus.FAILED})
