"""Amazon's task rules as the sandbox plays them: input checks, the 8-hour clientToken window, and each task's state.

No HTTP here: ``offline/amazon.py`` serves these over Amazon's endpoints and POSTs
the events. A task's state is read from the clock, so nothing has to wake up to
move it on; and a task id carries its start time, its holding period and its
outcome, so a restarted bot still finds the tasks it started (only a cancel, and
the clientToken memory, live in this process alone).

Outcomes by email, as in the README's sandbox section: an address starting
``notfound`` ends FAILED with DATA_SUBJECT_NOT_FOUND, one starting
``openorders`` with ORDERS_NOT_CLOSED; every other address ends COMPLETED.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from graphql import GraphQLError

from prime import AMAZON_EMAIL, CLIENT_TOKEN_WINDOW, DEFAULT_HOLD_DAYS, MAX_HOLD_DAYS

__all__ = [
    "DEFAULT_HOLD_DAYS",
    "MAX_HOLD_DAYS",
    "Deletions",
    "Ending",
    "Retrievals",
    "amazon_error",
]

Outcome = Literal["c", "n", "o"]  # completes; DATA_SUBJECT_NOT_FOUND; ORDERS_NOT_CLOSED
_FAILURES = {
    "n": ("DATA_SUBJECT_NOT_FOUND", "The shopper email for this request does not exist"),
    "o": ("ORDERS_NOT_CLOSED", "The shopper has Buy with Prime orders that are not closed"),
}
_RETRIEVAL_ID = re.compile(r"sbx-([0-9a-f]+)-([cno])-[0-9a-f]{12}")  # start time in milliseconds, outcome, nonce
_DELETION_ID = re.compile(r"sbxdel-([0-9a-f]+)-([0-9]{1,3})d-([cno])-[0-9a-f]{12}")  # ... and the hold in days
_ERROR_TYPES = {  # classification type -> (errorType, errorCode), as Amazon names them
    "ValidationError": ("ValidationException", 400),
    "ResourceNotFoundError": ("ResourceNotFoundException", 404),
    "AccessDeniedError": ("AccessDeniedException", 403),
}


def amazon_error(message: str, kind: str, code: str = "UnspecifiedError") -> GraphQLError:
    """One GraphQL error in Amazon's shape: ``extensions.classification`` with type, code, errorType, errorCode."""
    error_type, status = _ERROR_TYPES[kind]
    classification = {"type": kind, "code": code, "errorType": error_type, "errorCode": status}
    return GraphQLError(message, extensions={"classification": classification})


def _not_found(task_id: str) -> GraphQLError:
    return amazon_error(f"Task {task_id} not found", "ResourceNotFoundError")


def _stamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _outcome(email: str) -> Outcome:
    local = email.lower()
    return "n" if local.startswith("notfound") else "o" if local.startswith("openorders") else "c"


def _errors(outcome: str) -> list[dict[str, str]]:
    code, message = _FAILURES[outcome]
    return [{"code": code, "message": message}]


@dataclass(frozen=True, slots=True)
class Ending:
    """When a task started now will end, and what its event says: its type and the task as a resource."""

    task_id: str
    after: float  # seconds from now
    detail_type: str  # PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED, ..._DELETION_TASK_FAILED
    resource: str  # personalDataRetrievalTask/<taskId>, after businessProduct/<id>/

    @classmethod
    def of(cls, kind: Literal["Retrieval", "Deletion"], task_id: str, after: float, outcome: Outcome) -> Ending:
        ended = "COMPLETED" if outcome == "c" else "FAILED"
        return cls(task_id, after, f"PERSONAL_DATA_{kind.upper()}_TASK_{ended}", f"personalData{kind}Task/{task_id}")


class _ClientTokens:
    """Amazon's idempotency: the same clientToken within 8 hours is the same task (per operation)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, float]] = {}

    def known(self, token: str, now: float) -> str | None:
        seen = self._seen.get(token)
        return seen[0] if seen is not None and now - seen[1] < CLIENT_TOKEN_WINDOW else None

    def remember(self, token: str, task_id: str, now: float) -> None:
        self._seen[token] = (task_id, now)


def _subject(input: dict[str, Any]) -> tuple[str, str]:
    """The shopper's email and the clientToken, checked as Amazon checks them (a missing token is made up)."""
    email = (input.get("dataSubject") or {}).get("email") or ""
    if not AMAZON_EMAIL.fullmatch(email):  # Amazon's pattern, matched whole
        raise amazon_error("Input request is not valid: dataSubject.email", "ValidationError")
    token = (input.get("clientToken") or {}).get("token") or str(uuid.uuid4())
    if not 36 <= len(token) <= 64:
        raise amazon_error("Input request is not valid: clientToken.token", "ValidationError")
    return email, token


