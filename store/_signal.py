"""What a commit changed that someone waits on: the outbox has posts to send, or a case a list shows moved.

The database says so itself (temporary triggers on SQLite's connection; on PostgreSQL, triggers that NOTIFY,
store/_schema_pg.py), so no write has to remember to tell anyone: whatever unit queues an outbox row or
changes a listed column of a request is noticed, and once its transaction commits the store's listeners hear
of it (``Database.after_commit``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from store._thread import Noting

__all__ = ["CASES", "LISTED", "LISTED_COLUMNS", "OUTBOX", "Commit", "Listener", "watch"]

OUTBOX = "outbox"
CASES = "cases"

# The request columns a case list (Home, /data-request list) shows or sorts by: a change to one of them
# refreshes the lists; bookkeeping (the next check, a start's mark) does not.
LISTED = (
    "status, closed_at, closed_by, due_at, deadline, thread_ts, task_id, hold_ends_at, purged_at,"
    " email_masked, requester, errors, waiting_since, approved_by, cancelled_by, kind, params, verified_at, outcome"
)

LISTED_COLUMNS = frozenset(column.strip() for column in LISTED.split(","))

_TRIGGERS = (
    f"CREATE TEMP TRIGGER IF NOT EXISTS signal_outbox AFTER INSERT ON main.outbox BEGIN SELECT noted('{OUTBOX}'); END",
    f"CREATE TEMP TRIGGER IF NOT EXISTS signal_new AFTER INSERT ON main.requests BEGIN SELECT noted('{CASES}'); END",
    f"CREATE TEMP TRIGGER IF NOT EXISTS signal_moved AFTER UPDATE OF {LISTED} ON main.requests"
    f" BEGIN SELECT noted('{CASES}'); END",
    f"CREATE TEMP TRIGGER IF NOT EXISTS signal_gone AFTER DELETE ON main.requests BEGIN SELECT noted('{CASES}'); END",
)


@dataclass(frozen=True, slots=True)
class Commit:
    """What one committed transaction changed that a listener acts on."""

    outbox: bool  # it queued Slack posts: wake the sender
    cases: bool  # it changed a case as the lists show it: refresh them

    @classmethod
    def of(cls, noted: set[str]) -> Commit | None:
        """The commit's signal from the names its triggers noted; None when nothing was noted."""
        if not noted:
            return None
        return cls(outbox=OUTBOX in noted, cases=CASES in noted)


Listener = Callable[[Commit], None]


def watch(db: Noting) -> None:
    """Have ``db`` note in ``db.noted`` (on its own thread) each kind of change its transactions make."""
    db.create_function("noted", 1, db.noted.add, deterministic=False)
    for trigger in _TRIGGERS:
        db.execute(trigger)
