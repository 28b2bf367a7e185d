"""Amazon's privacy tasks as the fake Buy with Prime keeps them: the tasks, the clientToken rule, the resolvers.

``FakePrime`` (prime.py) serves these over HTTP and injects failures; this part
is what Amazon does with a valid request: the five privacy operations of
``privacy.graphql``, retrieval and deletion, and the moves a test makes in
Amazon's place (complete, fail, end a hold).
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLError

__all__ = [
    "CANCEL",
    "DELETION_QUERY",
    "ERROR_TYPES",
    "QUERY",
    "START",
    "START_DELETION",
    "TOKEN_WINDOW",
    "Task",
    "TaskBook",
    "amazon_error",
]

START = "startPersonalDataRetrievalTask"
QUERY = "personalDataRetrievalTask"
START_DELETION = "startPersonalDataDeletionTask"
DELETION_QUERY = "personalDataDeletionTask"
CANCEL = "cancelPersonalDataDeletionTask"
TOKEN_WINDOW = 8 * 3600  # Amazon: the same clientToken within 8 hours returns the same task

EMAIL = re.compile(r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+[.][a-zA-Z]{2,}$")

# type -> (errorType, errorCode), as Amazon's classification names them
ERROR_TYPES: dict[str, tuple[str, int]] = {
    "ValidationError": ("ValidationException", 400),
    "AccessDeniedError": ("AccessDeniedException", 403),
    "ResourceNotFoundError": ("ResourceNotFoundException", 404),
    "ConflictError": ("ConflictException", 409),
    "ThrottlingError": ("ThrottlingException", 429),
    "InternalServerError": ("InternalServerException", 500),
}


def amazon_error(
    kind: str, message: str, path: list[str | int] | None = None, *, code: str = "UnspecifiedError"
) -> dict[str, Any]:
    """Build one entry of ``errors[]`` in Amazon's shape, with its classification."""
    error_type, status = ERROR_TYPES[kind]
    classification = {"type": kind, "code": code, "errorType": error_type, "errorCode": status}
    return {"message": message, "path": path, "extensions": {"classification": classification}}


def _raise(kind: str, message: str, *, code: str = "UnspecifiedError") -> GraphQLError:
    return GraphQLError(message, extensions=amazon_error(kind, message, code=code)["extensions"])


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(slots=True)
class Task:
    """A task as Amazon keeps it; tests move it on with complete(), fail() and release_hold().

    ``kind`` is "retrieval" or "deletion"; the last four fields are the deletion's (as the acceptance kit names them).
    """

    task_id: str
    email: str
    client_token: str
    status: str = "IN_PROGRESS"
    errors: list[dict[str, str]] = field(default_factory=list)
    submitted: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)
    kind: str = "retrieval"
    started_at: float = 0.0  # by the book's clock: when the clientToken was first used
    holding_period: int | None = None
    reason: str | None = None
    cancelled: bool = False


