"""Statutory answer deadlines: when a shopper must have their answer, and how that date was set.

GDPR (Art. 12(3)) gives one month from receipt, counted as a calendar month;
CCPA gives 45 days, extendable once by 45 more, which staff do with
``/data-request extend <email or task id> 45d``. Without a keyword, ``RESPONSE_DEADLINE_DAYS``.
Reminders come before the due date on the schedule in ``REMINDERS``.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "CCPA_DAYS",
    "DAY",
    "DEADLINE_DAYS",
    "JURISDICTIONS",
    "LAWS",
    "NO_LAW",
    "REMINDERS",
    "Deadline",
    "DeadlineSpec",
    "days_typed",
    "law_labels",
    "next_reminder_at",
    "parse_deadline_days",
    "reminders_due",
]

# ASCII digits only: ``\d`` and ``int()`` also read other scripts' digits ("٣" is 3), which no one means here.
_DAYS = re.compile(r"([0-9]{1,3})d?", re.IGNORECASE)
JURISDICTIONS = ("gdpr", "ccpa")
# The law each keyword puts a case under, as its deadline's label begins and the record and figures name it.
LAWS = {"gdpr": "GDPR", "ccpa": "CCPA"}
NO_LAW = "none"  # a case whose deadline no law set (``--deadline``, the default)
DAY = 86_400.0
CCPA_DAYS = 45  # the CCPA's answer period, and the one extension it allows
DEADLINE_DAYS = range(1, 366)  # what ``--deadline`` and ``extend`` accept, in days
# (name, seconds before the due date): a reminder 7 days before, 2 days before, and on the day.
REMINDERS: tuple[tuple[str, float], ...] = (("7d", 7 * DAY), ("2d", 2 * DAY), ("overdue", 0.0))


def reminders_due(due_at: float, sent: frozenset[str], *, now: float) -> list[str]:
    """The reminders of ``REMINDERS`` due by ``now`` and not sent yet, earliest first (the last is the most urgent)."""
    return [name for name, before in REMINDERS if now >= due_at - before and name not in sent]


def next_reminder_at(due_at: float, sent: frozenset[str] | set[str]) -> float | None:
    """When the first reminder not in ``sent`` comes due; None when every one has been sent."""
    return min((due_at - before for name, before in REMINDERS if name not in sent), default=None)


@dataclass(frozen=True, slots=True)
class Deadline:
    """A due date and the words that explain it (shown in the thread)."""

    due_at: float
    label: str


@dataclass(frozen=True, slots=True)
class DeadlineSpec:
    """What staff asked for: a jurisdiction keyword, a number of days, or neither (the default)."""

    jurisdiction: str | None = None
    days: int | None = None

    def resolve(self, received_at: float, *, default_days: int) -> Deadline:
        """The due date for a request received at ``received_at`` (epoch seconds)."""
        received = datetime.fromtimestamp(received_at, UTC)
        if self.jurisdiction == "gdpr":
            return Deadline(_add_month(received).timestamp(), f"{LAWS['gdpr']}: one month")
        if self.jurisdiction == "ccpa":
            return Deadline((received + timedelta(days=CCPA_DAYS)).timestamp(), f"{LAWS['ccpa']}: {CCPA_DAYS} days")
        if self.days is not None:
            return Deadline((received + timedelta(days=self.days)).timestamp(), f"{self.days} days")
        return Deadline((received + timedelta(days=default_days)).timestamp(), f"{default_days} days, the default")


def law_labels() -> dict[str, str]:
    """Each law's name and how the labels of the deadlines it sets begin: how a stored case says its law."""
    return {name: f"{name}:" for name in LAWS.values()}


def days_typed(word: str) -> int | None:
    """A number of days as staff type it: ``45d`` or ``45`` → 45; None for anything else."""
    match = _DAYS.fullmatch(word.strip())
    return int(match.group(1)) if match else None


def parse_deadline_days(text: str) -> int | None:
    """``45d`` or ``45`` → 45; None unless it is in ``DEADLINE_DAYS`` (1 to 365)."""
    days = days_typed(text)
    return days if days in DEADLINE_DAYS else None


def _add_month(moment: datetime) -> datetime:
    """The same day next month, or that month's last day when it is shorter (31 January → 28/29 February)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
