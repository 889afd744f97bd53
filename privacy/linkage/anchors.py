"""Keyed anchors: linking records that carry no name (A&E extracts) to the person they belong to.

Why: A&E extracts carry NHS number, date of birth, sex, postcode and age at attendance, but no
name, and 40% lack the NHS number; the other agencies (social care aside) carry no NHS number
at all. No match key joins such a record to anyone, so the anchors do: keyed HMACs of the date
of birth (with and without sex, and with day and month swapped), of the postcode, and of birth
year + sex + postcode. :func:`anchor_link` combines a cluster's date-of-birth anchors with its
postcode anchors in memory, so a nameless record meets a person whose DOB and postcode came
from different records, and attaches it only to the *single* named cluster carrying that value.

What is stored: per record, the first 8 bytes of each anchor's HMAC-SHA256 (a 64-bit
fingerprint, as the linker uses for the match keys) and whether the record had a name; never
a value. The key is derived per linkage domain and key version (purpose ``"bloom-anchor"``),
so anchors of different domains or versions are unrelated. No anchor is made of a value with
only a few possible values (sex or birth year alone), whose keyed hash a frequency count would
undo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
import polars_hash  # noqa: F401  (registers the vectorised `chash` expression namespace)

from privacy.keys import derive_key
from privacy.linkage.cascade import STRONG_SPACES, _components, fingerprints
from privacy.matchkeys import normalised_fields

__all__ = [
    "AGE_COLUMNS",
    "ANCHOR_COLUMNS",
    "ANCHOR_FIELDS",
    "ANCHOR_PASSES",
    "ANCHOR_PURPOSE",
    "AnchorEncoder",
    "AnchorPass",
    "anchor_cascade",
    "anchor_inputs",
    "anchor_link",
    "anchor_messages",
]

ANCHOR_PURPOSE = "bloom-anchor"
SEPARATOR = "\x1f"
# Columns of a canonical frame that may carry the age at the event (used for a birth year
# only when the date of birth is missing; A&E extracts state the age at attendance).
AGE_COLUMNS: tuple[str, ...] = ("age_at_attendance", "age_at_offence", "age")
ANCHOR_COLUMNS: tuple[str, ...] = (
    "anchor_dob_sex",
    "anchor_dob_sex_swapped",
    "anchor_dob",
    "anchor_dob_swapped",
    "anchor_postcode",
    "anchor_year_sex_postcode",
    "anchor_year_sex_postcode_alt",
)

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


# ---------------------------------------------------------------------- encoding


def column_or_null(frame: pl.DataFrame, name: str, dtype: type[pl.DataType]) -> pl.Series:
    """``frame[name]`` cast to ``dtype``, or an all-null column when the frame has none."""
    if name in frame.columns:
        return frame.get_column(name).cast(dtype)
    return pl.Series(name, [None] * frame.height, dtype=dtype)


ANCHOR_FIELDS: tuple[str, ...] = ("fore", "sur", "postcode", "dob", "year", "day", "month")
"""The normalised identifier fields the anchors are made of (``privacy.matchkeys``)."""


def anchor_inputs(frame: pl.DataFrame, normalised: pl.DataFrame | None = None) -> pl.DataFrame:
    """What the anchors are made of, per row of a canonical frame (absent columns count as
    null): the :data:`ANCHOR_FIELDS` normalised as the match keys normalise them (``dob`` is
    ``YYYY-MM-DD`` text), ``sex``, ``event`` (Date) and ``age`` (Int64, the stated age at the
    event). ``normalised``: those fields as ``Pseudonymiser.match_key_prefixes(...,
    fields=ANCHOR_FIELDS)`` returned them for this frame (the ingest passes them, so that
    nothing is normalised twice); computed here when not given."""
    if normalised is None:
        normalised = normalised_fields(frame, ANCHOR_FIELDS)
    ages = [column_or_null(frame, c, pl.Int64) for c in AGE_COLUMNS if c in frame.columns]
    age = (
        pl.select(pl.coalesce(ages)).to_series()
        if ages
        else pl.Series("age", [None] * frame.height, dtype=pl.Int64)
    )
    return pl.concat(
        [
            normalised.select(ANCHOR_FIELDS),
            pl.DataFrame(
                {
                    "sex": column_or_null(frame, "sex", pl.String),
                    "event": column_or_null(frame, "event_date", pl.Date),
                    "age": age,
                }
            ),
        ],
        how="horizontal",
    )


def male_female_expr() -> pl.Expr:
    """The sex where it is male or female, else null (over :func:`anchor_inputs`)."""
    return pl.when(pl.col("sex").is_in(["male", "female"])).then(pl.col("sex"))


def anchor_messages(inputs: pl.DataFrame) -> pl.DataFrame:
    """The message of every :data:`ANCHOR_COLUMNS` anchor per row of :func:`anchor_inputs`
    (String; null where an input is missing). Each message starts with its kind's label, so
    different kinds never share a digest; the swapped-DOB anchors share their unswapped
    kind's label, so a swapped date meets the true one."""
    day, month = pl.col("day"), pl.col("month")
    event_year = pl.col("event").dt.year()
    parts = inputs.lazy().select(
        pl.col("dob"),
        male_female_expr().alias("mf"),
        pl.col("postcode"),
        # day and month swapped, where that is a different valid date
        pl.when((day <= 12) & (day != month))
        .then(
            pl.concat_str(
                [
                    pl.col("year"),
                    day.cast(pl.String).str.zfill(2),
                    month.cast(pl.String).str.zfill(2),
                ],
                separator="-",
            )
        )
        .alias("swapped"),
        # birth year: from the DOB, else the two years the age at the event allows
        pl.coalesce(pl.col("year"), (event_year - pl.col("age") - 1).cast(pl.String)).alias(
            "year"
        ),
        pl.when(pl.col("dob").is_null())
        .then(event_year - pl.col("age"))
        .cast(pl.String)
        .alias("year_alt"),
    )

    def message(label: str, *columns: str) -> pl.Expr:
        return pl.concat_str([pl.lit(label), *(pl.col(c) for c in columns)], separator=SEPARATOR)

    return parts.select(
        message("ds", "dob", "mf").alias("anchor_dob_sex"),
        message("ds", "swapped", "mf").alias("anchor_dob_sex_swapped"),
        message("d", "dob").alias("anchor_dob"),
        message("d", "swapped").alias("anchor_dob_swapped"),
        message("pc", "postcode").alias("anchor_postcode"),
        message("ysp", "year", "mf", "postcode").alias("anchor_year_sex_postcode"),
        message("ysp", "year_alt", "mf", "postcode").alias("anchor_year_sex_postcode_alt"),
    ).collect()