class Retrievals:
    """Retrieval tasks: IN_PROGRESS for ``complete_after`` seconds, then COMPLETED (with a new link) or FAILED."""

    def __init__(self, *, complete_after: float, clock: Callable[[], float], link: Callable[[str, float], str]) -> None:
        self._complete_after = complete_after
        self._clock = clock
        self._link = link  # a new pre-signed link for (task id, now)
        self._tokens = _ClientTokens()
        self._emails: dict[str, str] = {}

    def start(self, input: dict[str, Any]) -> tuple[str, Ending | None]:
        """The task id, and its ending when this call started a new task (None: the clientToken's earlier task)."""
        email, token = _subject(input)
        now = self._clock()
        if (known := self._tokens.known(token, now)) is not None:
            return known, None
        outcome = _outcome(email)
        task_id = f"sbx-{int(now * 1000):x}-{outcome}-{secrets.token_hex(6)}"
        self._tokens.remember(token, task_id, now)
        self._emails[task_id] = email
        return task_id, Ending.of("Retrieval", task_id, self._complete_after, outcome)

    def task(self, task_id: str) -> dict[str, Any]:
        """``personalDataRetrievalTask``'s answer for this moment."""
        match = _RETRIEVAL_ID.fullmatch(task_id)
        if match is None:
            raise _not_found(task_id)
        started, outcome = int(match.group(1), 16) / 1000, match.group(2)
        now = self._clock()
        done = now >= started + self._complete_after
        status = "IN_PROGRESS" if not done else "COMPLETED" if outcome == "c" else "FAILED"
        return {
            "taskId": task_id,
            "status": status,
            "submissionDate": _stamp(started),
            "lastUpdatedDate": _stamp(started + self._complete_after if done else started),
            "dataSubject": {"type": "SHOPPER", "email": self._emails.get(task_id)},
            "dataRetrievalLink": self._link(task_id, now) if status == "COMPLETED" else None,
            "errors": _errors(outcome) if status == "FAILED" else [],
        }


class Deletions:
    """Deletion tasks: ON_HOLD for the holding period, IN_PROGRESS for ``complete_after``, then COMPLETED or FAILED.

    One hold day lasts ``hold_seconds`` (SANDBOX_HOLD_SECONDS), so a 10-day hold can be watched and cancelled.
    A cancelled task is unknown from then on, as the acceptance kit's fake answers (Amazon does not document it).
    """

    def __init__(self, *, hold_seconds: float, complete_after: float, clock: Callable[[], float]) -> None:
        self._hold_seconds = hold_seconds
        self._complete_after = complete_after
        self._clock = clock
        self._tokens = _ClientTokens()
        self._emails: dict[str, str] = {}
        self._cancelled: set[str] = set()

    def start(self, input: dict[str, Any]) -> tuple[str, Ending | None]:
        """The task id, and its ending when this call started a new task (None: the clientToken's earlier task)."""
        email, token = _subject(input)
        hold = input.get("holdingPeriod")
        hold = DEFAULT_HOLD_DAYS if hold is None else hold
        if not 0 <= hold <= MAX_HOLD_DAYS:
            raise amazon_error(
                "Input request is not valid, the following issues were encountered: "
                f"[/startPersonalDataDeletionTask/input/holdingPeriod must be between 0 and {MAX_HOLD_DAYS}]",
                "ValidationError",
            )
        now = self._clock()
        if (known := self._tokens.known(token, now)) is not None:
            return known, None
        outcome = _outcome(email)
        task_id = f"sbxdel-{int(now * 1000):x}-{hold}d-{outcome}-{secrets.token_hex(6)}"
        self._tokens.remember(token, task_id, now)
        self._emails[task_id] = email
        return task_id, Ending.of("Deletion", task_id, hold * self._hold_seconds + self._complete_after, outcome)

    def cancelled(self, task_id: str) -> bool:
        """Whether a cancel went through for this task (then it sends no event)."""
        return task_id in self._cancelled

    def task(self, task_id: str) -> dict[str, Any]:
        """``personalDataDeletionTask``'s answer for this moment."""
        started, hold, outcome = self._parse(task_id)
        status, updated = self._state(started, hold, outcome)
        return {
            "taskId": task_id,
            "status": status,
            "submissionDate": _stamp(started),
            "lastUpdatedDate": _stamp(updated),
            "dataSubject": {"type": "SHOPPER", "email": self._emails.get(task_id)},
            "holdingPeriod": hold,
            "errors": _errors(outcome) if status == "FAILED" else [],
        }

    def cancel(self, task_id: str) -> dict[str, str]:
        """``cancelPersonalDataDeletionTask``: only while ON_HOLD; after that, CannotCancelPersonalDataDeletionTask."""
        started, hold, outcome = self._parse(task_id)
        status, _ = self._state(started, hold, outcome)
        if status != "ON_HOLD":
            raise amazon_error(
                f"The personalDataDeletionTask cannot be cancelled with a status of {status}.",
                "ValidationError",
                code="CannotCancelPersonalDataDeletionTask",
            )
        self._cancelled.add(task_id)
        return {"taskId": task_id}

    def _parse(self, task_id: str) -> tuple[float, int, str]:
        match = _DELETION_ID.fullmatch(task_id)
        if match is None or task_id in self._cancelled:
            raise _not_found(task_id)
        return int(match.group(1), 16) / 1000, int(match.group(2)), match.group(3)

    def _state(self, started: float, hold: int, outcome: str) -> tuple[str, float]:
        """The status now, and when it last changed."""
        hold_ends = started + hold * self._hold_seconds
        ends = hold_ends + self._complete_after
        now = self._clock()
        if now < hold_ends:
            return "ON_HOLD", started
        if now < ends:
            return "IN_PROGRESS", hold_ends
        return ("COMPLETED" if outcome == "c" else "FAILED"), ends
