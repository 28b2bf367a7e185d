"""Statutory answer deadlines: when a shopper must have their answer, and how that date was set.

GDPR (Art. 12(3)) gives one month from receipt, counted as a calendar month;
CCPA gives 45 days (extendable once, which staff do by running the request
with a longer ``--deadline``). Without a keyword, ``RESPONSE_DEADLINE_DAYS``.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["JURISDICTIONS", "Deadline", "DeadlineSpec", "parse_deadline_days"]

_DAYS = re.compile(r"^(\d{1,3})d?$")
JURISDICTIONS = ("gdpr", "ccpa")


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
            return Deadline(_add_month(received).timestamp(), "GDPR: one month")
        if self.jurisdiction == "ccpa":
            return Deadline((received + timedelta(days=45)).timestamp(), "CCPA: 45 days")
        if self.days is not None:
            return Deadline((received + timedelta(days=self.days)).timestamp(), f"{self.days} days")
        return Deadline((received + timedelta(days=default_days)).timestamp(), f"{default_days} days, the default")


def parse_deadline_days(text: str) -> int | None:
    """``45d`` or ``45`` → 45; None unless it is 1 to 365 days."""
    match = _DAYS.match(text.strip().lower())
    days = int(match.group(1)) if match else 0
    return days if 1 <= days <= 365 else None


def _add_month(moment: datetime) -> datetime:
    """The same day next month, or that month's last day when it is shorter (31 January → 28/29 February)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