def anchor_key(master_secret: bytes, domain: str, key_version: int) -> str:
    """The anchors' HMAC key for a domain and key version, as the 64 hex characters
    polars-hash takes (256 bits of entropy in one SHA-256 block, as ``privacy.matchkeys``)."""
    return derive_key(
        master_secret, domain=domain, version=key_version, purpose=ANCHOR_PURPOSE
    ).hex()


class AnchorEncoder:
    """What the hub stores for the anchor stage, per record of a canonical frame: the 64-bit
    fingerprint of every anchor (``pl.UInt64``, null where an input is missing) and
    ``bloom_named`` (the record carries a forename or a surname)."""

    def __init__(self, master_secret: bytes, domain: str, key_version: int) -> None:
        self.domain = domain
        self.key_version = key_version
        self._key = anchor_key(master_secret, domain, key_version)

    def __repr__(self) -> str:  # never show key material
        return f"AnchorEncoder(domain={self.domain!r}, key_version={self.key_version})"

    def encode(self, frame: pl.DataFrame, normalised: pl.DataFrame | None = None) -> pl.DataFrame:
        """The anchors of each row of a canonical frame (``normalised``: see
        :func:`anchor_inputs`)."""
        inputs = anchor_inputs(frame, normalised)
        messages = anchor_messages(inputs)
        # one HMAC pass over every message of every anchor (most are distinct within a batch,
        # so hashing each once would cost more in the lookup than it saves)
        stacked = pl.concat([messages.get_column(c) for c in ANCHOR_COLUMNS])
        prefix = stacked.to_frame("m").select(
            pl.col("m")
            .chash.hmac_sha256(key=self._key)  # type: ignore[attr-defined]
            .str.slice(0, 16)
            .str.to_integer(base=16, dtype=pl.UInt64)
        )
        # The fingerprint is the digest's first 8 bytes read little-endian; parsing the hex
        # reads them big-endian (three times cheaper than decoding it to bytes), so swap.
        parsed = prefix.to_series()
        swapped = pl.Series(parsed.fill_null(0).to_numpy().byteswap())
        fp = pl.select(
            pl.when(parsed.is_null())
            .then(None)
            # a real digest whose first 8 bytes are zero must not read as "none" (0)
            .when(swapped == 0)
            .then(pl.lit(1, dtype=pl.UInt64))
            .otherwise(swapped)
        ).to_series()
        n = frame.height
        named = inputs.select(pl.col("fore").is_not_null() | pl.col("sur").is_not_null())
        return pl.DataFrame(
            [
                *(fp.slice(i * n, n).alias(c) for i, c in enumerate(ANCHOR_COLUMNS)),
                named.to_series().alias("bloom_named"),
            ]
        )


