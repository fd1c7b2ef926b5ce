"""What counts as a valid email, for the CSV import and the event stream alike. Pure.

Pragmatic, not RFC 5322: the checks catch what is plainly not an address (no "@", two of
them, spaces, control characters, a domain without a dot) before it becomes a Marketo person;
Marketo judges the rest (it refuses non-ASCII addresses, for instance, with its own code).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_EMAIL_CHARS", "MAX_LOCAL_CHARS", "is_valid_email"]

MAX_EMAIL_CHARS: Final = 254  # RFC 5321: the longest path a mail server accepts
MAX_LOCAL_CHARS: Final = 64  # RFC 5321: the longest local part
# the local part: anything printable but "@" and whitespace
_LOCAL: Final = re.compile(r"[^@\s\x00-\x1f\x7f]+")
# a domain label: letters or digits (any script, for internationalised names) and inner hyphens
_LABEL: Final = re.compile(r"[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?")


def is_valid_email(email: str) -> bool:
    """Tell whether `email` (already trimmed) has the shape of an address: one "@", a local
    part of at most 64 characters without whitespace or control characters, and a domain of
    at least two dot-separated labels of letters, digits and inner hyphens; 254 at most."""
    if len(email) > MAX_EMAIL_CHARS:
        return False
    local, at, domain = email.partition("@")
    if not at or len(local) > MAX_LOCAL_CHARS or _LOCAL.fullmatch(local) is None:
        return False
    labels = domain.split(".")
    if len(labels) < 2:
        return False
    return all(_LABEL.fullmatch(label) for label in labels)
