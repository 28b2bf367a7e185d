"""Amazon's answers, read into typed results in one validation step.

Everything Buy with Prime (or a gateway in front of it) sends back passes
through one of these readers before the bot looks at it. An answer of the
wrong shape (a string where an object belongs, a number where the schema says
String, HTML instead of JSON) becomes ``PrimeUnavailable("unexpected answer")``:
a transient failure of that one call, which its caller retries on its own
schedule, never a stray ``AttributeError`` or ``TypeError`` in a worker loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core import PrimeUnavailable, TaskError, scrub
from prime._kinds import LINK_LIFETIME

__all__ = [
    "UNEXPECTED",
    "GraphQLErrorInfo",
    "TaskState",
    "read_data",
    "read_errors",
    "read_start",
    "read_task",
    "read_token",
    "unexpected",
]

UNEXPECTED = "UnexpectedAnswer"  # the ``kind`` of every off-shape answer


@dataclass(frozen=True, slots=True)
class TaskState:
    """A task as Amazon reports it at one moment. ``link`` (a retrieval's) is never stored or logged."""

    task_id: str
    status: str
    submitted: str
    updated: str
    errors: tuple[TaskError, ...] = ()
    link: str | None = field(default=None, repr=False)
    link_expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class GraphQLErrorInfo:
    """The first entry of a GraphQL ``errors[]``: what a caller needs to decide retry or refuse."""

    message: str
    kind: str  # extensions.classification.type, "" when Amazon gave none
    code: int | None  # extensions.classification.errorCode (an HTTP-like number), when given
    reason: str = ""  # extensions.classification.code (CannotCancelPersonalDataDeletionTask), "" when unspecified


def unexpected(what: str, *, needs_operator: bool = False, reached: bool = True) -> PrimeUnavailable:
    """The one error for an answer of the wrong shape; ``what`` says which part, never any data.

    ``needs_operator`` when it is not Amazon answering at all (a gateway's HTML page).
    """
    message = f"unexpected answer from Buy with Prime ({what})"
    return PrimeUnavailable(message, kind=UNEXPECTED, needs_operator=needs_operator, reached=reached)


def read_token(body: Any) -> tuple[str, float]:
    """The token endpoint's answer: (access token, lifetime in seconds)."""
    if not isinstance(body, dict):
        raise unexpected("the token endpoint did not answer a JSON object")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise unexpected("the token endpoint answered without a token")
    lifetime = body.get("expires_in", 900)
    if isinstance(lifetime, str) and lifetime.isdigit():
        lifetime = int(lifetime)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or not 0 < lifetime < 10**7:
        lifetime = 900.0
    return token, float(lifetime)


def read_errors(errors: Any) -> GraphQLErrorInfo:
    """The first of a non-empty ``errors`` member, checked field by field."""
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        raise unexpected("errors is not a list of objects")
    first = errors[0]
    message = first.get("message", "unknown error")
    extensions = first.get("extensions", {})
    if extensions is None:
        extensions = {}
    if not isinstance(message, str) or not isinstance(extensions, dict):
        raise unexpected("an error's message or extensions has the wrong type")
    classification = extensions.get("classification", {})
    if classification is None:
        classification = {}
    if not isinstance(classification, dict):
        raise unexpected("an error's classification is not an object")
    kind = classification.get("type", "")
    code = classification.get("errorCode")
    reason = classification.get("code", "")
    if kind is None:
        kind = ""
    if not isinstance(kind, str) or not (code is None or (isinstance(code, int) and not isinstance(code, bool))):
        raise unexpected("an error's classification has the wrong types")
    reason = reason if isinstance(reason, str) and reason != "UnspecifiedError" else ""
    return GraphQLErrorInfo(message=scrub(message or "unknown error"), kind=kind, code=code, reason=reason)


def read_data(body: Any) -> dict[str, Any]:
    """The ``data`` object of a successful GraphQL answer."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise unexpected("the answer has no data object")
    return data


def read_start(data: dict[str, Any], *, field_name: str) -> str:
    """A start's answer (``startPersonalDataRetrievalTask``, the kind's ``field_name``): the task id."""
    started = data.get(field_name)
    if not isinstance(started, dict):
        raise unexpected("the start answer is not an object")
    task_id = started.get("taskId")
    if not isinstance(task_id, str) or not task_id:
        raise unexpected("the start answer has no task id")
    return task_id


def read_task(data: dict[str, Any], *, field_name: str, task_id: str, asked_at: float) -> TaskState:
    """A task query's answer (``personalDataRetrievalTask``, the kind's ``field_name``).

    A completed retrieval comes with a link that works for ``LINK_LIFETIME`` from ``asked_at``.
    """
    task = data.get(field_name)
    if not isinstance(task, dict):
        raise unexpected("the task answer is not an object")
    status = task.get("status")
    answered_id = task.get("taskId", task_id)
    link = task.get("dataRetrievalLink")
    submitted, updated = task.get("submissionDate"), task.get("lastUpdatedDate")
    if not isinstance(status, str) or not status or not isinstance(answered_id, str):
        raise unexpected("the task answer has no status or task id")
    if not all(value is None or isinstance(value, str) for value in (link, submitted, updated)):
        raise unexpected("the task answer has a field of the wrong type")
    raw_errors = task.get("errors") or []
    if not isinstance(raw_errors, list):
        raise unexpected("the task's errors are not a list")
    errors = []
    for raw in raw_errors:
        if not isinstance(raw, dict):
            raise unexpected("a task error is not an object")
        code, message = raw.get("code"), raw.get("message") or ""
        if not (code is None or isinstance(code, str)) or not isinstance(message, str):
            raise unexpected("a task error's code or message is not text")
        errors.append(TaskError(code=code or None, message=scrub(message)))
    return TaskState(
        task_id=answered_id or task_id,
        status=status,
        submitted=submitted or "",
        updated=updated or "",
        errors=tuple(errors),
        link=link or None,
        link_expires_at=asked_at + LINK_LIFETIME if link else None,
    )