# ---------------------------------------------------------------------- linking


def _fingerprints(column: pl.Series) -> U64:
    """64-bit fingerprints of a digest column: ``pl.Binary`` HMACs as the encoder gives them,
    or ``pl.UInt64`` fingerprints already (what the hub stores: :class:`AnchorEncoder`);
    0 = null."""
    if column.dtype == pl.UInt64:
        return np.ascontiguousarray(column.fill_null(0).to_numpy().astype(np.uint64))
    return fingerprints(column)


_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def _combine(a: U64, b: U64) -> U64:
    """A 64-bit fingerprint of the ordered pair (a, b) (splitmix64 finaliser); never 0."""
    x = a ^ (b * _MIX[0])
    x = (x ^ (x >> np.uint64(30))) * _MIX[1]
    x = (x ^ (x >> np.uint64(27))) * _MIX[2]
    x = x ^ (x >> np.uint64(31))
    return np.where(x == 0, np.uint64(1), x)


def _record_values(records: pl.DataFrame, lab: I64, columns: tuple[str, ...]) -> tuple[I64, U64]:
    """(label, value) of every non-null fingerprint of ``columns``, one per record and column,
    as numpy arrays (not yet distinct)."""
    labels, values = [], []
    for column in columns:
        if column in records.columns:
            fp = _fingerprints(records[column])
            rows = np.flatnonzero(fp != 0)
            labels.append(lab[rows])
            values.append(fp[rows])
    if not labels:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    return np.concatenate(labels), np.concatenate(values)


def _cluster_values(records: pl.DataFrame, lab: I64, columns: tuple[str, ...]) -> pl.DataFrame:
    """Distinct (label, value) of the non-null fingerprints of ``columns``."""
    labels, values = _record_values(records, lab, columns)
    return pl.DataFrame(
        {"label": labels, "v": values}, schema={"label": pl.Int64, "v": pl.UInt64}
    ).unique()


@dataclass(frozen=True)
class AnchorPass:
    """One pass of :func:`anchor_link`. A cluster's anchor values are the fingerprints of the
    ``first`` columns of all its records (pooled); with ``second``, every combination of one of
    its ``first`` values with one of its ``second`` values, formed in memory from the keyed
    anchors (so a DOB seen on one record meets a postcode seen on another record of the same
    person). ``join_nameless``: nameless clusters whose anchor no named cluster carries are
    joined to each other (repeat attendances). ``nameless_without``: a nameless cluster takes
    part only if none of its records carries this column (e.g. the sex-free pass is only for
    clusters without a stated sex, so it can never join a nameless record to the twin of the
    other sex)."""

    name: str
    first: tuple[str, ...]
    second: tuple[str, ...] = ()
    join_nameless: bool = False
    nameless_without: str | None = None


