"""Free text typed into the hub is screened for identifiers with a shape."""

from __future__ import annotations

import pytest

from privacy.freetext import identifier_kinds


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("row 2 was born 1955-03-08", "a date"),
        ("dob 08/03/1955", "a date"),
        ("dob 8.3.55", "a date"),
        ("born 8th March 1955", "a date"),
        ("NHS 9994250310", "a long number (NHS number or reference)"),
        ("NHS 999 425 0310", "a long number (NHS number or reference)"),
        ("NHS 999-425-0310", "a long number (NHS number or reference)"),
        ("crime reference 1000555/25", "a long number (NHS number or reference)"),
        ("pupil A123456789012", "a UPN"),
        ("pnc 20/123A", "a PNC id"),
        ("lives at SW1A 1AA", "a postcode"),
        ("lives at cr71ep", "a postcode"),
    ],
)
def test_identifiers_with_a_shape_are_found_by_kind(text: str, kind: str) -> None:
    assert kind in identifier_kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "wrong month uploaded",
        "the file had 3 duplicate rows",
        "re-sent as v2 of the 2024 extract",
        "sent 2024-10 instead of 2024-11",
        "ticket INC-20431 raised with the supplier",
        "breach under review",
    ],
)
def test_ordinary_reasons_pass(text: str) -> None:
    assert identifier_kinds(text) == []


def test_only_kinds_come_back_never_the_value() -> None:
    kinds = identifier_kinds("NHS 9994250310, DOB 08/03/1955, SW1A 1AA")
    assert not any(any(ch.isdigit() for ch in kind) for kind in kinds)
