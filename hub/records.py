"""What the hub keeps of a row: the agreement's dataset terms applied to a canonical frame.

Direct identifiers are never kept (they have already been turned into match keys). Each
quasi-identifier is generalised exactly as the agreement states (date of birth to an age band
at the event, postcode to its district, dates to a month or year) or dropped. Attributes are
kept. Anything the agreement does not list never got this far: the adapter refused the column.

A batch is kept twice over, for two kinds of reader: the ``records`` frame, one row per record
with the fields queries and linkage read row by row (event date, borough, sex, age band, and
as JSON only the attributes a query can name: ``queried_attributes``); and the ``attributes``
frame, every kept attribute as a typed column, which the store writes as one compressed
columnar blob per batch (``record_attribute_batches``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

import privacy.generalise as generalise
from adapters.base import Adapter
from agreements import DatasetTerms, FieldTerms
from hub.dimensions import ATTRIBUTE_FIELDS
from privacy.linkage.bloom import clk_column

RECORD_COLUMNS: tuple[str, ...] = (
    "row",
    "dataset",
    "event_date",
    "borough_gss_code",
    "sex",
    "age_band",
    "attributes",
)

# How a quasi-identifier that is also a linkage input (date of birth, postcode) may be kept:
# never raw. Registration refuses other rules; build_records enforces them again.
SAFE_IDENTIFIER_RULES = frozenset({"age_band_at_event", "postcode_district", "month", "year"})

_NULL_TEXT = pl.lit(None, dtype=pl.String)


def _rule(term: FieldTerms) -> str:
    if term.classification == "direct_identifier":
        return "drop"
    if term.classification == "attribute":
        return "keep"
    return term.generalise or "drop"


_NUMERIC_TYPES = frozenset({"integer", "number"})


def queried_attributes(adapter: Adapter) -> frozenset[str]:
    """The attributes of ``adapter``'s dataset that a query can name, kept in each record row:
    those holding a query dimension (``hub.dimensions.ATTRIBUTE_FIELDS``) and the numeric ones
    (an agreement may permit sums, means and quantiles of any of them)."""
    dimensions = {
        fields[adapter.dataset] for fields in ATTRIBUTE_FIELDS.values() if adapter.dataset in fields
    }
    numeric = {spec.name for spec in adapter.schema.fields if spec.type in _NUMERIC_TYPES}
    return frozenset(dimensions | numeric)


@dataclass(frozen=True)
class KeptBatch:
    """What is kept of one batch: ``records`` (``RECORD_COLUMNS``, a row per record) and
    ``attributes`` (``row`` and every kept attribute, typed)."""

    records: pl.DataFrame
    attributes: pl.DataFrame


def build_records(frame: pl.DataFrame, terms: DatasetTerms, adapter: Adapter) -> KeptBatch:
    """What is kept of a canonical batch (see the module doc); no identifier survives."""
    rules = {term.name: _rule(term) for term in terms.fields}
    canonical_of = {source: canonical for canonical, source in adapter.identifier_sources.items()}
    promoted = {adapter.event_date_source, adapter.borough_source, adapter.sex_source}

    attributes: list[pl.Expr] = []
    age_band = _NULL_TEXT
    for name, rule in rules.items():
        if rule == "drop" or name in promoted:
            continue
        if name in canonical_of:
            column = canonical_of[name]
            if rule == "age_band_at_event":
                age_band = generalise.age_band_expr(
                    generalise.age_at(pl.col(column), pl.col("event_date"))
                )
            elif rule in SAFE_IDENTIFIER_RULES:
                attributes.append(_generalised(pl.col(column), rule).alias(name))
            continue
        if name in frame.columns:
            attributes.append(_generalised(pl.col(name), rule).alias(name))

    for age_field in adapter.age_fields:
        if rules.get(age_field, "drop") != "drop" and age_field in frame.columns:
            # Layouts that state the age at the event fill in where the date of birth is missing.
            age_band = pl.coalesce(age_band, generalise.age_band_expr(pl.col(age_field)))

    event_date = pl.col("event_date")
    if rules.get(adapter.event_date_source) == "month":
        event_date = event_date.dt.truncate("1mo")
    # lazy, not eager: only a lazy query shares subexpressions (the age at the event, feeding
    # every band's test; the compacted postcode), which makes these selects several times faster
    kept = frame.lazy().select(pl.col("row").cast(pl.Int64), *attributes).collect()
    queried_names = queried_attributes(adapter)
    queried = [pl.col(name) for name in kept.columns[1:] if name in queried_names]
    records = (
        frame.lazy()
        .select(
            pl.col("row").cast(pl.Int64),
            pl.lit(adapter.dataset).alias("dataset"),
            event_date.alias("event_date"),
            _kept_if(rules, adapter.borough_source, "borough_gss_code"),
            _kept_if(rules, adapter.sex_source, "sex"),
            age_band.alias("age_band"),
            (
                kept.select(pl.struct(queried).struct.json_encode()).to_series()
                if queried
                else pl.lit("{}")
            ).alias("attributes"),
        )
        .collect()
    )
    return KeptBatch(records=records, attributes=kept)


BlobCompression = Literal["zstd", "lz4"]


def batch_blob(columns: pl.DataFrame, compression: BlobCompression = "zstd") -> bytes:
    """A batch's columns as stored in ``record_attribute_batches`` and
    ``record_anchor_batches``: a Parquet file.

    Parquet rather than Arrow IPC: its dictionary and run-length encodings make a police
    batch a third of the size (13 bytes a row against 35), and polars writes it in under half
    the CPU time and reads it in half. zstd suits attributes; keyed digests are random bits no
    compressor shrinks, and lz4 gives up on them sooner (police anchors: 0.16 µs a row with
    lz4, 0.19 with zstd, both 30 bytes).
    """
    buffer = io.BytesIO()
    columns.write_parquet(buffer, compression=compression, statistics=False)
    return buffer.getvalue()


def clk_blob(rows: npt.NDArray[np.uint64], present: npt.NDArray[np.bool_]) -> bytes:
    """A batch's hardened name CLKs as stored in ``record_anchor_batches.clks``: a bitmap of
    the records that have one (``numpy.packbits``, first record in the high bit), then every
    record's row of 64-bit words, little-endian (zeros where it has none). Raw, not Parquet:
    the CLKs are random bits no encoding shrinks, and a Parquet writer buffering them cost an
    ingest ~17 MB of peak memory."""
    return np.packbits(present).tobytes() + rows.astype("<u8", copy=False).tobytes()


def clks_from_blob(body: bytes, records: int, words: int) -> pl.Series:
    """The ``bloom_name_clk`` column :func:`clk_blob` stored for ``records`` records."""
    mask_bytes = (records + 7) // 8
    if len(body) != mask_bytes + records * words * 8:
        raise ValueError(
            f"a stored CLK batch of {len(body)} bytes does not hold {records} records of "
            f"{words} words"
        )
    present = np.unpackbits(np.frombuffer(body, np.uint8, mask_bytes), count=records)
    rows = np.frombuffer(body, "<u8", offset=mask_bytes).reshape(records, words)
    return clk_column("bloom_name_clk", rows.astype(np.uint64), present.astype(bool))


_PARQUET_MAGIC = b"PAR1"


def frame_from_blob(body: bytes) -> pl.DataFrame:
    """The frame :func:`batch_blob` stored; batches stored before it wrote Parquet are Arrow
    IPC files, read as such."""
    if body.startswith(_PARQUET_MAGIC):
        return pl.read_parquet(io.BytesIO(body))
    return pl.read_ipc(io.BytesIO(body), memory_map=False)


def _kept_if(rules: dict[str, str], source: str | None, canonical: str) -> pl.Expr:
    if source is not None and rules.get(source, "drop") != "drop":
        return pl.col(canonical).cast(pl.String).alias(canonical)
    return _NULL_TEXT.alias(canonical)


def _generalised(column: pl.Expr, rule: str) -> pl.Expr:
    if rule == "keep":
        return column
    if rule == "postcode_district":
        return generalise.postcode_district_expr(column)
    if rule == "month":
        return column.dt.strftime("%Y-%m")
    if rule == "year":
        return column.dt.strftime("%Y")
    if rule == "date":
        return column.dt.date()
    raise ValueError(f"unknown generalisation rule {rule!r}")
