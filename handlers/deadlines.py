"""Statutory answer deadlines: when a shopper must have their answer, and how that date was set.

GDPR (Art. 12(3)) gives one month from receipt, counted as a calendar month;
CCPA gives 45 days, extendable once by 45 more, which staff do with
``/data-request extend <email or task id> 45d``. Without a keyword, ``RESPONSE_DEADLINE_DAYS``.
Reminders come before the due date on the schedule in ``REMINDERS``; a GDPR case also gets one
``EXTENSION_NOTICE_DAYS`` before its first month ends (``extension_reminder_at``), since an extension counts only
once the shopper is told of it within that month. Every date counts from the day the shopper asked.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

__all__ = [
    "CCPA_DAYS",
    "DAY",
    "DEADLINE_DAYS",
    "EXTENSION_NOTICE_DAYS",
    "EXTENSION_REMINDER",
    "GDPR_LABEL",
    "JURISDICTIONS",
    "LAWS",
    "NO_LAW",
    "REMINDERS",
    "Deadline",
    "DeadlineSpec",
    "days_typed",
    "extension_reminder_at",
    "first_month_end",
    "law_labels",
    "law_of",
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
GDPR_LABEL = f"{LAWS['gdpr']}: one month"
CCPA_LABEL = f"{LAWS['ccpa']}: {CCPA_DAYS} days"
EXTENSION_REMINDER = "extension"  # a GDPR case's reminder to tell the shopper of an extension in time
EXTENSION_NOTICE_DAYS = 7  # days before the end of a GDPR case's first month that it is reminded
EXTENDED_MARK = ", extended by "  # what an extension adds to a deadline's label (store.cases.extend_deadline)


def _schedule(due_at: float, extension_at: float | None) -> list[tuple[str, float]]:
    """Every reminder of a case and when it comes due, earliest first."""
    times = [(name, due_at - before) for name, before in REMINDERS]
    if extension_at is not None:
        times.append((EXTENSION_REMINDER, extension_at))
    return sorted(times, key=lambda item: item[1])


def reminders_due(due_at: float, sent: frozenset[str], *, now: float, extension_at: float | None = None) -> list[str]:
    """The reminders due by ``now`` and not sent yet, earliest first (the last is the most urgent)."""
    return [name for name, at in _schedule(due_at, extension_at) if now >= at and name not in sent]


def next_reminder_at(
    due_at: float, sent: frozenset[str] | set[str], *, extension_at: float | None = None
) -> float | None:
    """When the first reminder not in ``sent`` comes due; None when every one has been sent."""
    return min((at for name, at in _schedule(due_at, extension_at) if name not in sent), default=None)


def law_of(deadline: str) -> str:
    """The law a case's deadline was set under, from its label (``GDPR: one month, extended by …``)."""
    for law, begins in law_labels().items():
        if deadline.startswith(begins):
            return law
    return "no law named"


def first_month_end(received_on: str) -> float:
    """The end of the month GDPR gives from the day the shopper asked (YYYY-MM-DD): the same day next month."""
    day = date.fromisoformat(received_on)
    return _add_month(datetime(day.year, day.month, day.day, tzinfo=UTC)).timestamp()


def extension_reminder_at(*, deadline: str, received_on: str, told: bool) -> float | None:
    """When a GDPR case is reminded that an extension must be told to the shopper within its first month.

    None for a case under another law, once the shopper was told of an extension, or once it was extended
    (``extend`` itself says to tell the shopper, and records it with ``--told``).
    """
    if told or law_of(deadline) != "GDPR" or EXTENDED_MARK in deadline or not received_on:
        return None
    return first_month_end(received_on) - EXTENSION_NOTICE_DAYS * DAY


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
            return Deadline(_add_month(received).timestamp(), GDPR_LABEL)
        if self.jurisdiction == "ccpa":
            return Deadline((received + timedelta(days=CCPA_DAYS)).timestamp(), CCPA_LABEL)
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