class TaskBook:
    """Tasks by id, the 8-hour clientToken rule per operation, and one resolver per privacy operation.

    ``clock`` (default ``time.time``) is what the 8-hour window is measured by; a test moves it to pass the window.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.tasks: dict[str, Task] = {}
        self.by_client_token: dict[tuple[str, str], str] = {}  # (kind, clientToken) -> task id
        self.links: list[tuple[str, str]] = []

    def resolvers(self) -> dict[str, Callable[..., Any]]:
        """The root value graphql-core resolves each operation's field with."""
        return {
            START: self._start_retrieval,
            QUERY: self._retrieval,
            START_DELETION: self._start_deletion,
            DELETION_QUERY: self._deletion,
            CANCEL: self._cancel,
        }

    # ------------------------------------------------------------------ a test, in Amazon's place
    def complete(self, task_id: str) -> None:
        """Mark a task COMPLETED, as Amazon does before sending the event."""
        task = self.tasks[task_id]
        task.status, task.errors, task.updated = "COMPLETED", [], _now()

    def fail(
        self,
        task_id: str,
        code: str = "DATA_SUBJECT_NOT_FOUND",
        message: str = "No shopper was found for the email address in the request.",
    ) -> None:
        """Mark a task FAILED with one of Amazon's error codes."""
        task = self.tasks[task_id]
        task.status, task.errors, task.updated = "FAILED", [{"code": code, "message": message}], _now()

    def release_hold(self, task_id: str) -> None:
        """The holding period is over: the deletion runs, and can no longer be cancelled."""
        task = self.tasks[task_id]
        assert task.kind == "deletion" and task.status == "ON_HOLD", (task.kind, task.status)
        task.status, task.updated = "IN_PROGRESS", _now()

    def retrieval_tasks(self) -> list[str]:
        """Return the ids of retrieval tasks, in the order they started."""
        return [task_id for task_id, task in self.tasks.items() if task.kind == "retrieval"]

    def deletion_tasks(self) -> list[str]:
        """Return the ids of deletion tasks, in the order they started."""
        return [task_id for task_id, task in self.tasks.items() if task.kind == "deletion"]

    # ------------------------------------------------------------------ resolvers
    def _subject(self, input: dict[str, Any], kind: str) -> tuple[str, str, Task | None]:
        """The email and clientToken, checked; and the task this token already started within 8 hours, if any."""
        email = input["dataSubject"].get("email") or ""
        if not EMAIL.match(email):
            raise _raise("ValidationError", "Input request is not valid: dataSubject.email")
        client_token = (input.get("clientToken") or {}).get("token")
        if client_token is None:
            client_token = str(uuid.uuid4())  # Amazon makes one up: no idempotency for the caller
        if not 36 <= len(client_token) <= 64:
            raise _raise("ValidationError", "Input request is not valid: clientToken.token must be 36-64 characters")
        known = self.tasks.get(self.by_client_token.get((kind, client_token), ""))
        if known is not None and self.clock() - known.started_at >= TOKEN_WINDOW:
            known = None
        if known is not None and known.email != email:
            raise _raise("ConflictError", "clientToken was already used for a different request")
        return email, client_token, known

    def _add(self, task: Task) -> dict[str, str]:
        self.tasks[task.task_id] = task
        self.by_client_token[(task.kind, task.client_token)] = task.task_id
        return {"taskId": task.task_id}

    def _start_retrieval(self, _info: object, input: dict[str, Any]) -> dict[str, str]:
        email, client_token, known = self._subject(input, "retrieval")
        if known is not None:
            return {"taskId": known.task_id}
        return self._add(Task(str(uuid.uuid4()), email, client_token, started_at=self.clock()))

    def _start_deletion(self, _info: object, input: dict[str, Any]) -> dict[str, str]:
        email, client_token, known = self._subject(input, "deletion")
        hold = input.get("holdingPeriod")
        hold = 10 if hold is None else hold  # Amazon's default
        if not 0 <= hold <= 180:
            raise _raise(
                "ValidationError",
                "Input request is not valid, the following issues were encountered: "
                "[/startPersonalDataDeletionTask/input/holdingPeriod must be between 0 and 180]",
            )
        if known is not None:
            return {"taskId": known.task_id}
        task = Task(str(uuid.uuid4()), email, client_token, kind="deletion", started_at=self.clock())
        task.status = "ON_HOLD" if hold > 0 else "IN_PROGRESS"
        task.holding_period, task.reason = hold, input.get("reason")
        return self._add(task)

    def _find(self, task_id: str, kind: str) -> Task:
        task = self.tasks.get(task_id)
        if task is None or task.kind != kind or task.cancelled:
            # What Amazon answers for a cancelled task is not documented; the acceptance kit's fake says "not found".
            raise _raise("ResourceNotFoundError", f"Task {task_id} not found")
        return task

    def _retrieval(self, _info: object, taskId: str) -> dict[str, Any]:  # noqa: N803
        task = self._find(taskId, "retrieval")
        link = None
        if task.status == "COMPLETED":
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            link = (
                f"https://buy-with-prime-requested-data.s3.amazonaws.com/privacyRequest/{task.task_id}"
                f"/result/data_retrieval.zip?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={stamp}"
                f"&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature={secrets.token_hex(32)}"
            )
            self.links.append((task.task_id, link))
        return {**self._common(task), "dataRetrievalLink": link}

    def _deletion(self, _info: object, taskId: str) -> dict[str, Any]:  # noqa: N803
        task = self._find(taskId, "deletion")
        return {**self._common(task), "holdingPeriod": task.holding_period}

    def _cancel(self, _info: object, taskId: str) -> dict[str, str]:  # noqa: N803
        task = self._find(taskId, "deletion")
        if task.status != "ON_HOLD":
            raise _raise(
                "ValidationError",
                f"The personalDataDeletionTask cannot be cancelled with a status of {task.status}.",
                code="CannotCancelPersonalDataDeletionTask",
            )
        task.cancelled, task.updated = True, _now()
        return {"taskId": task.task_id}

    @staticmethod
    def _common(task: Task) -> dict[str, Any]:
        return {
            "taskId": task.task_id,
            "status": task.status,
            "submissionDate": task.submitted,
            "lastUpdatedDate": task.updated,
            "dataSubject": {"type": "SHOPPER", "email": task.email},
            "errors": list(task.errors) if task.status == "FAILED" else None,
        }
