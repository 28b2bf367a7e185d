"""The intake facts of a new request: when the shopper asked, how, staff's ticket, and identity already verified.

The command (``--received``, ``--via``, ``--ref``, ``--verified``) and the form read them with the same
functions, so a value either one takes the other takes too, and a refusal says the same words. Each
reader returns the value, or a ``Refused`` whose words (``handlers/texts/intake.py``) say what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from core import ReceivedVia, VerificationMethod
from handlers.emails import names_an_email
from handlers.texts import intake as words

__all__ = [
    "FLAGS",
    "RECEIVED_FLAG",
    "REF_FLAG",
    "REF_LIMIT",
    "VERIFIED_FLAG",
    "VIA_FLAG",
    "Intake",
    "Refused",
    "add_fact",
    "latest_today",
    "read_received",
    "read_ref",
    "read_verified",
    "read_via",
    "received_at",
]

RECEIVED_FLAG = "--received"
VIA_FLAG = "--via"
REF_FLAG = "--ref"
VERIFIED_FLAG = "--verified"
REF_LIMIT = 64  # characters of an outside reference: what the column and the thread keep
# The day is the shopper's: a date that is already today somewhere on Earth (UTC+14) is not in the future.
FLAGS = (RECEIVED_FLAG, VIA_FLAG, REF_FLAG, VERIFIED_FLAG)
_EARLIEST_ZONE = timedelta(hours=14)
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_REF = re.compile(r"[^\s`]+")  # one word, no backticks (it is shown in a code span)


@dataclass(frozen=True, slots=True)
class Refused:
    """A value staff gave that cannot be kept, and why, in words for them."""

    words: str


@dataclass(frozen=True, slots=True)
class Intake:
    """What staff said about how the request came in; None: not said (received: today)."""

    received_on: date | None = None
    via: ReceivedVia | None = None
    outside_ref: str | None = None
    verified_how: VerificationMethod | None = None


def latest_today(now: float) -> date:
    """The latest calendar day it is anywhere at ``now``: the last day a shopper's request can carry."""
    return (datetime.fromtimestamp(now, UTC) + _EARLIEST_ZONE).date()


def read_received(text: str, *, now: float) -> date | Refused:
    """``YYYY-MM-DD``: a real day, not in the future."""
    typed = text.strip()
    try:
        day = date.fromisoformat(typed) if _ISO_DAY.fullmatch(typed) else None
    except ValueError:
        day = None
    if day is None:
        return Refused(words.received_not_a_date(typed, flag=RECEIVED_FLAG))
    if day > latest_today(now):
        return Refused(words.received_in_future(day))
    return day


def received_at(day: date | None, *, now: float) -> float:
    """The moment deadlines count from: the start of the day the shopper asked (UTC), never later than now."""
    if day is None:
        return now
    return min(now, datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def read_via(text: str) -> ReceivedVia | Refused:
    try:
        return ReceivedVia(text.strip().lower())
    except ValueError:
        return Refused(words.not_one_of(text, flag=VIA_FLAG, choices=[v.value for v in ReceivedVia]))


def read_verified(text: str) -> VerificationMethod | Refused:
    try:
        return VerificationMethod(text.strip().lower())
    except ValueError:
        return Refused(words.not_one_of(text, flag=VERIFIED_FLAG, choices=[v.value for v in VerificationMethod]))


def read_ref(text: str) -> str | Refused:
    """An outside reference: one word of at most ``REF_LIMIT`` characters that names no email."""
    ref = text.strip()
    if not _REF.fullmatch(ref):
        return Refused(words.ref_not_one_word(flag=REF_FLAG))
    if len(ref) > REF_LIMIT:
        return Refused(words.ref_too_long(REF_LIMIT))
    if names_an_email(ref):
        return Refused(words.ref_names_email())
    return ref


def add_fact(intake: Intake, flag: str, word: str, *, now: float) -> Intake | Refused:
    """``intake`` with the fact ``flag`` (one of ``FLAGS``) says, read from the ``word`` after it."""
    if flag == RECEIVED_FLAG:
        day = read_received(word, now=now)
        return day if isinstance(day, Refused) else replace(intake, received_on=day)
    if flag == VIA_FLAG:
        via = read_via(word)
        return via if isinstance(via, Refused) else replace(intake, via=via)
    if flag == REF_FLAG:
        ref = read_ref(word)
        return ref if isinstance(ref, Refused) else replace(intake, outside_ref=ref)
    verified = read_verified(word)
    return verified if isinstance(verified, Refused) else replace(intake, verified_how=verified)
