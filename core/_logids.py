"""Ids that tie a log line to a case (request, task), carried by the records logged while working on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["CONTEXT_FIELDS", "case_context", "current_ids", "log_ids"]

# Attributes a log call may attach with ``extra=``; ids only, never personal data.
CONTEXT_FIELDS = ("request_id", "task_id", "event_id", "outbox_id")

_CASE: ContextVar[dict[str, Any]] = ContextVar("log_case", default={})  # noqa: B039 (never mutated)


@contextmanager
def case_context(*, request_id: int | None = None, task_id: str | None = None) -> Iterator[None]:
    """Every record logged inside (in this task and tasks it starts) carries these ids."""
    token = _CASE.set({**_CASE.get(), **log_ids(request_id=request_id, task_id=task_id)})
    try:
        yield
    finally:
        _CASE.reset(token)


def log_ids(*, request_id: int | None = None, task_id: str | None = None) -> dict[str, Any]:
    """``extra=`` for a log call about one case: its request id and, once known, its task id."""
    ids: dict[str, Any] = {}
    if request_id is not None:
        ids["request_id"] = request_id
    if task_id is not None:
        ids["task_id"] = task_id
    return ids


def current_ids() -> dict[str, Any]:
    """The ids of the case being worked on in this task, for the log handler's filter."""
    return _CASE.get()