ANCHOR_PASSES: tuple[AnchorPass, ...] = (
    AnchorPass("dob_sex_postcode", ("anchor_dob_sex",), ("anchor_postcode",), join_nameless=True),
    AnchorPass(
        "swapped_dob_sex_postcode",
        ("anchor_dob_sex", "anchor_dob_sex_swapped"),
        ("anchor_postcode",),
    ),
    AnchorPass(
        "dob_postcode_no_sex",
        ("anchor_dob", "anchor_dob_swapped"),
        ("anchor_postcode",),
        nameless_without="anchor_dob_sex",
    ),
    AnchorPass(
        "year_sex_postcode_no_dob",
        ("anchor_year_sex_postcode", "anchor_year_sex_postcode_alt"),
        nameless_without="anchor_dob",
    ),
)
"""Anchor passes, strictest first. Measured on synth (scale 3.5; docs/linkage.md): a nameless
A&E record shares an NHS number or a postcode with its person's named records in 80.6% of
cases; for the rest only DOB + sex (+ ethnicity) is left, which at city scale picks the wrong
person about one time in three, so no pass links on DOB + sex alone. A DOB + sex +
postcode-district pass was tried and dropped (at scale 1.0: 58 true and 14 false pairs)."""


def anchor_cascade(records: pl.DataFrame, labels: npt.ArrayLike) -> tuple[I64, list[int]]:
    """:func:`anchor_link` over :data:`ANCHOR_PASSES`; returns (labels, attached per pass)."""
    lab = np.asarray(labels, dtype=np.int64).copy()
    counts = []
    for anchor_pass in ANCHOR_PASSES:
        lab, attached = anchor_link(records, lab, anchor_pass=anchor_pass)
        counts.append(attached)
    return lab, counts


