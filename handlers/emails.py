"""Reading a shopper's email out of what staff typed, and masking it for the channel."""

from __future__ import annotations

import re

__all__ = ["AMAZON_EMAIL_PATTERN", "mask_email", "parse_email"]

# Amazon's own pattern for DataSubjectInput.email: anything it rejects, we reject first.
AMAZON_EMAIL_PATTERN = re.compile(r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+[.][a-zA-Z]{2,}$")
# Slack turns a typed address into <mailto:a@b.com|a@b.com> when it escapes the text.
_MAILTO = re.compile(r"^<mailto:([^|>]+)(?:\|([^>]*))?>$")
_MAX_LENGTH = 254  # RFC 5321's limit on a forward path


def parse_email(text: str) -> str | None:
    """The email in ``text`` (plain or Slack's mailto form), or None if it is not one Amazon accepts."""
    candidate = text.strip()
    mailto = _MAILTO.match(candidate)
    if mailto:
        candidate = mailto.group(1).strip()
    if len(candidate) > _MAX_LENGTH or not AMAZON_EMAIL_PATTERN.match(candidate):
        return None
    return candidate


def mask_email(email: str) -> str:
    """``jane@example.com`` → ``j***@example.com``: enough to tell requests apart, not to identify."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"
