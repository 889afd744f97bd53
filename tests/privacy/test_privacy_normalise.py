"""Normalisation: the scalar rules, and the polars expressions agreeing with them."""

from __future__ import annotations

import random
from datetime import date, datetime

import polars as pl
import pytest

from privacy import normalise as n


def expr_values(expr_fn, values, dtype=pl.String):  # type: ignore[no-untyped-def]
    frame = pl.DataFrame({"v": pl.Series(values, dtype=dtype)})
    return frame.select(expr_fn(pl.col("v"))).to_series().to_list()


# ---------------------------------------------------------------- names

NAME_CASES = {
    "Zoë  O'Brien-Smith": "zoe obrien smith",
    "ZOE OBRIEN SMITH": "zoe obrien smith",
    "Łukasz Straße": "lukasz strasse",
    "ÆSIR Ørsted": "aesir orsted",
    "Đorđe": "dorde",
    "José-María": "jose maria",
    "  van   der  Berg ": "van der berg",
    "D’Souza": "dsouza",
    "St. John": "st john",
    "Smith,John": "smith john",
    "": None,
    "   ": None,
    "محمد": None,
    None: None,
}


@pytest.mark.parametrize(("raw", "expected"), NAME_CASES.items())
def test_normalise_name(raw: str | None, expected: str | None) -> None:
    assert n.normalise_name(raw) == expected


def test_name_expr_agrees_with_scalar() -> None:
    raws = list(NAME_CASES)
    assert expr_values(n.name_expr, raws) == [n.normalise_name(r) for r in raws]


def test_name_helpers() -> None:
    assert n.first_forename(n.normalise_name("Mary-Jane Ann")) == "mary"
    assert n.surname_compact(n.normalise_name("Van der Berg")) == "vanderberg"
    assert n.surname_compact(n.normalise_name("vanderberg")) == "vanderberg"
    assert n.surname_parts("Smith-Jones") == ["smith", "jones"]
    assert n.surname_parts(None) == []
    assert expr_values(lambda e: n.first_forename_expr(n.name_expr(e)), ["Mary Jane", None]) == [
        "mary",
        None,
    ]
    assert expr_values(lambda e: n.surname_compact_expr(n.name_expr(e)), ["Van-der Berg"]) == [
        "vanderberg"
    ]
    assert expr_values(n.surname_parts_expr, ["Smith-Jones"]) == [["smith", "jones"]]


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("Bill", "william"),
        ("billy", "william"),
        ("Will", "william"),
        ("William", "william"),
        ("Bob", "robert"),
        ("Bobby", "robert"),
        ("Liz", "elizabeth"),
        ("Beth", "elizabeth"),
        ("Lizzie", "elizabeth"),
        ("Mo", "muhammad"),
        ("Mohammed", "muhammad"),
        ("Muhammad", "muhammad"),
        ("MOHAMED", "muhammad"),
        ("Mohammad Ali", "muhammad"),
        ("Zebedee", "zebedee"),
        (None, None),
    ],
)
def test_canonical_forename(raw: str | None, canonical: str | None) -> None:
    assert n.canonical_forename(raw) == canonical


def test_nickname_table_is_large_and_normalised() -> None:
    table = n.nicknames()
    assert len(table) >= 300
    for variant, canonical in table.items():
        assert n.normalise_name(variant) == variant
        assert n.normalise_name(canonical) == canonical
        assert canonical not in table  # canonical names are fixed points


def test_canonical_forename_expr() -> None:
    got = expr_values(
        lambda e: n.canonical_forename_expr(n.first_forename_expr(n.name_expr(e))),
        ["Billy Joe", "Zebedee", None],
    )
    assert got == ["william", "zebedee", None]


# ---------------------------------------------------------------- dates

MARCH_14 = date(2009, 3, 14)
DATE_CASES = {
    "2009-03-14": MARCH_14,
    "2009-03-14T10:22:00": MARCH_14,
    "2009-03-14 10:22": MARCH_14,
    "2009-03-14T10:22:00.123Z": MARCH_14,
    "14/03/2009": MARCH_14,
    "14-03-2009": MARCH_14,
    "14.03.2009": MARCH_14,
    "14/03/09": MARCH_14,
    "14 Mar 2009": MARCH_14,
    "14-Mar-2009": MARCH_14,
    "14 march 2009": MARCH_14,
    "14-MAR-09": MARCH_14,
    "20090314": MARCH_14,
    " 14/03/2009 ": MARCH_14,
    "4/3/2009": date(2009, 3, 4),  # day first, never US month-first
    "03/04/2009": date(2009, 4, 3),
    "31/02/2009": None,  # impossible
    "29/02/2009": None,
    "29/02/2008": date(2008, 2, 29),
    "2009-02-31": None,
    "03/14/2009": None,  # US month-first is not read as such
    "14/13/2009": None,
    "20090231": None,
    "14 Foo 2009": None,
    "14/03/2009 25:00": None,
    "yesterday": None,
    "": None,
    None: None,
}


