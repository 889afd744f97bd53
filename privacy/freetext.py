"""Screening free text that people type into the hub (withdrawal and suspension reasons, client
descriptions) for identifiers.

Why: such text is stored, shown to IG leads and written to the audit trail. A careless "row 2
was Aisha Georgiou, DOB 08/03/1955, NHS 999 425 0310" would put an extract's identifiers on
disk, which the hub promises never happens. Names cannot be told from other words, but the
identifiers with a shape can: dates, NHS numbers and other long numbers, UPNs, PNC ids and
postcodes. Text that holds one is refused, naming the kind, never the value.
"""

from __future__ import annotations

import re

__all__ = ["IDENTIFIER_REGEX", "identifier_kinds"]

# (kind, pattern, case-insensitive): each pattern in the syntax both Python's re and polars'
# (Rust) regex read alike.
_SHAPES: tuple[tuple[str, str, bool], ...] = (
    # 08/03/1955, 8-3-55, 1955-03-08, 8 March 1955
    ("a date", r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4}\b", False),
    (
        "a date",
        r"\b\d{1,2}(st|nd|rd|th)?\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*"
        r"\.?\s+\d{2,4}\b",
        True,
    ),
    # NHS numbers (3 3 4 spaced, dashed or not), UPNs' digits, reference numbers: six digits
    # or more with single spaces between groups ("2024-10", a month, is not one)
    ("a long number (NHS number or reference)", r"\d(?: ?\d){5,}|\d{3}-\d{3}-\d{4}", False),
    # UPN: a letter and twelve digits, then optionally a letter
    ("a UPN", r"\b[A-Za-z]\d{11}[0-9A-Za-z]\b", False),
    # PNC id: 2 or 4 digit year / serial / check letter
    ("a PNC id", r"\b\d{2}(\d{2})?/\d{1,7}[A-Za-z]\b", False),
    # UK postcode: outward code, optional space, inward code
    ("a postcode", r"\b[A-Za-z]{1,2}\d[A-Za-z\d]?\s*\d[A-Za-z]{2}\b", False),
)

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE if folded else 0))
    for kind, pattern, folded in _SHAPES
)

IDENTIFIER_REGEX = "|".join(
    f"(?i:{pattern})" if folded else f"(?:{pattern})" for _, pattern, folded in _SHAPES
)
"""One regex matching text that :func:`identifier_kinds` finds an identifier in, for polars'
``str.contains`` over a column of free text."""


def identifier_kinds(text: str) -> list[str]:
    """The kinds of identifier ``text`` seems to contain (empty when none), each once, in a
    fixed order. Only the kinds: the matched values are never returned."""
    found: list[str] = []
    for kind, pattern in _PATTERNS:
        if kind not in found and pattern.search(text):
            found.append(kind)
    return found
