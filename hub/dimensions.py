"""Query dimensions, and the per-record flags that let a count of persons skip grouping by
person at query time.

A query's dimensions are public names (``borough``, ``month``, ...). Each record's value of
every dimension is copied into ``record_persons`` by the linkage service, next to the person
and the record's rank within its person, so that a DP query reads one narrow table.

Why the flags: a count of distinct persons per cell, with each person kept to the records of
rank <= k, counts a person in a cell when the person's *lowest-ranked* record in that cell has
rank <= k. Over 10 million rows, finding that record with ``GROUP BY cell, person`` is the whole
cost of the query (a hash aggregate over ~10 million groups). The linkage service instead marks,
for every subset S of the dimensions, whether a record is its person's lowest-ranked record among
the records sharing its values on S (``first_masks``: bit ``subset_bit(S)``). A query grouping and
filtering on the dimensions S then counts the marked records with rank <= k, one plain scan:

* the filter keeps or drops whole groups (every record of a group has the same values on S),
  so the marked record of a kept group is the group's lowest-ranked record after filtering too;
* the person is counted in the cell iff that record's rank is <= k;
* but a filter admitting several values of a dimension that is not grouped by would count a
  person once per value: such queries group by person in SQL.

The marks are computed per person, dataset and agreement (a query reads one agreement's
uploads). They do not hold for queries with linkage conditions, which keep or drop single
records; those group by person in SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import polars as pl
from sqlalchemy import Connection, select

from hub.bulk import insert_rows
from hub.models import DimensionValueRow

DIMENSIONS: tuple[str, ...] = ("borough", "month", "sex", "age_band", "offence_group", "weapon")
"""Every query dimension, in the order that numbers the bits of ``first_mask``."""

COLUMN_FIELDS: dict[str, str] = {
    "borough": "borough_gss_code",
    "sex": "sex",
    "age_band": "age_band",
}
"""Dimensions held in a ``records`` column for every dataset (the adapters map each extract's
own field onto them). ``month`` is computed from ``records.event_date``."""

MONTH = "month"

ATTRIBUTE_FIELDS: dict[str, dict[str, str]] = {
    "offence_group": {"police_violence_offences": "ho_offence_group"},
    "weapon": {
        "police_violence_offences": "weapon_type",
        "ae_istv_assaults": "assault_method",
    },
}
"""Dimensions held in a record's attributes, by dataset: the field differs per extract, and a
dataset without an entry does not offer the dimension."""


def available(dimension: str, dataset: str) -> bool:
    """Whether records of ``dataset`` carry a value for ``dimension``."""
    return (
        dimension in COLUMN_FIELDS
        or dimension == MONTH
        or dataset in ATTRIBUTE_FIELDS.get(dimension, {})
    )


def subset_bit(dimensions: Iterable[str]) -> int:
    """The ``first_mask`` bit of a set of dimensions, as a signed 64-bit integer (the column is
    a BIGINT: the bit of all six dimensions is the sign bit)."""
    index = 0
    for name in set(dimensions):
        index |= 1 << DIMENSIONS.index(name)
    bit = 1 << index
    return bit - (1 << 64) if bit >= 1 << 63 else bit


MASKED_RANKS = 16
"""Marks are computed for the records of rank 1..MASKED_RANKS of each person (a query's bound
never exceeds it); records of higher rank are never counted and their mask is 0."""


def _subset_closure() -> list[int]:
    """For each set e of dimensions (a 6-bit number), the bits of every subset S of e: a record
    equal to an earlier one on the dimensions e is not first for any such S."""
    closure = []
    for e in range(1 << len(DIMENSIONS)):
        bits = 0
        for subset in range(1 << len(DIMENSIONS)):
            if subset & e == subset:
                bits |= 1 << subset
        closure.append(bits)
    return closure


_CLOSURE = np.array(_subset_closure(), dtype=np.uint64)


def first_masks(frame: pl.DataFrame, *, partition: list[str], rank: str) -> pl.Series:
    """``first_mask`` of each row of ``frame`` (Int64, in the frame's order).

    ``frame`` holds, for every record of the persons concerned, the ``partition`` columns (person,
    dataset, agreement: all of a person's records there must be present), ``rank`` (unique within
    a partition) and one column per name in ``DIMENSIONS`` (null where the record has no value;
    null is a value like any other here). For a row of rank <= MASKED_RANKS, bit
    ``subset_bit(S)`` is set iff no lower-ranked row of its partition has the same values on S.
    """
    ordered = (
        frame.select(*partition, rank, *DIMENSIONS).with_row_index("_at").sort([*partition, rank])
    )
    position = (
        ordered.select(pl.int_range(pl.len()).over(partition).alias("p")).get_column("p").to_numpy()
    )
    codes = [
        ordered.get_column(d)
        .cast(pl.String)
        .cast(pl.Categorical)
        .to_physical()
        .fill_null(np.iinfo(np.uint32).max)
        .to_numpy()
        for d in DIMENSIONS
    ]
    # Compare each row with the 1..MASKED_RANKS-1 rows before it in its partition: the
    # dimensions it shares with one of them rule out every subset of those dimensions.
    covered = np.zeros(ordered.height, dtype=np.uint64)
    for distance in range(1, MASKED_RANKS):
        rows = np.flatnonzero((position >= distance) & (position < MASKED_RANKS))
        if rows.size == 0:
            break
        shared = np.zeros(rows.size, dtype=np.int64)
        for bit, code in enumerate(codes):
            shared |= (code[rows] == code[rows - distance]).astype(np.int64) << bit
        covered[rows] |= _CLOSURE[shared]
    mask = np.where(position < MASKED_RANKS, ~covered, np.uint64(0))
    at = ordered.get_column("_at").to_numpy()
    result = np.empty_like(mask)
    result[at] = mask
    return pl.Series("first_mask", result.view(np.int64))


# --- codes: record_persons stores each dimension's value as a small integer ---------------------

MAX_CODE = 32_767  # SMALLINT
Codes = dict[str, dict[str, int]]
"""dimension -> value -> code"""


class TooManyValues(ValueError):
    """A dimension has more distinct values than a SMALLINT code can hold."""


def load_codes(connection: Connection) -> Codes:
    codes: Codes = {name: {} for name in DIMENSIONS}
    for dimension, value, code in connection.execute(
        select(DimensionValueRow.dimension, DimensionValueRow.value, DimensionValueRow.code)
    ):
        codes.setdefault(dimension, {})[value] = int(code)
    return codes


def encode(connection: Connection, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every ``DIMENSIONS`` column (text) replaced by its code (Int16), assigning
    and storing codes for values seen for the first time (in the caller's transaction; one
    linkage service writes per database)."""
    codes = load_codes(connection)
    new_rows: list[tuple[str, str, int]] = []
    for name in DIMENSIONS:
        known = codes[name]
        seen = frame.get_column(name).cast(pl.String).drop_nulls().unique().sort().to_list()
        for value in seen:
            if value not in known:
                code = max(known.values(), default=0) + 1
                if code > MAX_CODE:
                    raise TooManyValues(f"dimension {name} has more than {MAX_CODE} values")
                known[value] = code
                new_rows.append((name, value, code))
    if new_rows:
        insert_rows(
            connection,
            DimensionValueRow.__table__,  # type: ignore[arg-type]
            ["dimension", "value", "code"],
            new_rows,
        )
    return frame.with_columns(
        pl.col(name)
        .cast(pl.String)
        .replace_strict(codes[name], default=None, return_dtype=pl.Int16)
        .alias(name)
        for name in DIMENSIONS
    )


def codes_of(
    codes: Mapping[str, Mapping[str, int]], dimension: str, values: Sequence[str]
) -> list[int]:
    """The codes of ``values`` (a value never stored has no code: no record has it)."""
    known = codes.get(dimension, {})
    return [known[v] for v in values if v in known]


def decode(
    codes: Mapping[str, Mapping[str, int]], frame: pl.DataFrame, names: Sequence[str]
) -> pl.DataFrame:
    """``frame`` with the code columns ``names`` turned back into their values (text)."""
    return frame.with_columns(
        pl.col(name)
        .replace_strict(
            {code: value for value, code in codes.get(name, {}).items()},
            default=None,
            return_dtype=pl.String,
        )
        .alias(name)
        for name in names
    )
