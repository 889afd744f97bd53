"""Match keys: which records link on which key, and which never do."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from typing import Any

import polars as pl
import pytest

from privacy.keys import derive_key
from privacy.matchkeys import (
    KEY_SPACES,
    MATCH_KEYS,
    STORED_KEY_BYTES,
    Pseudonymiser,
    pack_match_keys,
    unpack_match_keys,
)
from privacy.normalise import pnc_check_letter, upn_check_letter

MASTER = bytes(range(32, 64))
KEY_NAMES = [spec.name for spec in MATCH_KEYS]
UPN_BODY = "801200001001"
UPN = upn_check_letter(UPN_BODY) + UPN_BODY
FORMER_BODY = "801200005001"
FORMER_UPN = upn_check_letter(FORMER_BODY) + FORMER_BODY
PNC = f"2009/123456{pnc_check_letter(2009, 123456)}"

BASE: dict[str, Any] = {
    "forename": "William",
    "surname": "O'Brien",
    "nhs_number": "9434765919",
    "upn": UPN,
    "former_upn": None,
    "pnc_id": PNC,
    "local_id": "A123",
    "postcode": "SW1A 1AA",
    "date_of_birth": date(2009, 3, 5),
}


def frame(*records: dict[str, Any]) -> pl.DataFrame:
    rows = [{**BASE, **r} for r in records]
    schema = {k: pl.String for k in BASE} | {"date_of_birth": pl.Date}
    return pl.DataFrame(rows, schema=schema)


def keys(
    *records: dict[str, Any], domain: str = "london", dataset: str = "police"
) -> list[dict[str, Any]]:
    return Pseudonymiser(MASTER, domain, 1).match_keys(frame(*records), dataset=dataset).to_dicts()


def test_shape_types_and_order() -> None:
    records = [{"local_id": f"L{i}", "forename": n} for i, n in enumerate(["Ann", "Bob", "Cy"] * 3)]
    out = Pseudonymiser(MASTER, "london", 1).match_keys(frame(*records), dataset="police")
    assert out.columns == KEY_NAMES
    assert out.height == len(records)
    assert all(dtype == pl.Binary for dtype in out.dtypes)
    assert all(len(v) == 32 for v in out.get_column("name_dob").to_list())
    # rows map to their own inputs (order kept, including through the de-duplication path)
    singles = [keys(r)[0] for r in records]
    assert out.to_dicts() == singles
    assert len(set(out.get_column("local_id").to_list())) == len(records)


def test_known_answer_for_nhs_key() -> None:
    key = derive_key(MASTER, domain="london", version=1, purpose="match-key")
    expected = hmac.new(key.hex().encode(), b"nhs\x1f9434765919", hashlib.sha256).digest()
    assert keys({"nhs_number": "943 476 5919"})[0]["nhs"] == expected


def test_packed_keys_round_trip() -> None:
    pseudonymiser = Pseudonymiser(MASTER, "london", 1)
    frame = pl.DataFrame(
        {
            "nhs_number": ["9434765919", None],
            "forename": ["Amara", "Bo"],
            "surname": ["Okafor", None],
        }
    )
    binary = pseudonymiser.match_keys(frame, "ae_istv_assaults")
    packed = pack_match_keys(pseudonymiser.match_key_prefixes(frame, "ae_istv_assaults"))
    for index in range(2):
        unpacked = unpack_match_keys(packed["match_key_mask"][index], packed["match_keys"][index])
        expected = {
            k: v[:STORED_KEY_BYTES] for k, v in binary.row(index, named=True).items() if v
        }
        assert unpacked == expected
    assert set(unpack_match_keys(packed["match_key_mask"][0], packed["match_keys"][0])) == {"nhs"}


def test_packed_keys_round_trip_over_many_rows() -> None:
    # more rows than are packed at a time, with every row's own mix of present keys
    pseudonymiser = Pseudonymiser(MASTER, "london", 1)
    count = 5_000
    frame = pl.DataFrame(
        {
            "nhs_number": ["9434765919" if i % 3 else None for i in range(count)],
            "forename": [f"Name{i}" if i % 5 else None for i in range(count)],
            "surname": ["Okafor" if i % 7 else None for i in range(count)],
            "postcode": ["SW1A 1AA" if i % 2 else None for i in range(count)],
            "date_of_birth": [date(2009, 3, 5) if i % 11 else None for i in range(count)],
        }
    )
    binary = pseudonymiser.match_keys(frame, "police")
    packed = pack_match_keys(pseudonymiser.match_key_prefixes(frame, "police"))
    assert packed.schema == pl.Schema({"match_key_mask": pl.Int32, "match_keys": pl.Binary})
    for index, row in enumerate(binary.iter_rows(named=True)):
        unpacked = unpack_match_keys(packed["match_key_mask"][index], packed["match_keys"][index])
        assert unpacked == {k: v[:STORED_KEY_BYTES] for k, v in row.items() if v is not None}


def test_packing_refuses_what_is_not_a_digest_prefix() -> None:
    frame = pl.DataFrame({"nhs_number": ["9434765919"], "forename": ["Amara"]})
    pseudonymiser = Pseudonymiser(MASTER, "london", 1)
    with pytest.raises(ValueError, match="match_key_prefixes"):
        pack_match_keys(pseudonymiser.match_keys_hex(frame, "police"))
    with pytest.raises(ValueError, match="not so: nhs"):
        pack_match_keys(pseudonymiser.match_key_prefixes(frame, "police").drop("nhs"))


def test_prefixes_are_the_first_8_bytes_of_the_digests() -> None:
    frame = pl.DataFrame({"nhs_number": ["9434765919", None], "forename": ["Amara", "Bo"],
                          "surname": ["Okafor", None], "date_of_birth": [date(2009, 3, 5)] * 2})
    pseudonymiser = Pseudonymiser(MASTER, "london", 1)
    prefixes = pseudonymiser.match_key_prefixes(frame, "police", fields=("fore",))
    digests = pseudonymiser.match_keys(frame, "police")
    for name in KEY_NAMES:
        assert prefixes[name].to_list() == [
            None if d is None else int.from_bytes(d[:STORED_KEY_BYTES], "big")
            for d in digests[name]
        ]
    assert prefixes["fore"].to_list() == ["amara", "bo"]


def test_case_accent_spacing_and_punctuation_do_not_matter() -> None:
    a, b = keys(
        {"forename": "Zoë", "surname": "O'Brien-Smith", "postcode": "sw1a1aa"},
        {"forename": "  ZOE ", "surname": "obrien  smith", "postcode": "SW1A 1AA"},
    )
    for name in ["name_dob_postcode", "name_dob", "canonical_name_dob", "surname_dob_postcode"]:
        assert a[name] is not None and a[name] == b[name], name


def test_multi_part_names() -> None:
    a, b = keys(
        {"forename": "Mary Jane", "surname": "van der Berg"},
        {"forename": "Mary", "surname": "Vanderberg"},
    )
    assert a["name_dob"] == b["name_dob"]


def test_nicknames_link_only_on_the_canonical_key() -> None:
    a, b = keys({"forename": "Billy"}, {"forename": "William"})
    assert a["canonical_name_dob"] == b["canonical_name_dob"]
    assert a["name_dob"] != b["name_dob"]
    assert a["surname_dob_postcode"] == b["surname_dob_postcode"]
    c, d = keys({"forename": "Mo"}, {"forename": "Mohammed"})
    assert c["canonical_name_dob"] == d["canonical_name_dob"]


def test_identifier_formats_do_not_matter() -> None:
    a, b = keys(
        {"upn": UPN.lower(), "pnc_id": "09/" + PNC[5:], "local_id": "a 123"},
        {"upn": UPN, "pnc_id": PNC, "local_id": "A123"},
    )
    assert a["upn"] == b["upn"] and a["pnc"] == b["pnc"] and a["local_id"] == b["local_id"]


def test_former_upn_links_to_current_upn() -> None:
    old, new = keys({"upn": FORMER_UPN}, {"upn": UPN, "former_upn": FORMER_UPN})
    assert KEY_SPACES["upn_former"] == "upn"
    assert new["upn_former"] == old["upn"]
    assert old["upn_former"] is None


def test_local_ids_link_only_within_one_dataset() -> None:
    police = keys({}, dataset="police")[0]
    health = keys({}, dataset="health")[0]
    assert police["local_id"] != health["local_id"]
    assert police["nhs"] == health["nhs"]


def test_local_id_needs_a_dataset() -> None:
    with pytest.raises(ValueError, match="dataset"):
        Pseudonymiser(MASTER, "london", 1).match_keys(frame({}))
    # the constructor may carry it instead
    out = Pseudonymiser(MASTER, "london", 1, dataset="police").match_keys(frame({}))
    assert out.to_dicts() == keys({}, dataset="police")


def test_domains_and_versions_never_link() -> None:
    london, kent = keys({}, domain="london")[0], keys({}, domain="kent")[0]
    v2 = Pseudonymiser(MASTER, "london", 2).match_keys(frame({}), dataset="police").to_dicts()[0]
    for name in KEY_NAMES:
        if london[name] is not None:
            assert london[name] != kent[name], name
            assert london[name] != v2[name], name
    assert Pseudonymiser(MASTER, "london", 2).key_version == 2


def test_keys_never_collide_with_each_other() -> None:
    row = keys({"forename": "Smith", "surname": "Smith"})[0]
    digests = [row[n] for n in KEY_NAMES if row[n] is not None and n != "upn_former"]
    assert len(digests) == len(set(digests))


def test_missing_inputs_give_null_keys() -> None:
    row = keys(
        {
            "forename": None,
            "nhs_number": None,
            "upn": None,
            "pnc_id": None,
            "postcode": None,
            "local_id": None,
        }
    )[0]
    assert row["surname_dob_postcode"] is None  # postcode missing
    assert row["name_dob"] is None and row["transposed_names_dob"] is None
    assert all(row[n] is None for n in ["nhs", "upn", "upn_former", "pnc", "local_id"])
    no_dob = keys({"date_of_birth": None})[0]
    assert all(no_dob[n] is None for n in KEY_NAMES if n not in {"nhs", "upn", "pnc", "local_id"})
    assert no_dob["nhs"] is not None


def test_absent_columns_count_as_null() -> None:
    partial = pl.DataFrame(
        {"forename": ["Ann"], "surname": ["Lee"], "date_of_birth": [date(2001, 1, 2)]}
    )
    out = Pseudonymiser(MASTER, "london", 1).match_keys(partial).to_dicts()[0]
    assert out["name_dob"] is not None and out["nhs"] is None and out["local_id"] is None


def test_day_month_swap_links_a_swapped_pair() -> None:
    a, b = keys({"date_of_birth": date(2009, 3, 5)}, {"date_of_birth": date(2009, 5, 3)})
    assert a["name_dob"] != b["name_dob"]
    assert a["swapped_dob"] is not None and a["swapped_dob"] == b["swapped_dob"]
    c = keys({"date_of_birth": date(2009, 3, 6)})[0]
    assert c["swapped_dob"] != a["swapped_dob"]
    # no possible swap: day > 12, or day == month
    assert keys({"date_of_birth": date(2009, 3, 14)})[0]["swapped_dob"] is None
    assert keys({"date_of_birth": date(2009, 4, 4)})[0]["swapped_dob"] is None


def test_transposed_names_link() -> None:
    a, b = keys(
        {"forename": "Kwame", "surname": "Mensah"}, {"forename": "Mensah", "surname": "Kwame"}
    )
    assert a["name_dob"] != b["name_dob"]
    assert a["transposed_names_dob"] == b["transposed_names_dob"]


def test_surname_change_links_on_forename_dob_postcode() -> None:
    a, b = keys({"surname": "Smith"}, {"surname": "Jones"})
    assert a["name_dob"] != b["name_dob"]
    assert a["forename_dob_postcode"] == b["forename_dob_postcode"]


def test_misspelt_forename_links_on_initial_and_sector() -> None:
    a, b = keys(
        {"forename": "Jon", "postcode": "SW1A 1AA"}, {"forename": "John", "postcode": "SW1A 1BB"}
    )
    assert a["initial_surname_dob_sector"] == b["initial_surname_dob_sector"]
    assert a["name_dob_postcode"] != b["name_dob_postcode"]


def test_keys_do_not_depend_on_the_rest_of_the_batch() -> None:
    # A column with no values in a batch is not normalised at all; a row's keys must still be the
    # same as when it shares a batch with rows that do have the field.
    pseudonymiser = Pseudonymiser(MASTER, "london", 1)
    without = [{"pnc_id": None, "nhs_number": None, "local_id": f"L{i}"} for i in range(3)]
    mixed = [*without, {"local_id": "L9"}]
    alone = pseudonymiser.match_keys(frame(*without), dataset="police")
    together = pseudonymiser.match_keys(frame(*mixed), dataset="police")
    assert together.head(3).equals(alone)
    assert together.get_column("pnc")[3] is not None and alone.get_column("pnc").null_count() == 3
    dataset_scoped = pseudonymiser.match_keys(frame(*mixed), dataset="probation")
    assert dataset_scoped.get_column("local_id")[0] != together.get_column("local_id")[0]


def test_empty_frame() -> None:
    out = Pseudonymiser(MASTER, "london", 1).match_keys(frame().clear(), dataset="police")
    assert out.height == 0 and out.columns == KEY_NAMES


def test_repr_hides_key_material() -> None:
    text = repr(Pseudonymiser(MASTER, "london", 1))
    assert MASTER.hex() not in text and "london" in text


def test_repeated_rows_get_the_same_keys_in_order() -> None:
    # Extracts repeat people; the de-duplicated path must map every row back to its own keys.
    people = [
        {"forename": "Ann", "local_id": "1"},
        {"forename": "Bob", "local_id": "2", "nhs_number": None},
        {"forename": "Cy", "local_id": "3", "postcode": None},
    ]
    order = [0, 1, 0, 2, 2, 1, 0, 2]
    out = keys(*[people[i] for i in order])
    singles = [keys(p)[0] for p in people]
    assert out == [singles[i] for i in order]


def test_non_string_identifier_columns_are_accepted() -> None:
    typed = frame({}).with_columns(pl.col("nhs_number").cast(pl.Int64))
    out = Pseudonymiser(MASTER, "london", 1).match_keys(typed, dataset="police").to_dicts()
    assert out == keys({})


def test_a_stored_row_holds_8_bytes_a_key_and_rows_with_whole_digests_still_read() -> None:
    pseudonymiser = Pseudonymiser(MASTER, "london", 1)
    frame = pl.DataFrame({"nhs_number": ["9434765919"], "forename": ["Amara"],
                          "surname": ["Okafor"], "date_of_birth": [date(2009, 3, 5)]})
    packed = pack_match_keys(pseudonymiser.match_key_prefixes(frame, "police"))
    mask, blob = packed["match_key_mask"][0], packed["match_keys"][0]
    digests = {k: v for k, v in pseudonymiser.match_keys(frame, "police").row(0, named=True).items()
               if v is not None}
    assert len(blob) == STORED_KEY_BYTES * len(digests)
    # a row stored before keys were truncated: whole digests, read the same way
    whole = b"".join(digests[spec.name] for spec in MATCH_KEYS if spec.name in digests)
    assert unpack_match_keys(mask, whole) == digests
    with pytest.raises(ValueError, match="does not match its mask"):
        unpack_match_keys(mask, whole[:-1])
