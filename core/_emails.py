"""Amazon's email rule, said once: the pattern it accepts, and how an address is masked wherever it is shown.

Every other shape (an address inside Amazon's words, or percent-encoded in a URL, or JSON-escaped in a
log line) is built from the same three pieces, so a change to what an address looks like is one edit.
"""

from __future__ import annotations

import re

__all__ = ["AMAZON_EMAIL", "DOMAIN", "EMAIL_IN_LOGS", "EMAIL_IN_TEXT", "LOCAL", "TLD", "mask_email", "scrub"]

LOCAL = "[A-Za-z0-9._%+-]"  # one character of the local part
DOMAIN = "[A-Za-z0-9.-]+"  # the domain before its last dot
TLD = "[A-Za-z]{2,}"
# Amazon's own pattern for DataSubjectInput.email, to be matched whole (``fullmatch``): anything it
# rejects, we reject first.
AMAZON_EMAIL = re.compile(f"{LOCAL}+@{DOMAIN}[.]{TLD}")
# An address anywhere in a text, ``@`` plain or percent-encoded (``bob%40shop.example``, as a URL or a
# form body carries it).
EMAIL_IN_TEXT = re.compile(f"(?P<local>{LOCAL}+?)(?:@|%40)(?P<domain>{DOMAIN}[.]{TLD})")
# An address as any log line may carry it: plain, percent-encoded (form bodies) or JSON-escaped.
EMAIL_IN_LOGS = re.compile(rf"{LOCAL}+(?:@|%40|\\u0040){DOMAIN}(?:\.|%2[Ee]){TLD}")


def _masked(local: str, domain: str) -> str:
    return f"{local[:1]}***@{domain}"


def mask_email(email: str) -> str:
    """``jane@example.com`` → ``j***@example.com``: enough to tell requests apart, not to identify."""
    local, _, domain = email.partition("@")
    return _masked(local, domain)


def scrub(text: str) -> str:
    """Mask any email address in Amazon's words: they are stored, and shown in the request's thread."""
    return EMAIL_IN_TEXT.sub(lambda found: _masked(found["local"], found["domain"]), text)
