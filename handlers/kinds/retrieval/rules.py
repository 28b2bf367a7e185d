"""What a retrieval is, apart from its words: its one button's id (the flow routes it, the texts draw it)."""

from __future__ import annotations

__all__ = ["DOWNLOAD_ACTION"]

DOWNLOAD_ACTION = "download_data"
