"""Amazon's privacy tasks, modelled once: input checks, the 8-hour clientToken window, and each task's state.

No HTTP here: ``offline/amazon.py`` serves this model over Amazon's endpoints, for
``serve --sandbox`` and, subclassed with failure injection, for the tests' fake.
A task moves on two ways. By the clock: IN_PROGRESS for ``complete_after``
seconds, a deletion first ON_HOLD for ``hold_seconds`` per day of its holding
period (the sandbox). Or by a hand in Amazon's place: ``complete``, ``fail``,
``release_hold`` (the tests, whose model's clock never ends a task: both
durations are infinite by default).

A task id carries its start time, its holding period and its outcome, so a
restarted sandbox still answers for the tasks it started (only a cancel, the
shopper's email and the clientToken memory live in this process alone).

Outcomes by email, as in docs/operating.md's sandbox section: an address starting
``notfound`` ends FAILED with DATA_SUBJECT_NOT_FOUND, one starting
``openorders`` with ORDERS_NOT_CLOSED; every other address ends COMPLETED.
"""

from __future__ import annotations

import math
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError

from core import AMAZON_EMAIL
from prime import CLIENT_TOKEN_WINDOW, DEFAULT_HOLD_DAYS, MAX_HOLD_DAYS

__all__ = [
    "CANCEL",
    "DELETION_QUERY",
    "ERROR_TYPES",
    "FAILURES",
    "QUERY",
    "START",
    "START_DELETION",
    "PrivacyTasks",
    "Task",
    "amazon_error",
    "stamp",
]

# The five operations of privacy.graphql, by field name.
START = "startPersonalDataRetrievalTask"
QUERY = "personalDataRetrievalTask"
START_DELETION = "startPersonalDataDeletionTask"
DELETION_QUERY = "personalDataDeletionTask"
CANCEL = "cancelPersonalDataDeletionTask"

ERROR_TYPES: dict[str, tuple[str, int]] = {  # classification type -> (errorType, errorCode), as Amazon names them
    "ValidationError": ("ValidationException", 400),
    "AccessDeniedError": ("AccessDeniedException", 403),
    "ResourceNotFoundError": ("ResourceNotFoundException", 404),
    "ConflictError": ("ConflictException", 409),
    "ThrottlingError": ("ThrottlingException", 429),
    "InternalServerError": ("InternalServerException", 500),
}
FAILURES = {  # a failed task's error code -> its message
    "DATA_SUBJECT_NOT_FOUND": "The shopper email for this request does not exist",
    "ORDERS_NOT_CLOSED": "The shopper has Buy with Prime orders that are not closed",
}
_OUTCOMES = {"c": None, "n": "DATA_SUBJECT_NOT_FOUND", "o": "ORDERS_NOT_CLOSED"}  # in the id: the failure, if any
_RETRIEVAL_ID = re.compile(r"sbx-([0-9a-f]+)-([cno])-[0-9a-f]{12}")  # start time in milliseconds, outcome, nonce
_DELETION_ID = re.compile(r"sbxdel-([0-9a-f]+)-([0-9]{1,3})d-([cno])-[0-9a-f]{12}")  # ... and the hold in days


def amazon_error(
    kind: str, message: str, path: list[str | int] | None = None, *, code: str = "UnspecifiedError"
) -> dict[str, Any]:
    """One entry of ``errors[]`` as Amazon writes it: ``extensions.classification`` says what kind of error."""
    error_type, status = ERROR_TYPES[kind]
    classification = {"type": kind, "code": code, "errorType": error_type, "errorCode": status}
    return {"message": message, "path": path, "extensions": {"classification": classification}}


def _refusal(kind: str, message: str, *, code: str = "UnspecifiedError") -> GraphQLError:
    """What a resolver raises: graphql-core puts it in ``errors[]`` with its path, the field's data null."""
    return GraphQLError(message, extensions=amazon_error(kind, message, code=code)["extensions"])


def stamp(at: float) -> str:
    """A time as Amazon's answers write it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _outcome(email: str) -> str:
    local = email.lower()
    return "n" if local.startswith("notfound") else "o" if local.startswith("openorders") else "c"


@dataclass(slots=True)
class Task:
    """A task as Amazon keeps it. ``kind`` is "retrieval" or "deletion"; ``hold_ends`` and ``ends`` are when the
    clock moves it on (never, unless the model has durations); ``outcome`` is how it then ends."""

    task_id: str
    email: str | None
    client_token: str
    status: str = "IN_PROGRESS"
    errors: list[dict[str, str]] = field(default_factory=list)
    submitted: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    kind: str = "retrieval"
    holding_period: int | None = None
    reason: str | None = None
    cancelled: bool = False
    hold_ends: float = math.inf
    ends: float = math.inf
    outcome: str = "c"

    @property
    def ended(self) -> str:
        """The status the clock ends it with: COMPLETED, or FAILED with its outcome's error."""
        return "COMPLETED" if _OUTCOMES.get(self.outcome) is None else "FAILED"


