"""Amazon's vocabulary the rest of the bot shares."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TaskError"]


@dataclass(frozen=True, slots=True)
class TaskError:
    """One of Amazon's reasons for a failed task (``DATA_SUBJECT_NOT_FOUND``, ``ORDERS_NOT_CLOSED``, …)."""

    code: str | None
    message: str
