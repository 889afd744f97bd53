"""Linkage behaviour users rely on: guards against over-linking, incremental uploads and
withdrawals, stable person ids, Bloom matching and pair-counted quality. Real crypto, tiny data."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from privacy.linkage.bloom import (
    BloomEncoder,
    anchor_cascade,
    anchor_link,
    bloom_cascade,
    bloom_link,
    name_part_link,
)
from privacy.linkage.cascade import Linker
from privacy.linkage.quality import pairwise_quality, quality_by_dataset_pair
from privacy.matchkeys import Pseudonymiser, normalised_fields

MASTER = b"\x5a" * 32
VALID_NHS = "9434765919"
OTHER_NHS = "9990000018"  # check digit valid? computed below
BAD_NHS = "9434765918"  # fails the mod-11 check


def nhs(body: str) -> str:
    check = 11 - sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
    check = 0 if check == 11 else check
    assert check != 10
    return body + str(check)


NHS_A = nhs("999000001")
NHS_B = nhs("999000002")


def person(
    forename: str | None = "Amara",
    surname: str | None = "Okafor",
    dob: date | None = date(2008, 3, 14),
    postcode: str | None = "E1 6AN",
    nhs_number: str | None = None,
    sex: str | None = "female",
    local_id: str | None = None,
) -> dict[str, object]:
    return {
        "forename": forename,
        "surname": surname,
        "date_of_birth": dob,
        "postcode": postcode,
        "nhs_number": nhs_number,
        "sex": sex,
        "local_id": local_id,
    }


def upload(
    name: str, rows: list[dict[str, object]], dataset: str = "agency", domain: str = "d"
) -> pl.DataFrame:
    frame = pl.DataFrame(
        rows,
        schema={
            "forename": pl.String,
            "surname": pl.String,
            "date_of_birth": pl.Date,
            "postcode": pl.String,
            "nhs_number": pl.String,
            "sex": pl.String,
            "local_id": pl.String,
        },
    )
    keys = Pseudonymiser(MASTER, domain, 1, dataset=dataset).match_keys(frame)
    ids = pl.Series("record_id", [f"{name}:{i}" for i in range(frame.height)])
    return pl.concat(
        [
            pl.DataFrame([ids, pl.Series("upload", [name] * frame.height)]),
            keys,
            BloomEncoder(MASTER, domain, 1).encode(frame),
        ],
        how="horizontal",
    )


def persons(linker: Linker) -> dict[str, str]:
    return dict(linker.assignments().select("record_id", "person_id").iter_rows())


def test_records_without_identifiers_are_kept_and_never_linked() -> None:
    empty = person(None, None, None, None)
    linker = Linker(MASTER, "d", 1)
    linker.add(upload("u1", [empty, empty, person()]))
    linker.add(upload("u2", [empty, person()]))
    got = persons(linker)
    assert len(got) == 5
    blanks = [got["u1:0"], got["u1:1"], got["u2:0"]]
    assert len(set(blanks)) == 3
    assert got["u1:2"] == got["u2:1"] not in blanks


def test_invalid_nhs_number_does_not_link() -> None:
    a = person("Kwame", "Mensah", date(2001, 1, 2), None, nhs_number=BAD_NHS)
    b = person("Liam", "Brown", date(1999, 5, 6), None, nhs_number=BAD_NHS)
    linker = Linker(MASTER, "d", 1)
    linker.add(upload("u1", [a]))
    linker.add(upload("u2", [b]))
    got = persons(linker)
    assert got["u1:0"] != got["u2:0"]


def test_same_nhs_number_with_different_sex_and_dob_links_nhs_wins() -> None:
    a = person("Kwame", "Mensah", date(2001, 1, 2), "E1 6AN", nhs_number=NHS_A, sex="male")
    b = person("Kwame", "Mensah", date(2003, 7, 9), "E1 6AN", nhs_number=NHS_A, sex="female")
    linker = Linker(MASTER, "d", 1)
    linker.add(upload("u1", [a]))
    out = linker.add(upload("u2", [b]))
    got = persons(linker)
    assert got["u1:0"] == got["u2:0"]
    assert out["link_key"].to_list() == ["nhs"]


def test_weak_key_never_joins_two_nhs_numbers() -> None:
    # same name, DOB and postcode, two different valid NHS numbers: two people
    a = person(nhs_number=NHS_A)
    b = person(nhs_number=NHS_B)
    linker = Linker(MASTER, "d", 1)
    linker.add(upload("u1", [a]))
    linker.add(upload("u2", [b, person()]))
    got = persons(linker)
    assert got["u1:0"] != got["u2:0"]
    # the record without an NHS number cannot tell them apart: it joins neither
    assert got["u2:1"] not in (got["u1:0"], got["u2:0"])


def test_twins_in_one_household_are_not_merged() -> None:
    twin_a = person("Hassan", "Ali", date(2010, 6, 1), "N17 9PL", sex="male", local_id="P1")
    twin_b = person("Hussein", "Ali", date(2010, 6, 1), "N17 9PL", sex="male", local_id="P2")
    linker = Linker(MASTER, "d", 1)
    linker.add(upload("police", [twin_a, twin_b, twin_a], dataset="police"))
    # a later upload with each twin's surname-only-agreeing variant must not bridge them
    linker.add(upload("school", [person("Hasan", "Ali", date(2010, 6, 1), "N17 9PL")]))
    got = persons(linker)
    assert got["police:0"] == got["police:2"]
    assert got["police:0"] != got["police:1"]
    links = bloom_link(*_linked(linker, ["police", "school"], [twin_a, twin_b, twin_a]))
    assert len(set(links.labels[:2].tolist())) == 2


def _linked(
    linker: Linker, names: list[str], police_rows: list[dict[str, object]]
) -> tuple[pl.DataFrame, np.ndarray]:
    records = pl.concat(
        [
            upload("police", police_rows, dataset="police"),
            upload("school", [person("Hasan", "Ali", date(2010, 6, 1), "N17 9PL")]),
        ]
    )
    _, labels = linker.labels()
    return records, labels


def test_same_upload_twice_is_idempotent() -> None:
    rows = [person(), person("Bill", "Jones", date(1990, 2, 3), "SE15 5DQ")]
    linker = Linker(MASTER, "d", 1)
    first = linker.add(upload("u1", rows))
    again = linker.add(upload("u1", rows))
    assert first.equals(again)
    assert len(linker) == 2


def test_withdrawal_recomputes_touched_persons_and_keeps_surviving_ids() -> None:
    amara = person(nhs_number=NHS_A, local_id="C1")
    linker = Linker(MASTER, "d", 1)
    linker.add(
        upload("csc", [amara, person("Liam", "Brown", date(1999, 5, 6), "N1 1AA")], dataset="csc")
    )
    before = persons(linker)
    # A&E: the NHS number bridges to a police record with name but no NHS number
    linker.add(
        upload("ae", [person(None, None, date(2008, 3, 14), None, nhs_number=NHS_A)], dataset="ae")
    )
    linker.add(
        upload("police", [person("Amara", "Okafor", date(2008, 3, 14), "E1 6AN")], dataset="police")
    )
    merged = persons(linker)
    assert merged["csc:0"] == merged["ae:0"] == merged["police:0"] == before["csc:0"]
    assert linker.remove(["csc:0", "csc:1"]) == 2
    after = persons(linker)
    assert set(after) == {"ae:0", "police:0"}
    # the bridge is gone: A&E and police are two persons again, with new ids
    assert after["ae:0"] != after["police:0"]
    assert before["csc:0"] not in after.values()
    # withdrawing the newest upload leaves the older person's id untouched
    linker2 = Linker(MASTER, "d", 1)
    linker2.add(upload("csc", [amara], dataset="csc"))
    linker2.add(
        upload("ae", [person(None, None, date(2008, 3, 14), None, nhs_number=NHS_A)], dataset="ae")
    )
    pid = persons(linker2)["csc:0"]
    linker2.remove(["ae:0"])
    assert persons(linker2) == {"csc:0": pid}


def test_person_ids_stable_across_uploads_and_separate_per_domain_and_version() -> None:
    rows = [person(nhs_number=NHS_A)]
    linker = Linker(MASTER, "d", 1)
    linker.add(upload("u1", rows))
    pid = persons(linker)["u1:0"]
    linker.add(upload("u2", [*rows, person("Liam", "Brown")]))
    got = persons(linker)
    assert got["u1:0"] == got["u2:0"] == pid
    other_domain = Linker(MASTER, "e", 1)
    other_domain.add(upload("u1", rows, domain="e"))
    other_version = Linker(MASTER, "d", 2)
    other_version.add(upload("u1", rows))
    assert persons(other_domain)["u1:0"] != pid
    assert persons(other_version)["u1:0"] != pid
    assert "5a5a" not in repr(linker)


def test_merge_keeps_the_oldest_members_person_id() -> None:
    linker = Linker(MASTER, "d", 1)
    linker.add(upload("u1", [person(nhs_number=NHS_A, postcode=None)]))
    linker.add(upload("u2", [person(postcode="E1 6AN", local_id="X")], dataset="x"))
    old = persons(linker)
    assert old["u1:0"] == old["u2:0"]  # name_dob links them


def test_bloom_links_a_typo_the_keys_miss_and_is_keyed() -> None:
    a = person("Jonathan", "Whitfield", date(2005, 9, 30), "SW1A 1AA", local_id="1")
    b = person("Johnathan", "Whitfeld", date(2005, 9, 30), "SW1A 1AB", local_id="2")
    c = person("Olivia", "Nowak", date(2005, 9, 30), "SW1A 1AA", local_id="3")
    records = pl.concat([upload("u1", [a, c], dataset="p"), upload("u2", [b], dataset="q")])
    linker = Linker(MASTER, "d", 1)
    linker.add(records)
    _, labels = linker.labels()
    assert len(set(labels.tolist())) == 3
    linked, links = bloom_cascade(records, labels)  # two typos and a moved postcode: 0.915
    assert linked[0] == linked[2] != linked[1] and links == 1  # on names alone: 0.925
    other = BloomEncoder(MASTER, "d", 2).encode(pl.DataFrame([a], schema_overrides={}))
    assert not np.array_equal(other["bloom_clk"][0].to_numpy(), records["bloom_clk"][0].to_numpy())
    full = records["bloom_clk"][0].to_numpy()
    assert full.nbytes == 256  # 2 * 1024 bits, balanced
    assert int(np.bitwise_count(full).sum()) == 1024
    assert records["bloom_name_clk"][0].to_numpy().nbytes == 128  # folded


def test_anchor_links_nameless_records_only_when_unambiguous() -> None:
    named = person("Amara", "Okafor", local_id="1")
    twin = person("Adaeze", "Okafor", local_id="2")
    nameless = person(None, None)
    one = pl.concat([upload("p", [named], dataset="p"), upload("ae", [nameless], dataset="ae")])
    two = pl.concat(
        [upload("p", [named, twin], dataset="p"), upload("ae", [nameless], dataset="ae")]
    )
    labels, attached = anchor_link(one, np.arange(2))
    assert attached == 1 and labels[0] == labels[1]
    labels, attached = anchor_link(two, np.arange(3))
    assert attached == 0 and len(set(labels.tolist())) == 3


def test_pairwise_quality_known_counts() -> None:
    # truth: {0,1,2} {3,4}; predicted: {0,1} {2,3,4}
    truth = ["a", "a", "a", "b", "b"]
    pred = [1, 1, 2, 2, 2]
    q = pairwise_quality(pred, truth)
    # predicted pairs 1 + 3 = 4; true pairs 3 + 1 = 4; both: (0,1) and (3,4) = 2
    assert (q.true_positive, q.predicted, q.actual) == (2, 4, 4)
    assert q.precision == q.recall == q.f1 == pytest.approx(0.5)
    by = quality_by_dataset_pair(pred, truth, ["x", "y", "x", "x", "y"])
    rows = {(r["left"], r["right"]): r for r in by.to_dicts()}
    # x-y: true pairs (0,1),(1,2),(3,4) = 3; predicted (0,1),(2,4),(3,4) = 3; both 2
    assert (
        rows[("x", "y")]["true_positive"],
        rows[("x", "y")]["predicted"],
        rows[("x", "y")]["actual"],
    ) == (2, 3, 3)
    # x-x: true (0,2) = 1; predicted (2,3) = 1; both 0
    assert (rows[("x", "x")]["true_positive"], rows[("x", "x")]["actual"]) == (0, 1)


def test_synth_tiny_end_to_end(tmp_path: Path) -> None:
    from benchmarks.linkage import load, run_ours
    from synth import generate

    generate(tmp_path, scale=0.02, seed=3)
    data = load(tmp_path)
    result = run_ours(data)
    final = result["final"]
    assert final.precision >= 0.99  # type: ignore[attr-defined]
    assert final.recall >= 0.8  # type: ignore[attr-defined]


def test_a_nameless_record_with_a_swapped_day_and_month_meets_its_named_record() -> None:
    named = person("Amara", "Okafor", date(2008, 3, 11), local_id="1")
    nameless = person(None, None, date(2008, 11, 3))
    records = pl.concat([upload("p", [named], dataset="p"), upload("ae", [nameless], dataset="ae")])
    labels, counts = anchor_cascade(records, np.arange(2))
    assert labels[0] == labels[1] and counts == [0, 1, 0, 0]


def test_a_nameless_record_meets_a_dob_and_a_postcode_seen_on_different_records() -> None:
    # the person's records carry the DOB (one has a swapped day/month) and the postcode apart
    moved = person("Amara", "Okafor", date(2008, 3, 14), "N1 9GU", local_id="1")
    swapped = person("Amara", "Okafor", date(2008, 3, 14), "E1 6AN", local_id="1")
    swapped["date_of_birth"] = date(2008, 14 - 11, 11)  # not the A&E DOB
    nameless = person(None, None, date(2008, 3, 14), "E1 6AN")
    records = pl.concat(
        [upload("p", [moved, swapped], dataset="p"), upload("ae", [nameless], dataset="ae")]
    )
    labels, counts = anchor_cascade(records, np.array([0, 0, 2]))
    assert labels[2] == labels[0] and counts[0] == 1


def test_a_nameless_record_without_sex_links_only_without_a_rival() -> None:
    named = person("Amara", "Okafor", local_id="1")
    twin = person("Tobi", "Okafor", sex="male", local_id="2")  # same DOB and postcode
    nameless = person(None, None, sex=None)
    one = pl.concat([upload("p", [named], dataset="p"), upload("ae", [nameless], dataset="ae")])
    labels, counts = anchor_cascade(one, np.arange(2))
    assert labels[0] == labels[1] and counts == [0, 0, 1, 0]
    two = pl.concat(
        [upload("p", [named, twin], dataset="p"), upload("ae", [nameless], dataset="ae")]
    )
    labels, counts = anchor_cascade(two, np.arange(3))
    assert len(set(labels.tolist())) == 3 and sum(counts) == 0


def test_a_nameless_record_of_the_other_sex_is_not_given_to_a_twin() -> None:
    named = person("Amara", "Okafor", local_id="1")
    other_twin = person(None, None, sex="male")  # the unnamed twin, seen only in A&E
    records = pl.concat(
        [upload("p", [named], dataset="p"), upload("ae", [other_twin], dataset="ae")]
    )
    labels, counts = anchor_cascade(records, np.arange(2))
    assert labels[0] != labels[1] and sum(counts) == 0


def test_a_nameless_record_without_dob_links_on_postcode_sex_and_stated_age() -> None:
    named = person("Amara", "Okafor", date(2008, 3, 14), local_id="1")
    frame = pl.DataFrame(
        {
            "date_of_birth": [None],
            "postcode": ["E1 6AN"],
            "sex": ["female"],
            "event_date": [date(2025, 2, 1)],
            "age_at_attendance": [16],  # born 2008 or 2009
        },
        schema_overrides={"date_of_birth": pl.Date},
    )
    ae = pl.concat(
        [
            pl.DataFrame([pl.Series("record_id", ["ae:0"]), pl.Series("upload", ["ae"])]),
            Pseudonymiser(MASTER, "d", 1, dataset="ae").match_keys(frame),
            BloomEncoder(MASTER, "d", 1).encode(frame),
        ],
        how="horizontal",
    )
    records = pl.concat([upload("p", [named], dataset="p"), ae])
    labels, counts = anchor_cascade(records, np.arange(2))
    assert labels[0] == labels[1] and counts == [0, 0, 0, 1]
    wrong_age = ae.with_columns(
        BloomEncoder(MASTER, "d", 1)
        .encode(frame.with_columns(pl.lit(12).alias("age_at_attendance")))
        .select(pl.exclude("bloom_named"))
    )
    records = pl.concat([upload("p", [named], dataset="p"), wrong_age])
    labels, counts = anchor_cascade(records, np.arange(2))
    assert labels[0] != labels[1]


def test_twins_in_different_agencies_are_not_joined() -> None:
    twin_a = person("Amara", "Okafor", local_id="1")
    twin_b = person("Adaeze", "Okafor", local_id="2")  # same initial, surname, DOB, postcode
    records = pl.concat([upload("p", [twin_a], dataset="p"), upload("s", [twin_b], dataset="s")])
    linker = Linker(MASTER, "d", 1)
    linker.add(records)
    _, labels = linker.labels()
    bloomed, links = bloom_cascade(records, labels)
    final, _ = anchor_cascade(records, bloomed)
    assert len(set(final.tolist())) == 2 and links == 0


def test_the_name_only_bloom_pass_links_a_mover_with_a_surname_typo() -> None:
    a = person("Ricky", "Menon", date(1999, 3, 11), "TW4 8LA", local_id="1")
    b = person("Ricky", "Mnon", date(1999, 3, 11), "SE20 9BZ", local_id="2")
    records = pl.concat([upload("u1", [a], dataset="p"), upload("u2", [b], dataset="q")])
    linker = Linker(MASTER, "d", 1)
    linker.add(records)
    _, labels = linker.labels()
    assert labels[0] != labels[1]
    bloomed, links = bloom_cascade(records, labels)
    assert bloomed[0] == bloomed[1] and links == 1


def test_stored_match_keys_unpack_to_the_linker_fingerprints() -> None:
    from privacy.linkage.cascade import fingerprints
    from privacy.linkage.stored import stored_fingerprints
    from privacy.matchkeys import MATCH_KEYS, pack_match_keys

    frame = pl.DataFrame(
        [person(), person("Bola", None, postcode=None, nhs_number=NHS_B), person(None, None)],
    )
    pseudonymiser = Pseudonymiser(MASTER, "d", 1, dataset="p")
    packed = pack_match_keys(pseudonymiser.match_key_prefixes(frame))
    unpacked = stored_fingerprints(packed["match_key_mask"], packed["match_keys"])
    digests = pseudonymiser.match_keys(frame)
    for spec in MATCH_KEYS:
        assert unpacked[spec.name].to_list() == fingerprints(digests[spec.name]).tolist()
    with pytest.raises(ValueError, match="does not match its mask"):
        stored_fingerprints(packed["match_key_mask"] + 1, packed["match_keys"])
    # rows stored before keys were truncated hold whole digests; a column may mix both
    whole = [
        b"".join(d for d in row if d is not None)
        for row in digests.select(spec.name for spec in MATCH_KEYS).iter_rows()
    ]
    mixed = pl.Series([whole[0], packed["match_keys"][1], whole[2]], dtype=pl.Binary)
    assert stored_fingerprints(packed["match_key_mask"], mixed).equals(unpacked)


def _reference_clk(
    forename: str | None,
    surname: str | None,
    postcode: str | None,
    dob: date | None,
    *,
    names_only: bool = False,
) -> bytes:
    """The CLK definition, one bigram at a time (docs/linkage.md): HMAC positions by double
    hashing, salted with the year of birth, balanced and permuted with the domain's keys; the
    name-only CLK has its own permutation and is XOR-folded to half its length."""
    import hashlib
    import hmac

    from privacy.keys import derive_key
    from privacy.linkage.bloom import BLOOM_PURPOSE, PERMUTATION_PURPOSE
    from privacy.normalise import (
        first_forename,
        normalise_name,
        normalise_postcode,
        surname_compact,
    )

    m = 1024
    key = derive_key(MASTER, domain="d", version=1, purpose=BLOOM_PURPOSE).hex().encode()
    purpose = PERMUTATION_PURPOSE + ("-names" if names_only else "")
    seed = int.from_bytes(derive_key(MASTER, domain="d", version=1, purpose=purpose), "big")
    permutation = np.random.Generator(np.random.PCG64(seed)).permutation(2 * m)
    values = {
        "forename": first_forename(normalise_name(forename)),
        "surname": surname_compact(normalise_name(surname)) if surname else None,
        "postcode": None if names_only else normalise_postcode(postcode),
    }
    year = str(dob.year) if dob else ""
    bits = np.zeros(m, dtype=bool)
    for field, k in (("forename", 20), ("surname", 20), ("postcode", 10)):
        value = values[field]
        if not value:
            continue
        padded = f"_{value}_"
        for gram in {padded[i : i + 2] for i in range(len(padded) - 1)}:
            digest = hmac.new(key, f"{field}\x1f{year}\x1f{gram}".encode(), hashlib.sha256)
            raw = digest.digest()
            h1, h2 = int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:16], "big") | 1
            for i in range(k):
                bits[(h1 + i * h2) % m] = True
    hardened = np.concatenate([bits, ~bits])[permutation]
    if names_only:
        hardened = hardened[:m] ^ hardened[m:]
    return np.packbits(hardened).tobytes()


def test_the_vectorised_encoder_matches_the_clk_definition_across_batches() -> None:
    rows = [
        ("Amara", "Okafor", "E1 6AN", date(2008, 3, 14)),
        ("Jean-Luc", "De La Cruz", "sw1a1aa", date(1999, 12, 1)),
        ("amara", "OKAFOR", None, None),
        (None, None, "N1 9GU", date(2008, 3, 14)),
    ]
    frame = pl.DataFrame(
        rows, schema=["forename", "surname", "postcode", "date_of_birth"], orient="row"
    )
    encoder = BloomEncoder(MASTER, "d", 1)
    # two batches through one encoder (its caches carry over) and one batch, fresh
    batched = pl.concat([encoder.encode(frame[:2]), encoder.encode(frame[2:])])
    whole = BloomEncoder(MASTER, "d", 1).encode(frame)
    assert batched["bloom_clk"].to_list() == whole["bloom_clk"].to_list()
    assert [row.tobytes() for row in whole["bloom_clk"].to_numpy()] == [
        _reference_clk(*row) for row in rows
    ]
    assert whole["bloom_name_clk"].is_null().to_list() == [False, False, False, True]
    # the hub's path: names and year as the match keys normalise them
    fields = normalised_fields(frame, ("fore", "sur", "year"))
    hub_clks = BloomEncoder(MASTER, "d", 1).name_clks(fields["fore"], fields["sur"], fields["year"])
    assert hub_clks[:2].to_list() == whole["bloom_name_clk"][:2].to_list()
    assert [row.tobytes() for row in hub_clks[:2].to_numpy()] == [
        _reference_clk(*row, names_only=True) for row in rows[:2]
    ]
    # the third has names but no date of birth: in no block, so the hub keeps no CLK for it
    assert hub_clks.is_null().to_list() == [False, False, True, True]


def test_a_partly_recorded_double_barrelled_surname_links_on_its_keyed_part() -> None:
    full = person("Abigail", "Scott-Thomas", postcode="E1 6AN", local_id="1")
    part = person("Abbie", "Thomas", postcode="N1 9GU", local_id="2")  # moved, nickname
    stranger = person("Abigail", "Thomas", dob=date(2008, 3, 15), local_id="3")
    records = pl.concat(
        [
            upload("p", [full], dataset="p"),
            upload("q", [part], dataset="q"),
            upload("r", [stranger], dataset="r"),
        ]
    )
    labels, joined = name_part_link(records, np.arange(3))
    assert labels[0] == labels[1] != labels[2] and joined == 1
    # two records of one upload are two people: never joined
    same_upload = pl.concat([upload("p", [full, part], dataset="p")])
    labels, joined = name_part_link(same_upload, np.arange(2))
    assert labels[0] != labels[1] and joined == 0


def test_stages_accept_8_byte_fingerprints_in_place_of_the_token_digests() -> None:
    from privacy.linkage.cascade import fingerprints

    named = person("Amara", "Scott-Okafor", local_id="1")
    part = person("Amara", "Okafor", postcode="N1 9GU", local_id="2")
    nameless = person(None, None, sex=None)
    records = pl.concat(
        [
            upload("p", [named], dataset="p"),
            upload("q", [part], dataset="q"),
            upload("ae", [nameless], dataset="ae"),
        ]
    )
    tokens = [
        c for c in records.columns if c.startswith(("anchor_", "name_part_", "nhs", "bloom_block"))
    ]
    stored = records.with_columns(pl.Series(c, fingerprints(records[c])) for c in tokens)
    expected = anchor_cascade(records, bloom_cascade(records, np.arange(3))[0])
    got = anchor_cascade(stored, bloom_cascade(stored, np.arange(3))[0])
    assert expected[0].tolist() == got[0].tolist() and expected[1] == got[1]
    assert len(set(got[0].tolist())) == 1


def test_joins_decided_outside_the_cascade_hold_through_adds_and_end_with_a_remove() -> None:
    linker = Linker(MASTER, "d", 1)
    linker.add(upload("police", [person("Amara", "Okafor", postcode="E1 6AN")]))
    linker.add(upload("ae", [person(None, None, postcode="E1 6AN")], dataset="ae"))
    ids, labels = linker.labels()
    assert ids == ["police:0", "ae:0"] and labels[0] != labels[1]
    joined = linker.join(np.array([labels[0], labels[0]]), "anchor_dob_sex_postcode")
    assert sorted(joined) == ["ae:0", "police:0"]
    got = linker.assignments()
    assert got["person_id"].n_unique() == 1
    assert got["link_key"].to_list() == ["anchor_dob_sex_postcode"] * 2
    # a later add keeps the join (adds never split a cluster) and joining again changes nothing
    linker.add(upload("school", [person("Liam", "Brown", date(1999, 5, 6), "N1 1AA")]))
    assert persons(linker)["ae:0"] == persons(linker)["police:0"]
    assert linker.join(linker.labels()[1], "anchor_dob_sex_postcode") == []
    # a restart restores the join and its link key from what was stored
    restored = Linker(MASTER, "d", 1)
    stored = (
        pl.concat(
            [
                upload("police", [person("Amara", "Okafor", postcode="E1 6AN")]),
                upload("ae", [person(None, None, postcode="E1 6AN")], dataset="ae"),
                upload("school", [person("Liam", "Brown", date(1999, 5, 6), "N1 1AA")]),
            ]
        )
        .join(linker.assignments(), on="record_id")
        .rename({"person_id": "person"})
    )
    restored.restore(stored)
    assert restored.assignments().equals(linker.assignments())
    # a remove re-clusters the person by the cascade alone: the join is gone
    linker.remove(["school:0"])
    assert persons(linker)["ae:0"] == persons(linker)["police:0"]  # not touched
    linker.relink(["police:0"])
    assert persons(linker)["ae:0"] != persons(linker)["police:0"]


def test_a_join_may_not_split_a_cluster() -> None:
    linker = Linker(MASTER, "d", 1)
    linker.add(upload("u1", [person(nhs_number=NHS_A), person(nhs_number=NHS_A, postcode=None)]))
    with pytest.raises(ValueError, match="split"):
        linker.join(np.array([0, 1]), "anchor_dob_sex_postcode")
    with pytest.raises(ValueError, match="one label per live record"):
        linker.join(np.array([0]), "anchor_dob_sex_postcode")


def test_the_stored_anchors_are_the_bloom_encoders_however_the_fields_were_normalised() -> None:
    from privacy.linkage.anchors import ANCHOR_COLUMNS, ANCHOR_FIELDS, AnchorEncoder, _fingerprints

    frame = pl.DataFrame(
        {
            "forename": ["Zoë", None, "Ola", "Ola", None],
            "surname": ["O'Brien-Smith", None, "Adé", "Adé", "Khan"],
            "date_of_birth": [date(2008, 3, 4), date(2009, 11, 12), None, None, date(2007, 5, 5)],
            "postcode": ["e1 6an", "N1  9GU", "SW1A1AA", "SW1A1AA", None],
            "sex": ["female", "male", "female", "female", "not_known"],
            "event_date": [date(2026, 2, 1)] * 5,
            "age_at_attendance": [None, None, 15, 15, None],
        },
    )
    encoder = AnchorEncoder(MASTER, "d", 1)
    standalone = encoder.encode(frame)
    keys = Pseudonymiser(MASTER, "d", 1).match_keys_hex(frame, "agency", fields=ANCHOR_FIELDS)
    assert encoder.encode(frame, normalised=keys.select(ANCHOR_FIELDS)).equals(standalone)
    bloom = BloomEncoder(MASTER, "d", 1).encode(frame)
    for column in ANCHOR_COLUMNS:
        assert (standalone[column].fill_null(0).to_numpy() == _fingerprints(bloom[column])).all()
    assert standalone["bloom_named"].to_list() == [True, False, True, True, True]
    # the birth year comes from the DOB, else from the stated age (two possible years)
    assert standalone["anchor_year_sex_postcode"].is_null().to_list() == [False] * 4 + [True]
    assert standalone["anchor_year_sex_postcode_alt"].is_null().to_list() == [
        True,
        True,
        False,
        False,
        True,
    ]
    assert "5a5a" not in repr(encoder)


def test_a_name_too_long_to_be_a_name_gets_no_clk_and_costs_nothing() -> None:
    from privacy.linkage.bloom import MAX_CLK_CHARS

    long_name = "ab" * 5_000  # a hostile cell: thousands of characters, many bigrams
    frame = pl.DataFrame(
        [("Amara", "Okafor"), (long_name, "Okafor"), ("Amara", "x" * (MAX_CLK_CHARS + 1))],
        schema=["forename", "surname"],
        orient="row",
    ).with_columns(pl.lit(date(2008, 3, 14)).alias("date_of_birth"))
    fields = normalised_fields(frame, ("fore", "sur", "year"))
    clks = BloomEncoder(MASTER, "d", 1).name_clks(fields["fore"], fields["sur"], fields["year"])
    assert clks.is_null().to_list() == [False, True, True]


def test_a_batch_of_implausibly_many_bigrams_gets_no_clks_and_the_next_batch_is_unharmed() -> None:
    import random

    rng = random.Random(7)

    # 3,000 names of random CJK characters: hundreds of thousands of distinct bigrams, where a
    # real batch has a few hundred; encoding them would hold gigabytes of patterns
    def hostile() -> str:
        return "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(30))

    crafted = pl.DataFrame({"fore": [hostile() for _ in range(3_000)], "sur": ["okafor"] * 3_000})
    years = pl.Series(["2008"] * 3_000)
    encoder = BloomEncoder(MASTER, "d", 1)
    clks = encoder.name_clks(crafted["fore"], crafted["sur"], years)
    assert clks.null_count() == 3_000
    normal = pl.DataFrame({"fore": ["amara", "bola"], "sur": ["okafor", "adeyemi"]})
    after = encoder.name_clks(normal["fore"], normal["sur"], years[:2])
    fresh = BloomEncoder(MASTER, "d", 1).name_clks(normal["fore"], normal["sur"], years[:2])
    assert after.null_count() == 0 and after.to_list() == fresh.to_list()
