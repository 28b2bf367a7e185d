"""Amazon's side of each kind of request: the operations that start and query its task, and its events.

Buy with Prime names every privacy operation after the same noun (``startPersonalDataRetrievalTask``,
``personalDataRetrievalTask``, ``PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED``, a resource
``…/personalDataRetrievalTask/<taskId>``), so one ``Operations`` value says it all for a kind, and the
client, the answer readers and the relay read it instead of spelling retrieval out. Amazon's numbers
that texts quote (the clientToken's window, a link's lifetime, the processing time) are said here once.
What the bot *decides* per kind (statuses, texts, buttons) lives in ``handlers/kinds/``.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import RequestKind

__all__ = [
    "CANCEL_DELETION",
    "CLIENT_TOKEN_WINDOW",
    "DEFAULT_HOLD_DAYS",
    "DELETION",
    "DELETION_QUERY",
    "LINK_LIFETIME",
    "MAX_HOLD_DAYS",
    "RETRIEVAL",
    "START_DELETION",
    "START_RETRIEVAL",
    "TASK_QUERY",
    "Operations",
]

CLIENT_TOKEN_WINDOW = 8 * 3600.0  # Amazon returns the same task for the same clientToken for this long
LINK_LIFETIME = 60.0  # each pre-signed link works for this many seconds after the query that issued it
MAX_HOLD_DAYS = 180  # a deletion's holdingPeriod: 0 to this many days
DEFAULT_HOLD_DAYS = 10  # Amazon's holdingPeriod when the start leaves it out


@dataclass(frozen=True, slots=True)
class Operations:
    """Amazon's operations and events for one kind of task.

    ``start_document`` must select ``taskId`` from ``start_field``; ``task_document`` takes ``$taskId`` and
    selects at least ``taskId status submissionDate lastUpdatedDate errors { code message }`` from
    ``task_field`` (the answer readers in ``prime/_answers.py`` read those).
    """

    kind: str  # a RequestKind value (a test may register one of its own)
    start_document: str
    start_field: str
    task_document: str
    task_field: str
    events: frozenset[str]  # the relay's event types for this kind's tasks
    processing_days: int = 30  # how long Amazon says a task may take once it runs
    cancel_document: str | None = None  # takes ``$taskId``; None: a task of this kind cannot be cancelled
    cancel_field: str = ""

    @property
    def resource_marker(self) -> str:
        """What precedes the task id in an event's resource: ``businessProduct/<id>/<task_field>/<taskId>``."""
        return f"/{self.task_field}/"


START_RETRIEVAL = """
mutation StartPersonalDataRetrieval($input: StartPersonalDataRetrievalTaskInput!) {
  startPersonalDataRetrievalTask(input: $input) {
    taskId
  }
}
""".strip()

TASK_QUERY = """
query PersonalDataRetrievalTask($taskId: String!) {
  personalDataRetrievalTask(taskId: $taskId) {
    taskId
    status
    submissionDate
    lastUpdatedDate
    dataRetrievalLink
    errors {
      code
      message
    }
  }
}
""".strip()

# Runs at once and cannot be cancelled; up to 30 calendar days; a completed task's query issues a new link.
RETRIEVAL = Operations(
    kind=RequestKind.RETRIEVAL,
    start_document=START_RETRIEVAL,
    start_field="startPersonalDataRetrievalTask",
    task_document=TASK_QUERY,
    task_field="personalDataRetrievalTask",
    events=frozenset({"PERSONAL_DATA_RETRIEVAL_TASK_COMPLETED", "PERSONAL_DATA_RETRIEVAL_TASK_FAILED"}),
)


START_DELETION = """
mutation StartPersonalDataDeletion($input: StartPersonalDataDeletionTaskInput!) {
  startPersonalDataDeletionTask(input: $input) {
    taskId
  }
}
""".strip()

# The shopper's email is not asked back (``dataSubject``): the bot never needs it, so there is less to scrub.
DELETION_QUERY = """
query PersonalDataDeletionTask($taskId: String!) {
  personalDataDeletionTask(taskId: $taskId) {
    taskId
    status
    submissionDate
    lastUpdatedDate
    holdingPeriod
    errors {
      code
      message
    }
  }
}
""".strip()

CANCEL_DELETION = """
mutation CancelPersonalDataDeletion($taskId: String!) {
  cancelPersonalDataDeletionTask(taskId: $taskId) {
    taskId
  }
}
""".strip()

# ON_HOLD for its holding period (cancellable only then), IN_PROGRESS for up to 30 days, then COMPLETED or
# FAILED (ORDERS_NOT_CLOSED: the shopper has open orders). A cancelled task is no longer found.
DELETION = Operations(
    kind=RequestKind.ERASURE,
    start_document=START_DELETION,
    start_field="startPersonalDataDeletionTask",
    task_document=DELETION_QUERY,
    task_field="personalDataDeletionTask",
    events=frozenset({"PERSONAL_DATA_DELETION_TASK_COMPLETED", "PERSONAL_DATA_DELETION_TASK_FAILED"}),
    cancel_document=CANCEL_DELETION,
    cancel_field="cancelPersonalDataDeletionTask",
)