@pytest.mark.parametrize(("raw", "expected"), DATE_CASES.items())
def test_parse_date(raw: str | None, expected: date | None) -> None:
    assert n.parse_date(raw) == expected


def test_date_expr_agrees_with_scalar() -> None:
    raws = list(DATE_CASES)
    assert expr_values(n.date_expr, raws) == [n.parse_date(r) for r in raws]


def test_two_digit_year_is_never_in_the_future() -> None:
    today = date.today()
    next_year_yy = f"{(today.year + 1) % 100:02d}"
    this_year_yy = f"{today.year % 100:02d}"
    assert n.parse_date(f"01/01/{this_year_yy}") == date(today.year, 1, 1)
    assert n.parse_date(f"01/01/{next_year_yy}") == date(today.year + 1 - 100, 1, 1)
    assert n.parse_date("01/01/30") == date(1930, 1, 1)
    raws = [f"01/01/{next_year_yy}", f"01/01/{this_year_yy}", "29/02/00"]
    assert expr_values(n.date_expr, raws) == [n.parse_date(r) for r in raws]


def test_datetimes() -> None:
    cases = {
        "2009-03-14T10:22:00": datetime(2009, 3, 14, 10, 22),
        "2009-03-14 10:22": datetime(2009, 3, 14, 10, 22),
        "14/03/2009 23:59:59": datetime(2009, 3, 14, 23, 59, 59),
        "14/03/2009": datetime(2009, 3, 14),
        "2009-03-14T24:00:00": None,
        "31/02/2009 10:00": None,
    }
    for raw, expected in cases.items():
        assert n.parse_datetime(raw) == expected, raw
    assert expr_values(n.datetime_expr, list(cases)) == list(cases.values())


# ---------------------------------------------------------------- NHS numbers


