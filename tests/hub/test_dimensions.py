"""``first_masks``: the per-record marks that let a count of persons skip grouping by person.
Checked on hand-made rows and against a brute-force definition on random ones."""

from __future__ import annotations

import itertools
import random

import polars as pl
import pytest

from hub.dimensions import DIMENSIONS, MASKED_RANKS, first_masks, subset_bit

PARTITION = ["person", "dataset", "agreement"]


def rows(*records: dict[str, object]) -> pl.DataFrame:
    base = {"person": "p", "dataset": "d", "agreement": "a", **dict.fromkeys(DIMENSIONS)}
    return pl.DataFrame([{**base, **r} for r in records], schema_overrides={"rank": pl.Int64})


def marked(frame: pl.DataFrame, dims: list[str]) -> list[bool]:
    bit = subset_bit(dims)
    return [m & bit != 0 for m in first_masks(frame, partition=PARTITION, rank="rank")]


def test_a_person_is_marked_once_per_cell_on_its_lowest_ranked_record() -> None:
    frame = rows(
        {"rank": 3, "borough": "E09000001", "month": "2026-01"},
        {"rank": 1, "borough": "E09000001", "month": "2026-02"},
        {"rank": 2, "borough": "E09000001", "month": "2026-01"},
        {"rank": 4, "borough": "E09000002", "month": "2026-01"},
    )
    assert marked(frame, ["borough", "month"]) == [False, True, True, True]
    assert marked(frame, ["borough"]) == [False, True, False, True]
    assert marked(frame, ["month"]) == [False, True, True, False]
    assert marked(frame, []) == [False, True, False, False]


def test_null_is_a_value_and_persons_datasets_and_agreements_are_apart() -> None:
    frame = rows(
        {"rank": 1, "sex": None},
        {"rank": 2, "sex": None},
        {"rank": 1, "sex": None, "person": "q"},
        {"rank": 1, "sex": None, "agreement": "b"},
        {"rank": 1, "sex": None, "dataset": "e"},
    )
    assert marked(frame, ["sex"]) == [True, False, True, True, True]


def test_the_sign_bit_is_the_set_of_all_dimensions() -> None:
    assert subset_bit(DIMENSIONS) == -(1 << 63)
    assert subset_bit([]) == 1
    assert subset_bit(["month", "borough"]) == subset_bit(["borough", "month"]) == 1 << 3
    frame = rows({"rank": 1, "weapon": "knife_or_blade"}, {"rank": 2, "weapon": "knife_or_blade"})
    assert marked(frame, list(DIMENSIONS)) == [True, False]


def test_records_beyond_the_masked_ranks_are_never_marked() -> None:
    frame = rows(*({"rank": r, "month": f"m{r}"} for r in range(1, MASKED_RANKS + 3)))
    got = marked(frame, ["month"])
    assert got == [True] * MASKED_RANKS + [False, False]


@pytest.mark.parametrize("seed", [1, 2])
def test_marks_match_the_definition_on_random_records(seed: int) -> None:
    rng = random.Random(seed)
    values = {d: [None, "x", "y"] for d in DIMENSIONS}
    records = []
    for person in range(25):
        for dataset in ("d", "e"):
            count = rng.randint(0, 8)
            for rank in rng.sample(range(1, 9), count):
                records.append(
                    {
                        "person": f"p{person}",
                        "dataset": dataset,
                        "agreement": rng.choice(["a", "b"]) if person % 2 else "a",
                        "rank": rank,
                        **{d: rng.choice(values[d]) for d in DIMENSIONS},
                    }
                )
    # ranks must be unique within a partition: keep the first of any repeat
    seen: set[tuple[object, ...]] = set()
    unique = []
    for r in records:
        key = (r["person"], r["dataset"], r["agreement"], r["rank"])
        if key not in seen:
            seen.add(key)
            unique.append(r)
    frame = pl.DataFrame(unique)
    masks = first_masks(frame, partition=PARTITION, rank="rank").to_list()
    for size in range(len(DIMENSIONS) + 1):
        for dims in itertools.combinations(DIMENSIONS, size):
            bit = subset_bit(dims)
            for r, mask in zip(unique, masks, strict=True):
                lower = [
                    o
                    for o in unique
                    if all(o[c] == r[c] for c in PARTITION)
                    and o["rank"] < r["rank"]
                    and all(o[d] == r[d] for d in dims)
                ]
                assert (mask & bit != 0) == (not lower), (dims, r)
