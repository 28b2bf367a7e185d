"""Reading a shopper's email out of what staff typed (Amazon's rule and the mask live in ``prime``)."""

from __future__ import annotations

import re
import unicodedata

from core import AMAZON_EMAIL, EMAIL_IN_TEXT

__all__ = ["names_an_email", "parse_email"]

# Slack turns a typed address into <mailto:a@b.com|a@b.com> when it escapes the text.
_MAILTO = re.compile(r"^<mailto:([^|>]+)(?:\|([^>]*))?>$")
_MAX_LENGTH = 254  # RFC 5321's limit on a forward path
_SPACED_AT = re.compile(r"\s*(@|%40)\s*")


def parse_email(text: str) -> str | None:
    """The email in ``text`` (plain or Slack's mailto form), or None if it is not one Amazon accepts."""
    candidate = text.strip()
    mailto = _MAILTO.match(candidate)
    if mailto:
        candidate = mailto.group(1).strip()
    if len(candidate) > _MAX_LENGTH or not AMAZON_EMAIL.fullmatch(candidate):
        return None
    return candidate


def names_an_email(text: str) -> bool:
    """Whether free text staff typed holds an email address, however it is written.

    The text is read as a reader sees it: compatibility forms folded (``＠`` is ``@``, ``．`` is ``.``),
    invisible format characters dropped, and spaces around ``@`` closed (``jane @ example.com``).
    """
    folded = unicodedata.normalize("NFKC", text)
    visible = "".join(char for char in folded if unicodedata.category(char) != "Cf")
    return EMAIL_IN_TEXT.search(_SPACED_AT.sub(r"\1", visible)) is not None
