"""Reading a shopper's email out of what staff typed (Amazon's rule and the mask live in ``prime``)."""

from __future__ import annotations

import re

from prime import AMAZON_EMAIL

__all__ = ["parse_email"]

# Slack turns a typed address into <mailto:a@b.com|a@b.com> when it escapes the text.
_MAILTO = re.compile(r"^<mailto:([^|>]+)(?:\|([^>]*))?>$")
_MAX_LENGTH = 254  # RFC 5321's limit on a forward path


def parse_email(text: str) -> str | None:
    """The email in ``text`` (plain or Slack's mailto form), or None if it is not one Amazon accepts."""
    candidate = text.strip()
    mailto = _MAILTO.match(candidate)
    if mailto:
        candidate = mailto.group(1).strip()
    if len(candidate) > _MAX_LENGTH or not AMAZON_EMAIL.fullmatch(candidate):
        return None
    return candidate
