"""Identifier check digits match the published algorithms."""

from __future__ import annotations

import random
import re

from synth.identifiers import (
    is_valid_nhs_number,
    is_valid_upn,
    random_crn,
    random_nhs_number,
    random_noms,
    random_pnc_id,
    random_upn,
)


def test_nhs_numbers_use_modulus_11() -> None:
    assert is_valid_nhs_number("9434765919")  # NHS Digital's documented example
    assert not is_valid_nhs_number("9434765918")
    rng = random.Random(1)
    for _ in range(500):
        n = random_nhs_number(rng)
        assert n.startswith("999") and is_valid_nhs_number(n)


def test_upns_are_well_formed_with_a_dfe_check_letter() -> None:
    rng = random.Random(2)
    for _ in range(500):
        upn = random_upn(rng, "202", 2014)
        assert re.fullmatch(r"[A-HJ-NP-RT-Z]\d{11}[0-9A-HJ-NP-RT-Z]", upn)
        assert is_valid_upn(upn)
        assert not is_valid_upn(("B" if upn[0] == "A" else "A") + upn[1:])


def test_justice_identifiers_match_layout_formats() -> None:
    rng = random.Random(3)
    for _ in range(200):
        assert re.fullmatch(r"(\d{2}|\d{4})/\d{1,7}[A-Z]", random_pnc_id(rng, 2019))
        assert re.fullmatch(r"[A-Z]\d{6}", random_crn(rng))
        assert re.fullmatch(r"[A-Z]\d{4}[A-Z]{2}", random_noms(rng))
