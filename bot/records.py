"""``data-request-bot records`` and ``report``: the compliance record and its figures, out of the database.

Both work on the database alone (no Slack, no Amazon, no key needed: no email is read), beside the running
bot. ``records`` writes each page of cases as it is read, so 100,000 cases take no more memory than a
thousand; ``report`` sums one aggregate query (handlers/figures.py), as ``/data-request report`` does.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TextIO

from bot.admin import open_store
from bot.settings import load_storage_settings
from core import ConfigError, DenialReason
from handlers.figures import KIND_NAMES, Figures, Period, Report, case_records, figures_for
from handlers.texts.figures import LEGEND, figures_table
from store import CaseRecord

__all__ = [
    "RECORD_COLUMNS",
    "REPORT_COLUMNS",
    "ReportAsked",
    "figures_row",
    "parse_day",
    "period_asked",
    "record_row",
    "run_records",
    "run_report",
]

RECORD_COLUMNS = (
    "request",
    "kind",
    "law",
    "received",
    "via",
    "ref",
    "requested_at",
    "requested_by",
    "verified_by",
    "verified_how",
    "verified_at",
    "due",
    "extended",
    "answered_at",
    "outcome",
    "denial_reason",
    "days_to_answer",
    "tasks",
)
REPORT_COLUMNS = (
    "from",
    "to",
    "kind",
    "law",
    "received",
    "complied",
    "complied_in_part",
    "no_data",
    "denied",
    *(f"denied_{reason.value}" for reason in DenialReason),
    "open",
    "overdue",
    "median_days",
    "mean_days",
)


def parse_day(text: str, *, option: str) -> date:
    """``2026-01-31`` → that day; ConfigError naming ``option`` for anything else."""
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise ConfigError(f"{option} takes a date like 2026-01-31 (not {text!r})") from error


@dataclass(frozen=True, slots=True)
class ReportAsked:
    """``report``'s options as typed: a year, or a range, or neither (this year)."""

    year: str | None = None
    first: str | None = None
    last: str | None = None


def period_asked(asked: ReportAsked, *, now: float) -> Period:
    """The period ``report`` was asked for; ConfigError, saying how to ask, for a wrong one."""
    if asked.year is not None and (asked.first or asked.last):
        raise ConfigError("give either --year or --from and --to, not both")
    if asked.year is not None:
        if not (asked.year.isascii() and asked.year.isdigit() and len(asked.year) == 4):
            raise ConfigError(f"--year takes a year like 2026 (not {asked.year!r})")
        return Period.year(int(asked.year))
    if asked.first is None and asked.last is None:
        return Period.this_year(now)
    if asked.first is None or asked.last is None:
        raise ConfigError("--from and --to go together: give both days, like --from 2026-01-01 --to 2026-06-30")
    period = Period(parse_day(asked.first, option="--from"), parse_day(asked.last, option="--to"))
    if period.first > period.last:
        raise ConfigError(f"--from {period.first} is after --to {period.last}: give the earlier day first")
    return period


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def record_row(record: CaseRecord) -> dict[str, Any]:
    """One case as ``records`` writes it in JSON: times ISO-8601 UTC, lists for the extensions and tasks."""
    return {
        "request": record.id,
        "kind": KIND_NAMES.get(record.kind, record.kind),
        "law": record.law,
        "received": record.received_on,
        "via": record.received_via,
        "ref": record.outside_ref,
        "requested_at": _iso(record.requested_at),
        "requested_by": record.requested_by,
        "verified_by": record.verified_by,
        "verified_how": record.verified_how,
        "verified_at": _iso(record.verified_at),
        "due": _iso(record.due_at),
        "extended": [_iso(at) for at in record.extended_at],
        "answered_at": _iso(record.answered_at),
        "outcome": record.outcome,
        "denial_reason": record.denial_reason,
        "days_to_answer": record.days_to_answer,
        "tasks": list(record.tasks),
    }


def _csv_cell(value: Any) -> Any:
    """A JSON value as a CSV cell: empty for none, lists joined by spaces."""
    if value is None:
        return ""
    return " ".join(value) if isinstance(value, list) else value


async def run_records(env: Mapping[str, str], *, since: date | None, fmt: str, out: TextIO) -> int:
    """Write one row per case (received on or after ``since``) as CSV or JSON lines, a page at a time."""
    store = await open_store(load_storage_settings(env), need_key=False, keyless=True)
    try:
        writer = csv.writer(out) if fmt == "csv" else None
        if writer is not None:
            writer.writerow(RECORD_COLUMNS)  # record_row gives the columns in this order
        async for record in case_records(store, received_from=since):
            row = record_row(record)
            if writer is not None:
                writer.writerow([_csv_cell(value) for value in row.values()])
            else:
                out.write(json.dumps(row) + "\n")
    finally:
        await store.close()
    return 0


def figures_row(kind: str, law: str, f: Figures) -> dict[str, Any]:
    """One kind and law's figures as ``report --format json`` gives them."""
    return {
        "kind": kind,
        "law": law,
        "received": f.received,
        "complied": f.complied,
        "complied_in_part": f.complied_in_part,
        "no_data": f.no_data,
        "denied": f.denied,
        "denied_by_reason": dict(f.denied_by_reason),
        "open": f.open,
        "overdue": f.overdue,
        "median_days": f.median_days,
        "mean_days": f.mean_days,
    }


def _csv_row(report: Report, kind: str, law: str, f: Figures) -> dict[str, Any]:
    """The same figures as a row of ``REPORT_COLUMNS``: the period in each row, a column per denial reason."""
    row = figures_row(kind, law, f)
    reasons = row.pop("denied_by_reason")
    row |= {f"denied_{reason}": count for reason, count in reasons.items()}
    return {"from": report.period.first.isoformat(), "to": report.period.last.isoformat(), **row}


async def run_report(env: Mapping[str, str], *, asked: ReportAsked, fmt: str, out: TextIO, now: float) -> int:
    """Write the figures for the period asked as a table (``text``), CSV or JSON."""
    period = period_asked(asked, now=now)
    store = await open_store(load_storage_settings(env), need_key=False, keyless=True)
    try:
        report = await figures_for(store, period, now=now)
    finally:
        await store.close()
    if fmt == "json":
        document = {
            "from": period.first.isoformat(),
            "to": period.last.isoformat(),
            "as_of": _iso(report.as_of),
            "rows": [figures_row(kind, law, f) for kind, law, f in report.rows],
        }
        out.write(json.dumps(document, indent=2) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(
            {k: _csv_cell(v) for k, v in _csv_row(report, kind, law, f).items()} for kind, law, f in report.rows
        )
    else:
        out.write(figures_table(report) + "\n\n" + LEGEND + "\n")
    return 0
