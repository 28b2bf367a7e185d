"""The figures a privacy notice or a regulator asks for, per kind and law, and the record export's rows.

``data-request-bot report``, ``/data-request report`` and the Home tab all take their figures from
``figures_for``; ``data-request-bot records`` takes its rows from ``case_records``. Both read the store
through the same expressions (store/_reports.py), so the figures are what counting the records gives.
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from core import DenialReason, Outcome, RequestKind
from handlers.deadlines import LAWS, NO_LAW, law_labels
from store import CaseRecord, Store, Tally

__all__ = [
    "ALL",
    "KIND_NAMES",
    "LAW_NAMES",
    "Figures",
    "Period",
    "Report",
    "case_records",
    "figures_for",
    "sum_tallies",
]

# What the record and the figures call each kind: the right the shopper exercised.
KIND_NAMES: Mapping[str, str] = {RequestKind.RETRIEVAL: "access", RequestKind.ERASURE: "erasure"}
LAW_NAMES: tuple[str, ...] = (*LAWS.values(), NO_LAW)
ALL = "all"  # the row that sums a kind's laws, or everything
COMPLIED = frozenset({Outcome.COMPLIED.value, Outcome.COMPLIED_IN_PART.value})
RECORDS_PAGE = 1_000  # cases read at once: the export holds one page, whatever the number of cases


@dataclass(frozen=True, slots=True)
class Period:
    """Cases received from ``first`` to ``last``, both days included (UTC)."""

    first: date
    last: date

    @classmethod
    def year(cls, year: int) -> Period:
        return cls(date(year, 1, 1), date(year, 12, 31))

    @classmethod
    def this_year(cls, now: float) -> Period:
        return cls.year(datetime.fromtimestamp(now, UTC).year)


@dataclass(frozen=True, slots=True)
class Figures:
    """One row of the report: cases received in the period, and where they stand.

    ``received`` = ``complied`` + ``no_data`` + ``denied`` + ``open`` + any answered without a recorded
    outcome; ``complied_in_part`` is part of ``complied``; ``overdue`` is part of ``open``. Days count
    whole calendar days from the day received to the day answered.
    """

    received: int = 0
    complied: int = 0
    complied_in_part: int = 0
    no_data: int = 0
    denied: int = 0
    denied_by_reason: Mapping[str, int] = field(default_factory=dict)  # every DenialReason, in its order
    open: int = 0
    overdue: int = 0
    median_days: float | None = None
    mean_days: float | None = None  # rounded to a tenth of a day


@dataclass(frozen=True, slots=True)
class Report:
    """The figures for a period as of ``as_of``: (kind, law, figures) for each kind and law, each kind's
    laws together (law ``ALL``), and everything (kind and law ``ALL``)."""

    period: Period
    as_of: float
    rows: tuple[tuple[str, str, Figures], ...]


def sum_tallies(tallies: Iterable[Tally]) -> Figures:
    """The figures of a set of tallies: counts summed; median and mean over every answered case's days."""
    tallies = list(tallies)
    reasons = dict.fromkeys((r.value for r in DenialReason), 0)
    for t in tallies:
        if t.answered and t.outcome == Outcome.DENIED and t.denial_reason in reasons:
            reasons[str(t.denial_reason)] += t.count
    days = sorted((t.days, t.count) for t in tallies if t.answered and t.days is not None)
    answered = sum(count for _, count in days)

    def count(*, answered: bool, outcomes: frozenset[str] | None = None) -> int:
        return sum(t.count for t in tallies if t.answered == answered and (outcomes is None or t.outcome in outcomes))

    return Figures(
        received=sum(t.count for t in tallies),
        complied=count(answered=True, outcomes=COMPLIED),
        complied_in_part=count(answered=True, outcomes=frozenset({Outcome.COMPLIED_IN_PART.value})),
        no_data=count(answered=True, outcomes=frozenset({Outcome.NO_DATA.value})),
        denied=count(answered=True, outcomes=frozenset({Outcome.DENIED.value})),
        denied_by_reason=reasons,
        open=count(answered=False),
        overdue=sum(t.count for t in tallies if not t.answered and t.overdue),
        median_days=_median(days, answered),
        mean_days=round(sum(d * c for d, c in days) / answered, 1) if answered else None,
    )


def _median(histogram: list[tuple[int, int]], n: int) -> float | None:
    """The median of ``n`` values given as sorted (value, how many) pairs, without listing them."""
    if not n:
        return None
    wanted = [(n - 1) // 2, n // 2]  # the middle one, or the two middle ones (0-based ranks)
    values: list[int] = []
    seen = 0
    for value, count in histogram:
        while wanted and wanted[0] < seen + count:
            values.append(value)
            wanted.pop(0)
        seen += count
    return float(statistics.mean(values))


async def figures_for(store: Store, period: Period, *, now: float) -> Report:
    """The report for cases received in ``period``, open cases' lateness judged at ``now``."""
    tallies = await store.reports.tallies(
        received_from=period.first.isoformat(),
        received_to=period.last.isoformat(),
        now=now,
        laws=law_labels(),
        none=NO_LAW,
    )
    rows: list[tuple[str, str, Figures]] = []
    for kind, name in KIND_NAMES.items():
        own = [t for t in tallies if t.kind == kind]
        rows += [(name, law, sum_tallies(t for t in own if t.law == law)) for law in LAW_NAMES]
        rows.append((name, ALL, sum_tallies(own)))
    rows.append((ALL, ALL, sum_tallies(t for t in tallies if t.kind in KIND_NAMES)))
    return Report(period=period, as_of=now, rows=tuple(rows))


async def case_records(store: Store, *, received_from: date | None = None) -> AsyncIterator[CaseRecord]:
    """Every case (received on or after ``received_from``), by id, read a page at a time as it is used."""
    after = 0
    while True:
        page = await store.reports.records(
            after=after,
            limit=RECORDS_PAGE,
            received_from=received_from.isoformat() if received_from else None,
            laws=law_labels(),
            none=NO_LAW,
        )
        for record in page:
            yield record
        if len(page) < RECORDS_PAGE:
            return
        after = page[-1].id