def make_nhs(rng: random.Random) -> str:
    while True:
        body = [rng.randint(0, 9) for _ in range(9)]
        check = 11 - sum(d * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return "".join(map(str, body)) + str(check)


@pytest.mark.parametrize(
    "valid", ["9434765919", "9434765870", "4010232137", "943 476 5919", "943-476-5870"]
)
def test_known_valid_nhs_numbers(valid: str) -> None:
    assert n.nhs_number_valid(valid)
    assert n.normalise_nhs_number(valid) == valid.replace(" ", "").replace("-", "")


@pytest.mark.parametrize(
    "invalid",
    [
        "9434765918",
        "943476591",
        "94347659190",
        "943476591X",
        "1000000010",
        "",
        "０１２３４５６７８９",
    ],
)
def test_invalid_nhs_numbers(invalid: str) -> None:
    # 1000000010: the check digit computes to 10, which no NHS number may have
    assert not n.nhs_number_valid(invalid)
    assert n.normalise_nhs_number(invalid) is None


def test_generated_nhs_numbers_and_single_digit_errors() -> None:
    rng = random.Random(7)
    numbers = [make_nhs(rng) for _ in range(300)]
    assert all(n.nhs_number_valid(x) for x in numbers)
    corrupted = [x[:4] + str((int(x[4]) + 1) % 10) + x[5:] for x in numbers]
    assert not any(n.nhs_number_valid(x) for x in corrupted)
    raws = [*numbers, *corrupted, None, "abc"]
    assert expr_values(n.nhs_number_expr, raws) == [n.normalise_nhs_number(r) for r in raws]


# ---------------------------------------------------------------- postcodes

POSTCODE_CASES = {
    "sw1a1aa": "SW1A 1AA",
    " SW1A  1AA ": "SW1A 1AA",
    "EC1A 1BB": "EC1A 1BB",
    "W1A 0AX": "W1A 0AX",
    "M1 1AE": "M1 1AE",
    "B33 8TH": "B33 8TH",
    "CR2 6XH": "CR2 6XH",
    "DN55 1PT": "DN55 1PT",
    "e1 6an": "E1 6AN",
    "SW1A 1A": None,
    "QQ1 1AA": None,
    "12345": None,
    "SW1A 1CA": None,  # C never appears in the inward letters
    "": None,
    None: None,
}


@pytest.mark.parametrize(("raw", "expected"), POSTCODE_CASES.items())
def test_normalise_postcode(raw: str | None, expected: str | None) -> None:
    assert n.normalise_postcode(raw) == expected


def test_postcode_expr_and_parts() -> None:
    raws = list(POSTCODE_CASES)
    assert expr_values(n.postcode_expr, raws) == [n.normalise_postcode(r) for r in raws]
    valid = [value is True for value in expr_values(n.postcode_valid_expr, raws)]
    assert valid == [n.normalise_postcode(r) is not None for r in raws]
    assert 0 < sum(valid) < len(raws)
    assert n.postcode_sector("sw1a1aa") == "SW1A 1"
    assert n.postcode_district("sw1a1aa") == "SW1A"
    assert n.postcode_area("sw1a1aa") == "SW"
    assert n.postcode_area("M1 1AE") == "M"
    assert n.postcode_sector(None) is None
    normal = ["SW1A 1AA", "M1 1AE", "DN55 1PT", None]
    assert expr_values(n.postcode_sector_expr, normal) == ["SW1A 1", "M1 1", "DN55 1", None]
    assert expr_values(n.postcode_district_expr, normal) == ["SW1A", "M1", "DN55", None]
    assert expr_values(n.postcode_area_expr, normal) == ["SW", "M", "DN", None]


# ---------------------------------------------------------------- UPNs and PNC ids


def test_upn_check_letter_matches_published_examples() -> None:
    # Examples from the DfE UPN guidance: permanent and temporary (letter in position 13).
    for upn in ["H801200001001", "B801200005001", "G80120000101A"]:
        assert n.upn_check_letter(upn[1:]) == upn[0]
        assert n.normalise_upn(upn) == upn
    assert n.normalise_upn(" h801200001001 ") == "H801200001001"
    assert n.normalise_upn("Z801200001001") is None  # wrong check letter
    assert n.normalise_upn("H80120000100") is None  # too short
    assert n.normalise_upn("I801200001001") is None  # I is never used
    assert n.normalise_upn("H8012000010S1") is None
    with pytest.raises(ValueError):
        n.upn_check_letter("80120000100")


def test_generated_upns_and_expr() -> None:
    rng = random.Random(3)
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUVWXYZ"
    upns = []
    for _ in range(200):
        body = "".join(rng.choice("0123456789") for _ in range(11)) + rng.choice(alphabet)
        upns.append(n.upn_check_letter(body) + body)
    assert all(n.normalise_upn(u) == u for u in upns)
    wrong = [("A" if u[0] != "A" else "B") + u[1:] for u in upns]
    assert not any(n.normalise_upn(u) for u in wrong)
    raws = [*upns, *wrong, None, "junk"]
    assert expr_values(n.upn_expr, raws) == [n.normalise_upn(r) for r in raws]


def test_pnc_ids() -> None:
    letter = n.pnc_check_letter(2009, 123456)
    assert letter == "ZABCDEFGHJKLMNPQRTUVWXY"[9_0123456 % 23]
    assert n.normalise_pnc(f"09/123456{letter}") == f"2009/123456{letter}"
    assert n.normalise_pnc(f"2009/0123456{letter.lower()}") == f"2009/123456{letter}"
    assert n.normalise_pnc(f" 2009/123456{letter} ") == f"2009/123456{letter}"
    assert n.normalise_pnc(f"85/42{n.pnc_check_letter(1985, 42)}") == (
        f"1985/42{n.pnc_check_letter(1985, 42)}"
    )
    wrong = "A" if letter != "A" else "B"
    assert n.normalise_pnc(f"2009/123456{wrong}") is None
    assert n.normalise_pnc("2009/12345678A") is None
    assert n.normalise_pnc("209/1234A") is None
    raws = [f"09/123456{letter}", f"2009/0123456{letter}", f"2009/123456{wrong}", None, "x"]
    assert pnc_values(raws) == [n.normalise_pnc(r) for r in raws]


def pnc_values(raws: list[str | None]) -> list[str | None]:
    frame = pl.LazyFrame({"raw": pl.Series(raws, dtype=pl.String)})
    normalised = n.pnc_normalised(frame, "raw", "norm").collect()
    assert normalised.columns == ["raw", "norm"]  # no staging column is left behind
    return normalised.get_column("norm").to_list()


def test_pnc_validity_and_normal_form_agree_with_scalar_normalisation() -> None:
    rng = random.Random(7)
    this_year = date.today().year % 100
    raws: list[str | None] = [None, "", " ", "/", "x", "12/34/5A", "1/2A", "99999/1A", "09//1A"]
    for _ in range(3_000):
        year = rng.choice([f"{this_year:02d}", f"{(this_year + 1) % 100:02d}", "00", "99"])
        year = rng.choice([year, str(rng.randrange(10_000)).zfill(4), str(rng.randrange(1_000))])
        serial = str(rng.randrange(10 ** rng.randrange(1, 9))).zfill(rng.randrange(1, 8))
        letter = n.pnc_check_letter(int(year), int(serial))  # reads the year modulo 100
        letter = rng.choice([letter, letter.lower(), rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ9")])
        raw = f"{year}{rng.choice('//-')}{serial}{letter}"
        cut = rng.randrange(len(raw) + 1)
        raws.append(rng.choice([raw, f"{raw[:cut]} {raw[cut:]}", f"\t{raw}\u00a0"]))
    valid = [value is True for value in expr_values(n.pnc_valid_expr, raws)]
    assert valid == [n.normalise_pnc(raw) is not None for raw in raws]
    assert 0 < sum(valid) < len(raws)
    assert pnc_values(raws) == [n.normalise_pnc(raw) for raw in raws]


def test_local_ids() -> None:
    assert n.normalise_local_id(" ab 123 ") == "AB123"
    assert n.normalise_local_id("  ") is None
    assert expr_values(n.local_id_expr, [" ab 123 ", "  ", None]) == ["AB123", None, None]
