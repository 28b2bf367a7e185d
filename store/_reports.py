"""The compliance record read back (``store.reports``): one row per case, and the tallies the yearly figures sum.

Both read the same columns through the same expressions (which requests are cases, the law, the days to
answer), so the figures are what anyone counting the exported rows would get.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from store._cases import EXTENDED
from store._database import Database

__all__ = ["CASE_SQL", "CaseRecord", "Reports", "Tally"]

# A case is a request that reached a thread or a task, or that was answered all the same: a request that
# ended before anything started (the bot could not post, Amazon refused the call) with no answer recorded is
# not one (staff ask again, and that request is the case).
CASE_SQL = "(never_started = 0 OR outcome IS NOT NULL)"
# Whole calendar days (UTC) from the day the shopper asked to the day they were answered; NULL while open.
# Both as days since 1970-01-01 (on SQLite, the Julian day of which is 2440587.5), by backend (postgres?).
_DAYS_SQL = {
    False: "(CAST(closed_at / 86400 AS INTEGER) - CAST(julianday(received_on) - 2440587.5 AS INTEGER))",
    True: "(CAST(floor(closed_at / 86400) AS INTEGER) - (CAST(received_on AS DATE) - DATE '1970-01-01'))",
}
# When a case's deadline was extended, oldest first, as one space-separated string.
_EXTENDED_SQL = {
    False: "(SELECT group_concat(at, ' ') FROM (SELECT at FROM audit WHERE audit.request_id = requests.id"
    " AND action = ? ORDER BY at))",
    True: "(SELECT string_agg(CAST(at AS TEXT), ' ' ORDER BY at) FROM audit WHERE audit.request_id = requests.id"
    " AND action = ?)",
}


def _law_sql(laws: Mapping[str, str], none: str) -> tuple[str, list[Any]]:
    """The law a case is under, from how its deadline was set: the first of ``laws`` (name → label prefix) its
    deadline label starts with, else ``none``."""
    whens = " ".join("WHEN substr(deadline, 1, ?) = ? THEN ?" for _ in laws)
    params: list[Any] = []
    for name, prefix in laws.items():
        params += [len(prefix), prefix, name]
    return f"CASE {whens} ELSE ? END", [*params, none]


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """One case as the record export shows it: intake, verification, deadline, answer; never the email."""

    id: int
    kind: str
    law: str
    received_on: str
    received_via: str | None
    outside_ref: str | None
    requested_at: float
    requested_by: str
    verified_by: str | None
    verified_how: str | None
    verified_at: float | None
    due_at: float | None
    extended_at: tuple[float, ...]  # when its deadline was extended, oldest first; empty: never
    answered_at: float | None
    outcome: str | None
    denial_reason: str | None
    days_to_answer: int | None
    tasks: tuple[str, ...]  # Amazon's task ids for it


@dataclass(frozen=True, slots=True)
class Tally:
    """How many cases received in a period share these values: the yearly figures are sums of tallies."""

    kind: str
    law: str
    answered: bool
    outcome: str | None
    denial_reason: str | None
    overdue: bool  # still open, past its due date at the time asked
    days: int | None  # days to answer, when answered
    count: int


class Reports:
    """``store.reports``: the record export, a page at a time, and the tallies behind the yearly figures."""

    def __init__(self, *, database: Database) -> None:
        self._database = database

    async def records(
        self, *, after: int, limit: int, received_from: str | None, laws: Mapping[str, str], none: str
    ) -> list[CaseRecord]:
        """Up to ``limit`` cases with ids above ``after``, by id; received on or after ``received_from``
        (YYYY-MM-DD) when given. ``laws``: each law's name and the prefix of the deadline labels it sets."""
        law, law_params = _law_sql(laws, none)
        since, since_params = ("", []) if received_from is None else (" AND received_on >= ?", [received_from])
        rows = await self._database.fetch(
            f"SELECT id, kind, {law} AS law, received_on, received_via, outside_ref, created_at, requester,"
            " verified_by, verified_how, verified_at, due_at, closed_at, outcome, denial_reason, task_id,"
            f" {_DAYS_SQL[self._database.postgres]} AS days, {_EXTENDED_SQL[self._database.postgres]} AS extended"
            f" FROM requests WHERE id > ? AND {CASE_SQL}{since} ORDER BY id LIMIT ?",
            (*law_params, EXTENDED, after, *since_params, limit),
        )
        return [
            CaseRecord(
                id=row["id"],
                kind=row["kind"],
                law=row["law"],
                received_on=row["received_on"] or "",
                received_via=row["received_via"],
                outside_ref=row["outside_ref"],
                requested_at=row["created_at"],
                requested_by=row["requester"],
                verified_by=row["verified_by"],
                verified_how=row["verified_how"],
                verified_at=row["verified_at"],
                due_at=row["due_at"],
                extended_at=tuple(float(at) for at in (row["extended"] or "").split()),
                answered_at=row["closed_at"],
                outcome=row["outcome"],
                denial_reason=row["denial_reason"],
                days_to_answer=row["days"],
                tasks=(row["task_id"],) if row["task_id"] else (),
            )
            for row in rows
        ]

    async def tallies(
        self, *, received_from: str, received_to: str, now: float, laws: Mapping[str, str], none: str
    ) -> list[Tally]:
        """The cases received from ``received_from`` to ``received_to`` (YYYY-MM-DD, both included), counted by
        kind, law, outcome, reason, whether open past due at ``now``, and days to answer: one aggregate query,
        a few hundred rows whatever the number of cases (days to answer are whole days)."""
        law, law_params = _law_sql(laws, none)
        rows = await self._database.fetch(
            f"SELECT kind, {law} AS law, closed_at IS NOT NULL AS answered, outcome, denial_reason,"
            f" (closed_at IS NULL AND due_at < ?) AS overdue, {_DAYS_SQL[self._database.postgres]} AS days,"
            " COUNT(*) AS count"
            f" FROM requests WHERE received_on BETWEEN ? AND ? AND {CASE_SQL}"
            " GROUP BY 1, 2, 3, 4, 5, 6, 7",
            (*law_params, now, received_from, received_to),
        )
        return [
            Tally(
                kind=row["kind"],
                law=row["law"],
                answered=bool(row["answered"]),
                outcome=row["outcome"],
                denial_reason=row["denial_reason"],
                overdue=bool(row["overdue"]),
                days=row["days"],
                count=row["count"],
            )
            for row in rows
        ]
