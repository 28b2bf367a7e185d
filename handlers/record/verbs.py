"""The commands that keep the compliance record: ``verify``, ``deny`` and ``close``, read into what they ask for.

handlers/commands.py hands them the words after their verb and acts on what comes back (``handlers/record/
actions.py`` decides); a mistake comes back as the words that explain it, answered in the acknowledgement.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import DenialReason
from handlers import texts
from handlers.record.rules import NOTE_FLAG, PARTLY_FLAG, method_named, note_problem, reason_named
from handlers.texts import record
from handlers.texts.blocks import Message
from handlers.texts.mrkdwn import escape_clip

__all__ = ["RECORD_VERBS", "Close", "Deny", "Verify", "parse_record"]


@dataclass(frozen=True, slots=True)
class Verify:
    """The shopper's identity was verified by ``method`` (a ``VerificationMethod``); ``note``: staff's words."""

    query: str
    method: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Deny:
    """Close the case as denied for ``reason`` (a ``DenialReason``); ``note``: staff's words."""

    query: str
    reason: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Close:
    """The shopper has their answer (``partly``: in part): close the case with its outcome."""

    query: str
    partly: bool = False


def _noted(words: list[str]) -> tuple[list[str], str | None]:
    """The words before ``--note``, and every word after it (None: no note asked for)."""
    lowered = [word.lower() for word in words]
    if NOTE_FLAG not in lowered:
        return words, None
    at = lowered.index(NOTE_FLAG)
    return words[:at], " ".join(words[at + 1 :])


def _note_refusal(note: str | None, *, needed: bool = False) -> Message | None:
    """``--note`` without words, or a note that cannot be kept (``needed``: a reason that needs one)."""
    if note is not None and not note.strip():
        return record.note_needs_words()
    problem = note_problem(note or "", needed=needed)
    return {"text": record.note_refused(problem)} if problem is not None else None


def _parse_verify(words: list[str]) -> Verify | Deny | Close | Message:
    """``verify <email or task id> <method> [--note <words>]``."""
    words, note = _noted(words)
    if len(words) != 2:
        return {"text": record.verify_usage()}
    method = method_named(words[1])
    if method is None:
        return {"text": record.verify_usage(f"`{escape_clip(words[1], texts.TYPED_SHOWN)}` is no method. ")}
    return _note_refusal(note) or Verify(words[0], method.value, note or "")


def _parse_deny(words: list[str]) -> Verify | Deny | Close | Message:
    """``deny <email or task id> <reason> [--note <words>]``; ``other`` needs a note."""
    words, note = _noted(words)
    if len(words) != 2:
        return {"text": record.deny_usage()}
    reason = reason_named(words[1])
    if reason is None:
        return {"text": record.deny_usage(f"`{escape_clip(words[1], texts.TYPED_SHOWN)}` is no reason. ")}
    return _note_refusal(note, needed=reason is DenialReason.OTHER) or Deny(words[0], reason.value, note or "")


def _parse_close(words: list[str]) -> Verify | Deny | Close | Message:
    """``close <email or task id> [--partly]``."""
    partly = any(word.lower() == PARTLY_FLAG for word in words)
    rest = [word for word in words if word.lower() != PARTLY_FLAG]
    if len(rest) != 1 or rest[0].startswith("--"):
        return {"text": record.close_usage()}
    return Close(rest[0], partly=partly)


_PARSERS = {"verify": _parse_verify, "deny": _parse_deny, "close": _parse_close}
RECORD_VERBS = frozenset(_PARSERS)


def parse_record(verb: str, words: list[str]) -> Verify | Deny | Close | Message:
    """What ``verb`` (one of ``RECORD_VERBS``) and the words after it ask for, or what is wrong with them."""
    return _PARSERS[verb](words)