class PrivacyTasks:
    """Tasks by id, the clientToken window per operation, and one resolver per privacy operation.

    ``clock`` measures the clientToken's 8 hours, the tasks' durations and their dates. Subclasses serve it:
    ``_link`` makes a completed retrieval's pre-signed link, ``_started`` hears of each new task.
    """

    def __init__(
        self,
        *,
        complete_after: float = math.inf,
        hold_seconds: float = math.inf,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.tasks: dict[str, Task] = {}
        self._complete_after = complete_after
        self._hold_seconds = hold_seconds  # one day of a deletion's holding period
        self._by_client_token: dict[tuple[str, str], str] = {}  # (kind, clientToken) -> task id

    def resolvers(self) -> dict[str, Callable[..., Any]]:
        """The root value graphql-core resolves each operation's field with."""
        return {
            START: self._start_retrieval,
            QUERY: self._retrieval,
            START_DELETION: self._start_deletion,
            DELETION_QUERY: self._deletion,
            CANCEL: self._cancel,
        }

    def retrieval_tasks(self) -> list[str]:
        """The ids of retrieval tasks, in the order they started."""
        return [task_id for task_id, task in self.tasks.items() if task.kind == "retrieval"]

    def deletion_tasks(self) -> list[str]:
        """The ids of deletion tasks, in the order they started."""
        return [task_id for task_id, task in self.tasks.items() if task.kind == "deletion"]

    # ------------------------------------------------------------------ a hand in Amazon's place
    def complete(self, task_id: str) -> None:
        """Mark a task COMPLETED, as Amazon does before sending the event."""
        task = self.tasks[task_id]
        task.status, task.errors, task.updated = "COMPLETED", [], self.clock()

    def fail(self, task_id: str, code: str = "DATA_SUBJECT_NOT_FOUND", message: str | None = None) -> None:
        """Mark a task FAILED with one of Amazon's error codes (and its usual message unless given)."""
        task = self.tasks[task_id]
        text = FAILURES.get(code, "The task failed") if message is None else message
        task.status, task.errors, task.updated = "FAILED", [{"code": code, "message": text}], self.clock()

    def release_hold(self, task_id: str) -> None:
        """End a deletion's holding period now: it runs, and can no longer be cancelled."""
        task = self.tasks[task_id]
        assert task.kind == "deletion" and task.status == "ON_HOLD", (task.kind, task.status)
        task.status, task.updated = "IN_PROGRESS", self.clock()

    # ------------------------------------------------------------------ what subclasses add
    def _link(self, task_id: str, now: float) -> str:
        """A new pre-signed link to this task's data, valid from ``now``."""
        raise NotImplementedError

    def _started(self, task: Task) -> None:
        """A new task exists (a clientToken's earlier task is not new)."""

    # ------------------------------------------------------------------ resolvers
    def _start_retrieval(self, _info: object, input: dict[str, Any]) -> dict[str, str]:
        email, client_token, known = self._subject(input, "retrieval")
        if known is not None:
            return {"taskId": known.task_id}
        now, outcome = self.clock(), _outcome(email)
        task_id = f"sbx-{int(now * 1000):x}-{outcome}-{secrets.token_hex(6)}"
        task = Task(task_id, email, client_token, submitted=now, updated=now, ends=now + self._complete_after)
        task.outcome = outcome
        return self._add(task)

    def _start_deletion(self, _info: object, input: dict[str, Any]) -> dict[str, str]:
        email, client_token, known = self._subject(input, "deletion")
        hold = input.get("holdingPeriod")
        hold = DEFAULT_HOLD_DAYS if hold is None else hold
        if not 0 <= hold <= MAX_HOLD_DAYS:
            raise _refusal(
                "ValidationError",
                "Input request is not valid, the following issues were encountered: "
                f"[/startPersonalDataDeletionTask/input/holdingPeriod must be between 0 and {MAX_HOLD_DAYS}]",
            )
        if known is not None:
            return {"taskId": known.task_id}
        now, outcome = self.clock(), _outcome(email)
        task_id = f"sbxdel-{int(now * 1000):x}-{hold}d-{outcome}-{secrets.token_hex(6)}"
        task = self._deletion_task(task_id, email, now, hold, outcome, client_token=client_token)
        task.reason = input.get("reason")
        return self._add(task)

    def _retrieval(self, _info: object, taskId: str) -> dict[str, Any]:  # noqa: N803
        task = self._find(taskId, "retrieval")
        link = self._link(task.task_id, self.clock()) if task.status == "COMPLETED" else None
        return {**self._fields(task), "dataRetrievalLink": link}

    def _deletion(self, _info: object, taskId: str) -> dict[str, Any]:  # noqa: N803
        task = self._find(taskId, "deletion")
        return {**self._fields(task), "holdingPeriod": task.holding_period}

    def _cancel(self, _info: object, taskId: str) -> dict[str, str]:  # noqa: N803
        """Only while ON_HOLD; after that, CannotCancelPersonalDataDeletionTask. A cancelled task is unknown from
        then on, as the acceptance kit's fake answers (Amazon does not document it)."""
        task = self._find(taskId, "deletion")
        if task.status != "ON_HOLD":
            raise _refusal(
                "ValidationError",
                f"The personalDataDeletionTask cannot be cancelled with a status of {task.status}.",
                code="CannotCancelPersonalDataDeletionTask",
            )
        task.cancelled, task.updated = True, self.clock()
        return {"taskId": task.task_id}

    # ------------------------------------------------------------------ internals
    def _subject(self, input: dict[str, Any], kind: str) -> tuple[str, str, Task | None]:
        """The email and clientToken, checked as Amazon checks them (a missing token is made up); and the task
        this token started within 8 hours, if any (another email with it is a ConflictError)."""
        email = (input.get("dataSubject") or {}).get("email") or ""
        if not AMAZON_EMAIL.fullmatch(email):  # Amazon's pattern, matched whole
            raise _refusal("ValidationError", "Input request is not valid: dataSubject.email")
        client_token = (input.get("clientToken") or {}).get("token") or str(uuid.uuid4())
        if not 36 <= len(client_token) <= 64:
            raise _refusal("ValidationError", "Input request is not valid: clientToken.token must be 36-64 characters")
        known = self.tasks.get(self._by_client_token.get((kind, client_token), ""))
        if known is not None and self.clock() - known.submitted >= CLIENT_TOKEN_WINDOW:
            known = None
        if known is not None and known.email != email:
            raise _refusal("ConflictError", "clientToken was already used for a different request")
        return email, client_token, known

    def _add(self, task: Task) -> dict[str, str]:
        self.tasks[task.task_id] = task
        self._by_client_token[(task.kind, task.client_token)] = task.task_id
        self._started(task)
        return {"taskId": task.task_id}

    def _deletion_task(
        self, task_id: str, email: str | None, started: float, hold: int, outcome: str, *, client_token: str = ""
    ) -> Task:
        hold_ends = started if hold == 0 else started + hold * self._hold_seconds  # 0 days: no hold, even untimed
        return Task(
            task_id,
            email,
            client_token,
            status="ON_HOLD" if hold > 0 else "IN_PROGRESS",
            submitted=started,
            updated=started,
            kind="deletion",
            holding_period=hold,
            hold_ends=hold_ends,
            ends=hold_ends + self._complete_after,
            outcome=outcome,
        )

    def _find(self, task_id: str, kind: str) -> Task:
        """The task as it stands now; one this process did not start is read from its id."""
        task = self.tasks.get(task_id) or self._from_id(task_id, kind)
        if task is None or task.kind != kind or task.cancelled:
            raise _refusal("ResourceNotFoundError", f"Task {task_id} not found")
        self._advance(task)
        return task

    def _from_id(self, task_id: str, kind: str) -> Task | None:
        if kind == "retrieval" and (match := _RETRIEVAL_ID.fullmatch(task_id)):
            started = int(match.group(1), 16) / 1000
            task = Task(task_id, None, "", submitted=started, updated=started, outcome=match.group(2))
            task.ends = started + self._complete_after
        elif kind == "deletion" and (match := _DELETION_ID.fullmatch(task_id)):
            started = int(match.group(1), 16) / 1000
            task = self._deletion_task(task_id, None, started, int(match.group(2)), match.group(3))
        else:
            return None
        self.tasks[task_id] = task  # so a cancel sticks
        return task

    def _advance(self, task: Task) -> None:
        """Move the task on as far as the clock says: the hold ends, then the task (each at its own time)."""
        now = self.clock()
        if task.status == "ON_HOLD" and now >= task.hold_ends:
            task.status, task.updated = "IN_PROGRESS", task.hold_ends
        if task.status == "IN_PROGRESS" and now >= task.ends:
            task.status, task.updated = task.ended, task.ends
            code = _OUTCOMES.get(task.outcome)
            task.errors = [] if code is None else [{"code": code, "message": FAILURES[code]}]

    @staticmethod
    def _fields(task: Task) -> dict[str, Any]:
        return {
            "taskId": task.task_id,
            "status": task.status,
            "submissionDate": stamp(task.submitted),
            "lastUpdatedDate": stamp(task.updated),
            "dataSubject": {"type": "SHOPPER", "email": task.email},
            "errors": list(task.errors) if task.status == "FAILED" else [],
        }