def anchor_link(
    records: pl.DataFrame,
    labels: npt.ArrayLike,
    *,
    anchor_pass: AnchorPass = ANCHOR_PASSES[0],
) -> tuple[I64, int]:
    """Attach clusters with no name at all (A&E records carry only NHS number, DOB, sex and
    postcode) to the one named cluster with the same keyed anchor value (see
    :class:`AnchorPass`). An anchor value carried by two or more named clusters (twins, a
    shared household) links nothing. Clusters with different strong identifiers are never
    joined, and neither is a chain that would put two named clusters, or two different strong
    identifiers, together. Returns (labels, clusters attached)."""
    lab = np.asarray(labels, dtype=np.int64).copy()
    if records.height == 0:
        return lab, 0
    n = int(lab.max()) + 1
    named = np.zeros(n, dtype=bool)
    named[lab[records["bloom_named"].fill_null(False).to_numpy()]] = True
    eligible = ~named
    if anchor_pass.nameless_without and anchor_pass.nameless_without in records.columns:
        has = _fingerprints(records[anchor_pass.nameless_without]) != 0
        eligible[lab[has]] = False

    def taking_part(labels_of: I64, values_of: U64) -> pl.DataFrame:
        """Distinct (label, v) pairs of named and eligible clusters (flagged), keeping only
        values that some eligible nameless cluster carries too: no other value can form a
        group below. Filtered in numpy before any frame is built, so that the work follows
        the nameless clusters, not the size of the domain."""
        is_named, is_eligible = named[labels_of], eligible[labels_of]
        wanted = pl.Series(values_of[is_eligible], dtype=pl.UInt64).unique().implode()
        carried = pl.Series(values_of, dtype=pl.UInt64).is_in(wanted).to_numpy()
        keep = (is_named | is_eligible) & carried
        return pl.DataFrame(
            {
                "label": labels_of[keep],
                "v": values_of[keep],
                "named": is_named[keep],
                "eligible": is_eligible[keep],
            },
            schema={"label": pl.Int64, "v": pl.UInt64, "named": pl.Boolean, "eligible": pl.Boolean},
        ).unique()

    values = taking_part(*_record_values(records, lab, anchor_pass.first))
    if anchor_pass.second:
        # a combined value can only meet a nameless cluster's if both of its parts do
        other = taking_part(*_record_values(records, lab, anchor_pass.second))
        crossed = values.join(other.select("label", "v"), on="label", suffix="_b")
        values = taking_part(
            crossed["label"].to_numpy(),
            _combine(crossed["v"].to_numpy(), crossed["v_b"].to_numpy()),
        )
    if values.height == 0:
        return lab, 0
    groups = (
        values.group_by("v")
        .agg(
            pl.col("label").filter(pl.col("named")).alias("named_labels"),
            pl.col("label").filter(pl.col("eligible")).alias("nameless_labels"),
        )
        .filter(
            (pl.col("nameless_labels").list.len() > 0)
            & (pl.col("named_labels").list.len() <= 1)
            & ((pl.col("named_labels").list.len() == 1) | pl.lit(anchor_pass.join_nameless))
            & ((pl.col("named_labels").list.len() + pl.col("nameless_labels").list.len()) > 1)
        )
    )
    if groups.height == 0:
        return lab, 0
    # strong-identifier conflicts inside a group
    members = (
        groups.select("v", pl.concat_list("named_labels", "nameless_labels").alias("label"))
        .explode("label")
        .with_columns(pl.col("label").cast(pl.Int64))
    )
    strong = _strong_identifiers(records, lab, members["label"].unique().to_numpy())
    conflicted = (
        members.join(strong, on="label")
        .group_by("v", "space")
        .agg(pl.col("s").n_unique().alias("k"))
        .filter(pl.col("k") > 1)["v"]
        .unique()
    )
    members = members.filter(~pl.col("v").is_in(conflicted.implode()))
    if members.height == 0:
        return lab, 0
    head = members.group_by("v", maintain_order=True).agg(pl.col("label").first().alias("h"))
    edges = members.join(head, on="v").filter(pl.col("label") != pl.col("h"))
    comp = _components(n, edges["label"].to_numpy(), edges["h"].to_numpy())
    new = comp[lab]
    # a chain reaching two named clusters, or two different strong identifiers, is left alone
    # (only clusters in some group can have been joined: the others keep their own label)
    joined = members["label"].unique().to_numpy()
    per_comp = pl.DataFrame({"comp": comp[joined], "label": joined, "named": named[joined]})
    bad_named = per_comp.group_by("comp").agg(pl.col("named").sum()).filter(pl.col("named") > 1)
    bad_strong = (
        per_comp.join(strong, on="label")
        .group_by("comp", "space")
        .agg(pl.col("s").n_unique().alias("k"))
        .filter(pl.col("k") > 1)
    )
    bad = np.concatenate([bad_named["comp"].to_numpy(), bad_strong["comp"].to_numpy()])
    new = np.where(np.isin(new, bad), lab, new)
    return new, _label_count(lab, n) - _label_count(new, n)


def _label_count(lab: I64, n: int) -> int:
    """How many distinct labels (each in 0..n-1) ``lab`` holds."""
    seen = np.zeros(n, dtype=bool)
    seen[lab] = True
    return int(np.count_nonzero(seen))


def _strong_identifiers(records: pl.DataFrame, lab: I64, labels: I64) -> pl.DataFrame:
    """Distinct (label, strong-identifier fingerprint, space) of the clusters ``labels``."""
    wanted = np.isin(lab, labels)
    parts = []
    for space in STRONG_SPACES:
        if space in records.columns:
            fp = _fingerprints(records[space])
            keep = (fp != 0) & wanted
            parts.append(
                pl.DataFrame(
                    {"label": lab[keep], "s": fp[keep]},
                    schema={"label": pl.Int64, "s": pl.UInt64},
                ).with_columns(pl.lit(space).alias("space"))
            )
    if not parts:
        return pl.DataFrame(schema={"label": pl.Int64, "s": pl.UInt64, "space": pl.String})
    return pl.concat(parts).unique()
