"""What staff typed after ``/data-request``, read into one intent: instant, so a mistake is answered in the ack.

Reading knows no Slack and waits on nothing; ``handlers/commands.py`` acts on what it returns.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from handlers import texts
from handlers.deadlines import JURISDICTIONS, DeadlineSpec, parse_deadline_days
from handlers.emails import parse_email
from handlers.intake import FLAGS, Intake, Refused, add_fact
from handlers.kinds import KindFlow
from handlers.record.verbs import RECORD_VERBS, Close, Deny, Verify, parse_record
from handlers.reporting import parse_year
from handlers.texts import figures as figures_texts

__all__ = [
    "AGAIN_FLAG",
    "DEADLINE_FLAG",
    "NEW_FLAG",
    "TOLD_FLAG",
    "Close",
    "Deny",
    "Extend",
    "Help",
    "Intent",
    "Invalid",
    "ListOpen",
    "OpenForm",
    "ShowReport",
    "Start",
    "Status",
    "Verify",
    "parse_command",
]

NEW_FLAG = "--new"
AGAIN_FLAG = "--again"  # extend a deadline that was extended before (CCPA allows one extension)
TOLD_FLAG = "--told"  # the shopper was told of the extension (GDPR and CCPA both require telling them)
DEADLINE_FLAG = "--deadline"


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Start:
    """A new request of ``kind`` for the shopper at ``email``; ``params`` are the kind's own options."""

    email: str
    kind: str
    force_new: bool = False
    deadline: DeadlineSpec = field(default_factory=DeadlineSpec)
    params: Mapping[str, str] = field(default_factory=dict)
    intake: Intake = field(default_factory=Intake)


@dataclass(frozen=True, slots=True)
class OpenForm:
    """A bare ``/data-request``: the new-request form."""


@dataclass(frozen=True, slots=True)
class Status:
    query: str


@dataclass(frozen=True, slots=True)
class Extend:
    """Extend a case's deadline by ``days`` (None: only record that the shopper was ``told``)."""

    query: str
    days: int | None
    again: bool = False
    told: bool = False


@dataclass(frozen=True, slots=True)
class ListOpen:
    whole_team: bool = False


@dataclass(frozen=True, slots=True)
class ShowReport:
    """The figures for the cases received in ``year`` (None: this year)."""

    year: int | None = None


@dataclass(frozen=True, slots=True)
class Invalid:
    message: texts.Message


Intent = Help | OpenForm | Start | Status | Extend | ListOpen | ShowReport | Verify | Deny | Close | Invalid


def parse_command(text: str, kinds: Mapping[str, KindFlow], *, now: float | None = None) -> Intent:
    """Read the command's text into what the user meant; a new request's kind is its first word's.

    ``now`` is the clock's time, for what is read against today (``--received``); no text at all opens the form.
    """
    now = time.time() if now is None else now
    words = text.split()
    if not words:
        return OpenForm()
    first = words[0].lower()
    if first in ("help", "-h", "--help"):
        return Help()
    if first == "status":
        if len(words) != 2:
            return Invalid(texts.usage_error("`status` takes one email, task id or ticket reference."))
        return Status(words[1])
    if first == "extend":
        flags = {word.lower() for word in words[1:]} & {AGAIN_FLAG, TOLD_FLAG}
        rest = [word for word in words[1:] if word.lower() not in (AGAIN_FLAG, TOLD_FLAG)]
        again, told = AGAIN_FLAG in flags, TOLD_FLAG in flags
        if told and not again and len(rest) == 1:
            return Extend(rest[0], None, told=True)
        days = parse_deadline_days(rest[1]) if len(rest) == 2 else None
        if days is None:
            return Invalid(
                texts.usage_error(
                    f"`extend` takes an email or task id and a number of days, like `45d` (and `{AGAIN_FLAG}` "
                    f"for a second extension, `{TOLD_FLAG}` once the shopper is told of it)."
                )
            )
        return Extend(rest[0], days, again=again, told=told)
    if first == "list":
        if len(words) > 2 or (len(words) == 2 and words[1].lower() != "all"):
            return Invalid(texts.usage_error("`list` shows your open requests; `list all` shows the team's."))
        return ListOpen(whole_team=len(words) == 2)
    if first == "report":
        year = parse_year(words[1]) if len(words) == 2 else None
        if len(words) > 2 or (len(words) == 2 and year is None):
            return Invalid({"text": figures_texts.report_usage()})
        return ShowReport(year)
    if first in RECORD_VERBS:
        parsed = parse_record(first, words[1:])
        return parsed if isinstance(parsed, Verify | Deny | Close) else Invalid(parsed)
    by_verb = {kind.verb: kind for kind in kinds.values()}
    if first in by_verb:
        return _parse_start(words[1:], by_verb[first], now=now)
    return _parse_start(words, by_verb[None], now=now)


def _parse_start(words: list[str], kind: KindFlow, *, now: float) -> Intent:
    """A new request: the kind's own options first, then what every kind shares (flags, deadline, intake, email)."""
    verb = kind.verb  # a mistake is answered with an example of this kind's command
    own = kind.options(words)
    if isinstance(own, str):
        return Invalid(texts.usage_error(own, verb=verb))
    params, words = own
    force_new, jurisdiction, days, addresses = False, None, None, []
    intake = Intake()
    rest = iter(words)
    for word in rest:
        lowered = word.lower()
        if lowered == NEW_FLAG:
            force_new = True
        elif lowered == DEADLINE_FLAG:
            days = parse_deadline_days(next(rest, ""))
            if days is None:
                return Invalid(texts.usage_error(f"`{DEADLINE_FLAG}` takes {texts.DAYS_TAKEN}, like `45d`.", verb=verb))
        elif lowered in FLAGS:
            read = add_fact(intake, lowered, next(rest, ""), now=now)
            if isinstance(read, Refused):
                return Invalid(texts.usage_error(read.words, verb=verb))
            intake = read
        elif lowered in JURISDICTIONS:
            jurisdiction = lowered
        elif word.startswith("--"):
            return Invalid(texts.unknown_option(word, verb=verb))
        else:
            addresses.append(word)
    if len(addresses) != 1:
        return Invalid(texts.usage_error("Give one shopper email per request.", verb=verb))
    if jurisdiction and days:
        return Invalid(texts.usage_error(f"Give either `{jurisdiction}` or `{DEADLINE_FLAG}`, not both.", verb=verb))
    email = parse_email(addresses[0])
    if email is None:
        return Invalid(texts.invalid_email(addresses[0], verb=verb))
    deadline = DeadlineSpec(jurisdiction=jurisdiction, days=days)
    return Start(email, kind=kind.kind, force_new=force_new, deadline=deadline, params=params, intake=intake)
