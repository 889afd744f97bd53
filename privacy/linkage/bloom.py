"""Privacy-preserving fuzzy linkage: keyed, hardened Bloom-filter encodings (CLKs) and keyed
anchors for records without names.

Why: the match keys need exact agreement of normalised fields, so "Jonathon"/"Johnathan" or a
surname typo with a moved postcode stay unlinked. A cryptographic long-term key (Schnell et al.)
encodes the bigrams of forename, surname and postcode into one bit array; similar names give
similar arrays, scored with the Dice coefficient, and the hub never holds a name.

Encoding (all keys HKDF-derived per domain and key version, so encodings of different domains
or versions are unrelated):
- bigrams of the normalised value padded with ``_`` ("ann" -> _a an nn n_), one field label
  per field so the same bigram in forename and surname sets different bits;
- bit positions by double hashing: ``HMAC-SHA256(bloom key, field | year of birth | bigram)``
  gives h1, h2 (its first two big-endian 64-bit words, h2 odd) and the k positions
  ``(h1 + i*h2) mod m``. The year of birth salts the positions, so the same name born in
  different years sets different bits (frequency attacks must work per birth cohort);
- hardening: *balancing* (the filter is concatenated with its complement, so every encoding
  has exactly ``m`` ones and the Hamming weight reveals nothing about name length), then a
  keyed permutation of the ``2m`` positions; the name-only CLK (``bloom_name_clk``, what the
  hub stores) is then XOR-folded to ``m`` bits, so no stored bit is one filter position. Only
  hardened forms leave the encoder.
- block key: ``HMAC(block key, date of birth | sex)``; pairs are only compared within a block
  (the hub's pass blocks on the ``anchor_dob_sex`` anchor instead, which it stores anyway).
- anchors (``anchor_*``): keyed HMACs of date of birth (with and without sex, and with day and
  month swapped), of the postcode, and of birth year + sex + postcode, under their own key.
  The linker combines a cluster's date-of-birth anchors with its postcode anchors in memory
  (:func:`anchor_link`), so a nameless record meets a person whose DOB and postcode came from
  different records. No anchor is stored for a value with only a few possible values (sex or
  year of birth alone), whose keyed hash a frequency count would undo.
- name parts (``name_part_*``): keyed nickname-resolved forename + DOB + sex + one part of a
  multi-part surname, for surnames recorded in part (:func:`name_part_link`).

The encoder keeps a bounded cache of keyed bit patterns (not of values) across calls; calls
from several threads take turns (a lock), so the hub keeps one encoder per domain.

Speed: the encoder is vectorised. HMACs run in Rust (polars-hash), once per *distinct*
(field, year, bigram) and per distinct anchor message; bigrams come from polars string
slicing; bit rows are built once per distinct (value, year) and gathered per record. Balancing
and the keyed permutation are folded into the bit positions: a filter bit ``j`` is written to
its two hardened positions ``pinv[j]`` and ``pinv[m + j]`` and the rows are XORed with the
constant mask of the complement half, which equals concatenating the complement and
permuting (the map is a bit permutation, so it commutes with OR-ing the fields together).

Matching (:func:`bloom_link`) compares records of *different* clusters in one block, takes each
cluster pair's best score, and accepts pairs at or above the threshold greedily by descending
score, one-to-one: a cluster takes part in at most one Bloom link per run
(:func:`bloom_until_stable` runs again until nothing links), and a link is refused when the two
clusters carry different NHS numbers/UPNs/PNC ids, different ids of one agency, or both already
hold records of one upload (inside one extract the agency's own id keeps one person together,
so two clusters there are two people -- twins share DOB, sex, surname and postcode).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
import polars_hash  # noqa: F401  (registers the vectorised `chash` expression namespace)

from privacy.keys import derive_key
from privacy.linkage.anchors import (
    AGE_COLUMNS,
    ANCHOR_COLUMNS,
    ANCHOR_PASSES,
    ANCHOR_PURPOSE,
    SEPARATOR,
    AnchorPass,
    _cluster_values,
    _fingerprints,
    anchor_cascade,
    anchor_inputs,
    anchor_key,
    anchor_link,
    anchor_messages,
    column_or_null,
    male_female_expr,
)
from privacy.linkage.cascade import STRONG_SPACES
from privacy.normalise import (
    canonical_forename_expr,
    first_forename_expr,
    name_expr,
    surname_compact_expr,
)

__all__ = [
    "AGE_COLUMNS",
    "ANCHOR_COLUMNS",
    "ANCHOR_PASSES",
    "ANCHOR_PURPOSE",
    "BLOCK_PURPOSE",
    "BLOOM_PASSES",
    "BLOOM_PURPOSE",
    "NAME_PART_COLUMNS",
    "AnchorPass",
    "BloomEncoder",
    "BloomLinks",
    "BloomPass",
    "anchor_cascade",
    "anchor_link",
    "bloom_cascade",
    "bloom_link",
    "bloom_until_stable",
    "clk_column",
    "dice",
    "name_part_link",
]

BLOOM_PURPOSE = "bloom"
BLOCK_PURPOSE = "bloom-block"
PERMUTATION_PURPOSE = "bloom-permutation"
_FIELDS: tuple[tuple[str, int], ...] = (("forename", 20), ("surname", 20), ("postcode", 10))
# Keyed nickname-resolved forename + DOB + sex + one part of the surname, one column per part
# (up to NAME_PARTS): "Abbie Scott-Thomas" meets "Abigail Thomas" of the same DOB and sex.
NAME_PARTS = 3
NAME_PART_COLUMNS: tuple[str, ...] = tuple(f"name_part_{i + 1}" for i in range(NAME_PARTS))

CLK_COLUMNS: tuple[str, ...] = ("bloom_clk", "bloom_name_clk")


MAX_CLK_CHARS = 64
"""Longest normalised name (or postcode) a CLK encodes. Real names are far shorter (a
four-part surname is ~35 letters); each further character can add a bigram, and the encoder's
work grows with the distinct bigrams of a value: a hostile file of 2,000-letter names cost
1.7 ms a row. Longer values get no CLK; such records link through their match keys only."""


def clk_column(name: str, rows: U64, present: npt.NDArray[np.bool_]) -> pl.Series:
    """CLK rows as an ``Array(UInt64, words)`` column, null where ``present`` is false."""
    return (
        pl.select(pl.when(pl.Series(present, dtype=pl.Boolean)).then(pl.Series(name, rows)))
        .to_series()
        .alias(name)
    )


# Bounds on the encoder's work and memory whatever a file holds. A police batch of 7,168 rows
# has ~370 distinct bigrams and ~6,500 distinct (year, bigram) messages per name field, and a
# million rows ~14,000 messages; names in several scripts stay well below these limits.
_MAX_BATCH_BIGRAMS = 2_048
"""Distinct bigrams of one field in one batch beyond which it gets no CLKs."""
_MAX_BATCH_MESSAGES = 65_536
"""(year, bigram) messages of one field's distinct (value, year) pairs in one batch beyond
which it gets no CLKs (at most one 256-byte pattern each: 16 MB; a police batch has ~35,000),
or 8 a record for a larger frame encoded at once."""
_MAX_CACHED_BIGRAMS = 4_096
_MAX_CACHED_PATTERNS = 65_536
"""Cache sizes per field (16 MB of patterns) past which the encoder starts its cache again."""

_ASSEMBLY_ROWS = 2_048
"""Records whose CLKs are assembled at once (0.5 MB of unfolded rows, not a whole batch's)."""

_PATTERN_CHUNK = 512
"""New patterns are made this many at a time (1 MB of scratch bits at 1,024 filter bits)."""

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


def _bigrams(value: str) -> list[str]:
    """The padded bigram set of one value (the definition the vectorised encoder follows)."""
    padded = f"_{value}_"
    return sorted({padded[i : i + 2] for i in range(len(padded) - 1)})


def _distinct_map(values: pl.Series, fn: Callable[[pl.Expr], pl.Expr]) -> pl.Series:
    """``fn`` applied to each distinct value once (normalisation is the costly part)."""
    raw = values.cast(pl.String).alias("raw")
    table = raw.drop_nulls().unique().to_frame().with_columns(fn(pl.col("raw")).alias("out"))
    return raw.to_frame().join(table, on="raw", how="left", maintain_order="left")["out"]


class _PatternStore:
    """The hardened bit patterns of one encoding's messages ``field | year | bigram`` seen so
    far, and where each sits."""

    def __init__(self, words: int) -> None:
        # (year id, bigram id) -> row of ``rows`` (-1: not computed yet); grows as needed
        self.table: npt.NDArray[np.int32] = np.full((128, 1024), -1, dtype=np.int32)
        # the first ``count`` rows are patterns; capacity doubles, so that a trickle of new
        # patterns batch after batch does not copy the whole store each time
        self.rows: U64 = np.zeros((1_024, words), dtype=np.uint64)
        self.count = 0

    def append(self, patterns: U64) -> int:
        """Add patterns; returns the row of the first."""
        first, needed = self.count, self.count + patterns.shape[0]
        if needed > self.rows.shape[0]:
            grown = np.zeros((max(needed, 2 * self.rows.shape[0]), self.rows.shape[1]), np.uint64)
            grown[:first] = self.rows[:first]
            self.rows = grown
        self.rows[first:needed] = patterns
        self.count = needed
        return first

    def grow(self, years: int, grams: int) -> None:
        shape = self.table.shape
        if years > shape[0] or grams > shape[1]:
            grown = np.full(
                (max(years, 2 * shape[0]), max(grams, 2 * shape[1])), -1, dtype=np.int32
            )
            grown[: shape[0], : shape[1]] = self.table
            self.table = grown


class _Workspace:
    """Scratch arrays kept from batch to batch: an ingest encodes hundreds of batches, and
    need not allocate and free megabytes of temporaries for each."""

    def __init__(self) -> None:
        self._arrays: dict[str, U64] = {}

    def rows(self, name: str, count: int, words: int) -> U64:
        """``count`` rows of ``words`` 64-bit words, contents undefined."""
        array = self._arrays.get(name)
        if array is None or array.shape[0] < count or array.shape[1] != words:
            # a little headroom, so that a slightly larger batch does not reallocate
            array = np.empty((count + count // 4 + 64, words), dtype=np.uint64)
            self._arrays[name] = array
        return array[:count]


@dataclass
class _FieldStore:
    """Per field: bigram ids, and per encoding the patterns made so far (only for the
    encodings asked for: the hub asks only for the name CLK)."""

    gram_index: dict[str, int] = dataclasses.field(default_factory=dict)
    gram_text: list[str] = dataclasses.field(default_factory=list)
    patterns: dict[str, _PatternStore] = dataclasses.field(default_factory=dict)


class BloomEncoder:
    """Hardened CLKs, keyed block keys and keyed anchors for one linkage domain and key
    version."""

    FOLDED_WORDS = 16
    """64-bit words of a folded name CLK at the default 1,024 filter bits."""

    def __init__(
        self, master_secret: bytes, domain: str, key_version: int, *, bits: int = 1024
    ) -> None:
        if bits % 64:
            raise ValueError("bits must be a multiple of 64")
        self.domain = domain
        self.key_version = key_version
        self.bits = bits

        def key(purpose: str) -> bytes:
            return derive_key(master_secret, domain=domain, version=key_version, purpose=purpose)

        # polars-hash takes the HMAC key as text: the derived key's 64 hex characters (256 bits
        # of entropy in one SHA-256 block), as privacy.matchkeys does.
        self._bloom_key = key(BLOOM_PURPOSE).hex()
        self._block_key = key(BLOCK_PURPOSE).hex()
        self._anchor_key = anchor_key(master_secret, domain, key_version)
        # the name-only filter gets its own permutation: comparing it with the full filter
        # must not reveal which positions hold postcode bigrams
        self._targets: dict[str, tuple[I64, U64]] = {}
        for name, purpose in (
            ("bloom_clk", PERMUTATION_PURPOSE),
            ("bloom_name_clk", PERMUTATION_PURPOSE + "-names"),
        ):
            seed = int.from_bytes(key(purpose), "big")
            permutation = np.random.Generator(np.random.PCG64(seed)).permutation(2 * bits)
            # hardened[t] = concat(filter, ~filter)[permutation[t]]: filter bit j lands at
            # inverse[j] and its complement at inverse[bits + j]
            inverse = np.argsort(permutation).astype(np.int64)
            flip = np.packbits(permutation >= bits).view(np.uint64).copy()
            self._targets[name] = (inverse, flip)
        # caches of keyed bit patterns, kept across calls (an ingest encodes batch after
        # batch): bounded by the distinct (year, bigram) pairs, not by the records
        self._store: dict[str, _FieldStore] = {}
        self._year_index: dict[str, int] = {}
        self._year_text: list[str] = []
        # the hub keeps one encoder per domain for every upload: concurrent uploads take turns
        # with its caches and scratch arrays
        self._lock = threading.Lock()
        self._work = _Workspace()

    def __repr__(self) -> str:  # never show key material
        return f"BloomEncoder(domain={self.domain!r}, key_version={self.key_version})"

    # ------------------------------------------------------------------ CLKs

    def _message_rows(
        self, field: str, k: int, year_ids: I64, gram_ids: I64, output: str
    ) -> tuple[I64, U64]:
        """Rows (and the pattern matrix they index) of the hardened bit patterns, in the
        encoding ``output``, of messages ``field | year | bigram`` (by year id and bigram id).
        Patterns not seen before are computed now: one HMAC each, then the k double-hashing
        positions, each written to its two balanced, permuted positions."""
        field_store = self._store[field]
        store = field_store.patterns.setdefault(output, _PatternStore(2 * self.bits // 64))
        if year_ids.size:
            store.grow(int(year_ids.max()) + 1, int(gram_ids.max()) + 1)
        rows = store.table[year_ids, gram_ids]
        absent = rows < 0
        if absent.any():
            width = store.table.shape[1]
            missing = np.unique(year_ids[absent] * width + gram_ids[absent])
            # a chunk at a time: a first batch brings thousands of new messages, and their
            # scratch arrays all at once would be tens of MB on a heap that keeps its high-water
            # mark
            for lo in range(0, missing.size, _PATTERN_CHUNK):
                chunk = missing[lo : lo + _PATTERN_CHUNK]
                new_years, new_grams = chunk // width, chunk % width
                patterns = self._new_patterns(
                    field,
                    k,
                    output,
                    np.array(self._year_text, dtype=object)[new_years],
                    np.array(field_store.gram_text, dtype=object)[new_grams],
                )
                first = store.append(patterns)
                store.table[new_years, new_grams] = np.arange(
                    first, first + chunk.size, dtype=np.int32
                )
            rows = store.table[year_ids, gram_ids]
        return rows.astype(np.int64), store.rows

    def _new_patterns(
        self,
        field: str,
        k: int,
        output: str,
        years: npt.NDArray[np.object_],
        grams: npt.NDArray[np.object_],
    ) -> U64:
        """The hardened bit patterns (one packed row each) of messages ``field | year |
        bigram``: one HMAC each, the k double-hashing filter positions, and each filter bit
        set at its two balanced, permuted positions ``pinv[j]`` and ``pinv[m + j]``."""
        digest = (
            pl.concat_str(
                [
                    pl.lit(field),
                    pl.Series(years, dtype=pl.String),
                    pl.Series(grams, dtype=pl.String),
                ],
                separator=SEPARATOR,
            )
            .chash.hmac_sha256(key=self._bloom_key)  # type: ignore[attr-defined]
            .str.decode("hex")
        )
        hashed = pl.select(
            digest.bin.slice(0, 8).bin.reinterpret(dtype=pl.UInt64, endianness="big"),
            digest.bin.slice(8, 8).bin.reinterpret(dtype=pl.UInt64, endianness="big").alias("h2"),
        )
        m = np.uint64(self.bits)
        h1 = hashed.to_series(0).to_numpy() % m
        h2 = (hashed.to_series(1).to_numpy() | np.uint64(1)) % m
        # (h1 + i*h2) mod m, exact: both terms are reduced mod m first
        positions = (
            (h1[:, None] + np.arange(k, dtype=np.uint64)[None, :] * h2[:, None]) % m
        ).astype(np.int64)
        target = self._targets[output][0]
        hardened = target[np.concatenate([positions, positions + self.bits], axis=1)]
        count = hardened.shape[0]
        base = (np.arange(count, dtype=np.int64) * 2 * self.bits)[:, None]
        bits = np.zeros(count * 2 * self.bits, dtype=bool)
        bits[(base + hardened).ravel()] = True
        return np.packbits(bits).view(np.uint64).reshape(count, -1)

    def _year_ids(self, years: pl.Series) -> I64:
        """Stable small ids of the years of birth (text; "" for none), numbered on first sight:
        a handful of distinct values, so numpy rather than a join."""
        codes = years.cast(pl.Int64, strict=False).fill_null(-1).to_numpy()
        distinct, inverse = np.unique(codes, return_inverse=True)
        ids = []
        for code in distinct.tolist():
            text = str(code) if code >= 0 else ""
            if text not in self._year_index:
                self._year_index[text] = len(self._year_text)
                self._year_text.append(text)
            ids.append(self._year_index[text])
        return np.asarray(ids, dtype=np.int64)[inverse]

    def _ids(self, values: pl.Series, index: dict[str, int], text: list[str]) -> I64:
        """Stable small ids of string values (new values are numbered on first sight)."""
        for value in values.unique().to_list():
            if value not in index:
                index[value] = len(text)
                text.append(value)
        table = pl.DataFrame(
            {"x": list(index), "i": list(index.values())},
            schema={"x": pl.String, "i": pl.Int64},
        )
        joined = values.alias("x").to_frame().join(table, on="x", how="left", maintain_order="left")
        return joined["i"].to_numpy()

    def _clks(
        self, norm: pl.DataFrame, years: pl.Series, wanted: tuple[str, ...] = CLK_COLUMNS
    ) -> dict[str, pl.Series]:
        """The CLK columns ``wanted`` (``Array(UInt64, words)``, null where absent)."""
        return {
            name: clk_column(name, rows, present)
            for name, (rows, present) in self._clk_rows(norm, years, wanted).items()
        }

    def _clk_rows(
        self, norm: pl.DataFrame, years: pl.Series, wanted: tuple[str, ...]
    ) -> dict[str, tuple[U64, npt.NDArray[np.bool_]]]:
        """Per encoding wanted: its hardened rows (one per record, zero where absent) and
        whether each record has one. A value longer than :data:`MAX_CLK_CHARS` counts as
        absent."""
        n = norm.height
        words = 2 * self.bits // 64
        # per encoding, per field: the distinct (value, year) bit rows and each record's row
        parts: dict[str, list[tuple[U64, I64]]] = {name: [] for name in wanted}
        year_id = self._year_ids(years)
        # per field: which records have a value the CLKs encode
        has = {field: np.zeros(n, dtype=bool) for field, _ in _FIELDS}
        for field, k in _FIELDS:
            outputs = ("bloom_clk",) if field == "postcode" else CLK_COLUMNS
            if not set(outputs) & set(wanted) or field not in norm.columns:
                continue
            store = self._store.setdefault(field, _FieldStore())
            values = norm[field]
            # checked on the distinct values only: a length test on every row cost 0.3 us
            distinct = (
                values.drop_nulls()
                .unique()
                .alias("v")
                .to_frame()
                .filter(pl.col("v").str.len_chars() <= MAX_CLK_CHARS)
                .with_row_index("d")
            )
            if distinct.height == 0:
                continue
            value_id = (
                values.alias("v")
                .to_frame()
                .join(distinct, on="v", how="left", maintain_order="left")["d"]
                .cast(pl.Int64)
                .fill_null(-1)
                .to_numpy()
            )
            grams = (
                distinct.lazy()
                .select("d", pl.concat_str([pl.lit("_"), "v", pl.lit("_")]).alias("p"))
                .with_columns(pl.int_ranges(0, pl.col("p").str.len_chars() - 1).alias("i"))
                .explode("i")
                .select("d", pl.col("p").str.slice(pl.col("i"), 2).alias("g"))
                .unique()
                .sort("d")
                .collect()
            )
            new_grams = grams["g"].unique()
            if new_grams.len() > _MAX_BATCH_BIGRAMS:
                continue  # a crafted or corrupt batch: no CLKs from this field (see the limit)
            if len(store.gram_index) + new_grams.len() > _MAX_CACHED_BIGRAMS or any(
                patterns.count > _MAX_CACHED_PATTERNS for patterns in store.patterns.values()
            ):
                # the cache only saves work: start it again rather than let it grow
                store = self._store[field] = _FieldStore()
            gram_id = self._ids(grams["g"], store.gram_index, store.gram_text)
            counts = np.bincount(grams["d"].to_numpy(), minlength=distinct.height)
            offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
            # distinct (value, year) pairs, longest first: the j-th step ORs the j-th bigram's
            # pattern into a prefix of them (contiguous rows, no scatter)
            records = np.flatnonzero(value_id >= 0)
            pair = value_id[records] * (len(self._year_text) + 1) + year_id[records]
            uniq, record_pair = np.unique(pair, return_inverse=True)
            pair_value = uniq // (len(self._year_text) + 1)
            pair_year = uniq % (len(self._year_text) + 1)
            order = np.argsort(-counts[pair_value], kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            pair_value, pair_year = pair_value[order], pair_year[order]
            lens = counts[pair_value]
            steps = [int(np.count_nonzero(lens > j)) for j in range(int(lens[0]))]
            year_steps = np.concatenate([pair_year[:c] for c in steps])
            gram_steps = np.concatenate(
                [gram_id[offsets[pair_value[:c]] + j] for j, c in enumerate(steps)]
            )
            if year_steps.size > max(_MAX_BATCH_MESSAGES, 8 * n):
                continue  # as above: more (year, bigram) messages than any real batch
            has[field] = value_id >= 0
            for name in (o for o in outputs if o in wanted):
                # one lookup for all steps (new patterns are added to the store once)
                all_rows, patterns = self._message_rows(field, k, year_steps, gram_steps, name)
                compact = self._work.rows(f"{name}/{field}", uniq.size + 1, words)
                compact.fill(0)  # the last row stands for "no value"
                start = 0
                for c in steps:
                    for lo in range(0, c, _ASSEMBLY_ROWS):
                        hi = min(c, lo + _ASSEMBLY_ROWS)
                        gathered = self._work.rows("gather", hi - lo, words)
                        np.take(patterns, all_rows[start + lo : start + hi], axis=0, out=gathered)
                        np.bitwise_or(compact[lo:hi], gathered, out=compact[lo:hi])
                    start += c
                where = np.full(n, uniq.size, dtype=np.int64)
                where[records] = rank[record_pair]
                parts[name].append((compact, where))
        any_field = has["forename"] | has["surname"] | has["postcode"]
        both_names = has["forename"] & has["surname"]
        out = {}
        for name, present in (("bloom_clk", any_field), ("bloom_name_clk", both_names)):
            if name not in wanted:
                continue
            folded = name == "bloom_name_clk"
            hardened = np.zeros((n, words // 2 if folded else words), dtype=np.uint64)
            _, flip = self._targets[name]
            # a slice of records at a time: the unfolded rows are 256 bytes each
            for start in range(0, n, _ASSEMBLY_ROWS):
                rows = slice(start, start + _ASSEMBLY_ROWS)
                count = min(n, start + _ASSEMBLY_ROWS) - start
                block = self._work.rows("block", count, words)
                block.fill(0)
                for compact, where in parts[name]:
                    gathered = self._work.rows("gather", count, words)
                    np.take(compact, where[rows], axis=0, out=gathered)
                    np.bitwise_or(block, gathered, out=block)
                np.bitwise_xor(block, flip, out=block)
                if folded:
                    # XOR folding (Schnell, Borgs and Encarnação 2016): the two halves XORed
                    # together. Half the bits to store, and no stored bit is one filter
                    # position: each is the parity of two, which defeats pattern-mining attacks
                    # on single positions.
                    np.bitwise_xor(
                        block[:, : words // 2], block[:, words // 2 :], out=hardened[rows]
                    )
                else:
                    hardened[rows] = block
            hardened[~present] = 0
            out[name] = (hardened, present)
        return out

    def name_clk_rows(
        self, forename: pl.Series, surname: pl.Series, year: pl.Series
    ) -> tuple[U64, npt.NDArray[np.bool_]]:
        """``bloom_name_clk`` of records whose names and year of birth are already normalised
        as the match keys normalise them (``privacy.matchkeys`` fields ``fore``, ``sur``,
        ``year``), as a ``(records, FOLDED_WORDS)`` matrix (zero rows where a name or the
        date of birth is missing) and a mask of the records that have one: what the ingest
        stores, made from the fields it has in memory anyway, without a polars frame between."""
        norm = pl.DataFrame(
            [forename.alias("forename"), surname.alias("surname")],
            schema={"forename": pl.String, "surname": pl.String},
        )
        with self._lock:
            rows, present = self._clk_rows(
                norm, year.cast(pl.String).fill_null(""), ("bloom_name_clk",)
            )["bloom_name_clk"]
        # without a date of birth a record is in no block and never compared: nothing to keep
        no_year = year.is_null().to_numpy()
        rows[no_year] = 0
        return rows, present & ~no_year

    def name_clks(self, forename: pl.Series, surname: pl.Series, year: pl.Series) -> pl.Series:
        """:meth:`name_clk_rows` as a ``bloom_name_clk`` column (null where absent)."""
        rows, present = self.name_clk_rows(forename, surname, year)
        return clk_column("bloom_name_clk", rows, present)

    # ------------------------------------------------------------------ keyed tokens

    @staticmethod
    def _hmac(messages: pl.Series, key: str, name: str) -> pl.Series:
        """HMAC-SHA256 (32 bytes) of each distinct non-null message once; null stays null."""
        frame = messages.alias("m").to_frame()
        table = (
            frame.drop_nulls()
            .unique()
            .with_columns(pl.col("m").chash.hmac_sha256(key=key).str.decode("hex").alias("h"))  # type: ignore[attr-defined]
        )
        return frame.join(table, on="m", how="left", maintain_order="left")["h"].alias(name)

    def encode(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Per row of a canonical frame (forename, surname, postcode, date_of_birth, sex, and
        optionally event_date and an age column of :data:`AGE_COLUMNS`; absent columns count as
        null): ``bloom_block`` (Binary, null without a date of birth), ``bloom_clk``
        (``Array(UInt64, 2*bits/64)``, hardened; null when forename, surname and postcode are
        all missing), ``bloom_name_clk`` (names only, folded to ``bits/64`` words; null unless
        both are present),
        ``bloom_named``, and the keyed anchors of :data:`ANCHOR_COLUMNS` (32-byte digests, null
        where an input is missing; ``privacy.linkage.anchors.AnchorEncoder`` gives their 64-bit
        fingerprints, which is what the hub stores)."""
        # the Unicode/regex normalisation runs once per distinct raw name; the derived forms
        # (first forename, its nickname-resolved form, compact surname, surname parts) come
        # from the normalised text
        forename = _distinct_map(column_or_null(frame, "forename", pl.String), name_expr)
        surname = _distinct_map(column_or_null(frame, "surname", pl.String), name_expr)
        names = pl.DataFrame([forename.alias("f"), surname.alias("s")]).select(
            first_forename_expr(pl.col("f")).alias("forename"),
            surname_compact_expr(pl.col("s")).alias("surname"),
            pl.col("s").alias("surname_parts"),
        )
        first_names = names["forename"].alias("raw")
        names = names.with_columns(
            first_names.to_frame()
            .join(
                first_names.drop_nulls()
                .unique()
                .to_frame()
                .with_columns(canonical_forename_expr(pl.col("raw")).alias("c")),
                on="raw",
                how="left",
                maintain_order="left",
            )["c"]
            .alias("canonical_forename")
        )
        inputs = anchor_inputs(frame)
        norm = pl.concat([names, inputs], how="horizontal")
        years = norm["year"].fill_null("")
        with self._lock:
            clks = self._clks(norm, years)

        def msg(label: str, *parts: str) -> pl.Expr:
            return pl.concat_str([pl.lit(label), *[pl.col(p) for p in parts]], separator=SEPARATOR)

        tokens = norm.lazy().select(
            pl.concat_str(
                [pl.col("dob"), pl.col("sex").fill_null("unknown")], separator=SEPARATOR
            ).alias("bloom_block"),
            pl.col("dob").alias("dob_s"),
            male_female_expr().alias("mf"),
            pl.col("canonical_forename"),
            *[
                pl.col("surname_parts")
                .str.split(" ")
                .list.eval(pl.element().filter(pl.element().str.len_chars() > 1))
                .list.get(i, null_on_oob=True)
                .alias(f"part_{i + 1}")
                for i in range(NAME_PARTS)
            ],
        )
        name_parts = tokens.select(
            "bloom_block",
            *[
                msg("fsp", "canonical_forename", "dob_s", "mf", f"part_{i + 1}").alias(
                    f"name_part_{i + 1}"
                )
                for i in range(NAME_PARTS)
            ],
        ).collect()
        # one HMAC pass over the distinct messages of all anchor and name-part columns (each
        # message starts with its kind's label, so kinds never share a digest), one for the
        # block key
        anchors = pl.concat(
            [anchor_messages(inputs), name_parts.drop("bloom_block")], how="horizontal"
        )
        stacked = self._hmac(
            pl.concat([anchors[c] for c in anchors.columns]), self._anchor_key, "h"
        )
        n = frame.height
        keyed = [
            self._hmac(name_parts["bloom_block"], self._block_key, "bloom_block"),
            *[stacked.slice(i * n, n).alias(c) for i, c in enumerate(anchors.columns)],
        ]
        named = norm.select(
            (pl.col("forename").is_not_null() | pl.col("surname").is_not_null()).alias(
                "bloom_named"
            )
        ).to_series()
        return pl.DataFrame(
            [keyed[0], clks["bloom_clk"], clks["bloom_name_clk"], *keyed[1:], named]
        )


def _unpack(clks: pl.Series) -> npt.NDArray[np.uint64]:
    """Hardened CLKs (non-null ``Array(UInt64, words)``) as a (n, words) uint64 matrix."""
    return np.ascontiguousarray(clks.to_numpy(), dtype=np.uint64)


def dice(a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
    """Row-wise Dice coefficient 2|A&B| / (|A| + |B|) of packed bit rows."""
    both = np.bitwise_count(a & b).sum(axis=1, dtype=np.int64)
    total = np.bitwise_count(a).sum(axis=1, dtype=np.int64) + np.bitwise_count(b).sum(
        axis=1, dtype=np.int64
    )
    return np.where(total > 0, 2.0 * both / np.maximum(total, 1), 0.0)


@dataclass(frozen=True)
class BloomLinks:
    """Cluster labels after the Bloom stage and the accepted links (record indices, score)."""

    labels: I64
    links: int
    pairs: pl.DataFrame  # left, right (record positions), score


@dataclass(frozen=True)
class BloomPass:
    """One Bloom pass: the encoding compared, the Dice threshold, and the keyed column whose
    equal values make a block (only records of one block are compared)."""

    column: str
    threshold: float
    block: str


BLOOM_PASSES: tuple[BloomPass, ...] = (
    BloomPass("bloom_name_clk", 0.80, block="anchor_dob_sex"),
)
"""The Bloom passes the hub runs: the folded name-only CLK at Dice >= 0.80, blocked on the keyed
date of birth (the anchor the hub stores anyway). Measured on synth at scale 1.0 after the
cascade (48,000 records; later stages as in the hub): this one pass makes 189 links and adds
recall 0.9616 -> 0.9678 at precision 0.99983, the same as the earlier two passes on unfolded
filters (full CLK with the postcode at 0.92, then names at 0.90: 189 links, recall 0.9678),
for half the stored bytes and a third of the encoding work (the postcode, nearly unique per
record and birth year, was most of it). On the folded filter 0.78 admits false pairs (precision
after the pass 0.99998) and 0.82 loses five true links. The block is date of birth and sex:
on date of birth alone the links are the same on synth (189), but twins of opposite sex with
near names (Daniel / Danielle, 0.89) were compared and joined. The CLK with the
postcode (``bloom_clk``) stays available for :func:`bloom_link`. At scale 3.5 (168,000
records) this pass adds 1,762 pairs, 11 of them false (the two unfolded passes: 1,739 and 1); at
0.84 none are false and about 290 true pairs are lost (docs/benchmarks.md, *Linkage*)."""


def bloom_until_stable(
    records: pl.DataFrame,
    labels: npt.ArrayLike,
    *,
    bloom_pass: BloomPass = BLOOM_PASSES[0],
    among: npt.NDArray[np.bool_] | None = None,
) -> tuple[I64, int]:
    """:func:`bloom_link` run again on its own result until it links nothing more (at most
    :data:`MAX_ROUNDS` times). One run lets a cluster take part in one link, so without this
    three uploads of one person linked in one catch-up would join two of them, where linked
    one by one they join all three. Returns (labels, links accepted)."""
    lab = np.asarray(labels, dtype=np.int64).copy()
    links = 0
    for _ in range(MAX_ROUNDS):
        result = bloom_link(records, lab, bloom_pass=bloom_pass, among=among)
        if not result.links:
            break
        lab, links = result.labels, links + result.links
    return lab, links


MAX_ROUNDS = 5
"""Runs of one Bloom pass per change (a person arriving in more pieces than this at once is
joined further by the next change that touches it)."""


def bloom_cascade(records: pl.DataFrame, labels: npt.ArrayLike) -> tuple[I64, int]:
    """:func:`bloom_until_stable` over :data:`BLOOM_PASSES`, then :func:`name_part_link`;
    returns (labels, links accepted)."""
    lab = np.asarray(labels, dtype=np.int64).copy()
    links = 0
    for bloom_pass in BLOOM_PASSES:
        if bloom_pass.column not in records.columns:
            continue
        lab, linked = bloom_until_stable(records, lab, bloom_pass=bloom_pass)
        links += linked
    lab, joined = name_part_link(records, lab)
    return lab, links + joined


def name_part_link(records: pl.DataFrame, labels: npt.ArrayLike) -> tuple[I64, int]:
    """Join two clusters that share a keyed nickname-resolved forename + DOB + sex + surname
    part (:data:`NAME_PART_COLUMNS`): a hyphenated or multi-part surname recorded in part
    ("Scott-Thomas" / "Thomas"). A value shared by more than two clusters links nothing, nor
    does a pair whose clusters carry different strong identifiers or both hold records of one
    upload (two people in one extract), nor a chain joining more than two clusters. Twins
    never share a forename, so they never share a value. Returns (labels, joins)."""
    lab = np.asarray(labels, dtype=np.int64).copy()
    values = _cluster_values(records, lab, NAME_PART_COLUMNS)
    if values.height == 0:
        return lab, 0
    pairs = (
        values.group_by("v")
        .agg(pl.col("label").unique().sort().alias("l"))
        .filter(pl.col("l").list.len() == 2)
        .select(pl.col("l").list.get(0).alias("a"), pl.col("l").list.get(1).alias("b"))
        .unique()
    )
    if pairs.height == 0:
        return lab, 0
    strong = [_fingerprints(records[c]) if c in records.columns else None for c in STRONG_SPACES]
    upload = records["upload"].cast(pl.String).cast(pl.Categorical).to_physical().to_numpy()
    facts = pl.DataFrame({"label": lab, "u": upload.astype(np.int64)}).with_columns(
        *[pl.Series(s, fp) for s, fp in zip(STRONG_SPACES, strong, strict=True) if fp is not None]
    )
    per = facts.group_by("label").agg(
        pl.col("u").unique(),
        *[pl.col(s).filter(pl.col(s) != 0).unique() for s in STRONG_SPACES if s in facts.columns],
    )
    both = pairs.join(per, left_on="a", right_on="label").join(
        per, left_on="b", right_on="label", suffix="_b"
    )
    ok = pl.col("u").list.set_intersection(pl.col("u_b")).list.len() == 0
    for s in STRONG_SPACES:
        if s in per.columns:
            ok = ok & (
                (pl.col(s).list.len() == 0)
                | (pl.col(f"{s}_b").list.len() == 0)
                | (pl.col(s).list.set_intersection(pl.col(f"{s}_b")).list.len() > 0)
            )
    kept = both.filter(ok)
    if kept.height == 0:
        return lab, 0
    # each cluster in at most one accepted pair (no chains)
    counts = pl.concat([kept["a"], kept["b"]]).value_counts()
    single = counts.filter(pl.col("count") == 1).to_series(0).implode()
    kept = kept.filter(pl.col("a").is_in(single) & pl.col("b").is_in(single))
    mapping = np.arange(int(lab.max()) + 1, dtype=np.int64)
    mapping[kept["b"].to_numpy()] = kept["a"].to_numpy()
    return mapping[lab], kept.height


MAX_BLOCK = 1_000
"""A block (date of birth and sex) holding more comparable records than this is not compared:
a date shared that widely is a placeholder (01/01/1900), not a birthday, and its pairs would
grow with the square of its size. A real date of birth and sex in a city of nine million
holds about a hundred people."""

MAX_PAIRS = 1_000_000
"""Candidate pairs formed at once (~16 MB of pair indices; one block is at most 1,000,000):
larger runs go block by block."""

MAX_RUN_PAIRS = 50_000_000
"""Candidate pairs one run scores at most (~15 s); the largest blocks are left out past it. A
10,000-record upload into a million-record domain forms about a million."""

_DICE_CHUNK = 131_072
"""Candidate pairs scored at once: their two CLK rows are gathered (32 MB at 128 bytes)."""


def _candidate_pairs(
    base: pl.DataFrame, fresh: pl.DataFrame, parts: int
) -> Iterable[tuple[I64, I64]]:
    """Pairs (i, j) of records of one block in different clusters with at least one of them in
    ``fresh``, each unordered pair once, in ``parts`` slices of the blocks."""
    for part in range(parts):
        mine = pl.col("block") % parts == part
        pairs = (
            fresh.filter(mine)
            .join(base.filter(mine), on="block", suffix="_r")
            .filter(
                (pl.col("label") != pl.col("label_r"))
                & ((pl.col("i") < pl.col("i_r")) | ~pl.col("fresh_r"))
            )
        )
        if pairs.height:
            yield pairs["i"].to_numpy(), pairs["i_r"].to_numpy()


def bloom_link(
    records: pl.DataFrame,
    labels: npt.ArrayLike,
    *,
    bloom_pass: BloomPass = BLOOM_PASSES[0],
    among: npt.NDArray[np.bool_] | None = None,
) -> BloomLinks:
    """Merge clusters of ``labels`` (one label per row of ``records``) whose records' CLKs
    score at least the pass's threshold within a block (see the module docstring for the
    rules). ``records`` has the pass's CLK and block columns, ``upload`` and, where known, the
    strong ``nhs``/``upn``/``pnc`` digest columns. ``among``: compare only pairs with at least
    one record flagged (the records an upload added or a withdrawal re-clustered; pairs of
    other records were compared when they arrived)."""
    lab = np.asarray(labels, dtype=np.int64).copy()
    n = records.height
    column = bloom_pass.column
    empty = pl.DataFrame(schema={"left": pl.Int64, "right": pl.Int64, "score": pl.Float64})
    base = (
        pl.DataFrame(
            {
                "i": np.arange(n, dtype=np.int64),
                "block": _fingerprints(records[bloom_pass.block]),
                "ok": records[column].is_not_null(),
                "label": lab,
                "fresh_r": np.ones(n, dtype=bool) if among is None else among,
            }
        )
        .filter((pl.col("block") != 0) & pl.col("ok"))
        .filter(pl.len().over("block") <= MAX_BLOCK)
        .drop("ok")
    )
    fresh = base.filter(pl.col("fresh_r")).drop("fresh_r")
    if fresh.height == 0:
        return BloomLinks(lab, 0, empty)
    sizes = (
        fresh.group_by("block")
        .len()
        .join(base.group_by("block").len(), on="block", suffix="_all")
        .with_columns((pl.col("len") * pl.col("len_all")).alias("pairs"))
        .sort("pairs")
    )
    # a run never scores more than MAX_RUN_PAIRS: past it, the largest blocks wait (a crafted
    # upload of thousands of records per date of birth would otherwise hold the linker)
    within = sizes.filter(pl.col("pairs").cum_sum() <= MAX_RUN_PAIRS)
    if within.height < sizes.height:
        fresh = fresh.filter(pl.col("block").is_in(within["block"].implode()))
        base = base.filter(pl.col("block").is_in(within["block"].implode()))
        if fresh.height == 0:
            return BloomLinks(lab, 0, empty)
    expected = int(within["pairs"].sum())
    parts = max(1, -(-expected // MAX_PAIRS))
    # the CLKs of the records taking part, row k for record present[k]
    present = base["i"].to_numpy()
    matrix = _unpack(records[column].gather(present))
    position = np.full(n, -1, dtype=np.int64)
    position[present] = np.arange(present.size)
    kept: list[tuple[I64, I64, npt.NDArray[np.float64]]] = []
    for pair_left, pair_right in _candidate_pairs(base, fresh, parts):
        for start in range(0, pair_left.size, _DICE_CHUNK):
            left = pair_left[start : start + _DICE_CHUNK]
            right = pair_right[start : start + _DICE_CHUNK]
            scores = dice(matrix[position[left]], matrix[position[right]])
            keep = scores >= bloom_pass.threshold
            kept.append((left[keep], right[keep], scores[keep]))
    if not kept:
        return BloomLinks(lab, 0, empty)
    left, right, scores = (np.concatenate(parts_) for parts_ in zip(*kept, strict=True))
    # cluster facts for the guards
    strong = [_fingerprints(records[c]) if c in records.columns else None for c in STRONG_SPACES]
    # an agency's own id: two different ids of one dataset are two people, whichever uploads
    # they came in (the ids of different datasets are in different key spaces)
    local = (
        _fingerprints(records["local_id"])
        if {"local_id", "dataset"} <= set(records.columns)
        else None
    )
    datasets = (
        records["dataset"].cast(pl.String).cast(pl.Categorical).to_physical().to_numpy()
        if local is not None
        else None
    )
    upload_codes = records["upload"].cast(pl.String).cast(pl.Categorical).to_physical().to_numpy()
    cluster_uploads: dict[int, set[int]] = {}
    cluster_strong: dict[int, list[set[int]]] = {}
    cluster_local: dict[int, dict[int, set[int]]] = {}
    touched = np.unique(lab[np.concatenate([left, right])])
    for i in np.flatnonzero(np.isin(lab, touched)).tolist():
        c = int(lab[i])
        cluster_uploads.setdefault(c, set()).add(int(upload_codes[i]))
        facts = cluster_strong.setdefault(c, [set() for _ in STRONG_SPACES])
        for s, fp in enumerate(strong):
            if fp is not None and fp[i]:
                facts[s].add(int(fp[i]))
        ids = cluster_local.setdefault(c, {})
        if local is not None and datasets is not None and local[i]:
            ids.setdefault(int(datasets[i]), set()).add(int(local[i]))
    order = np.argsort(-scores, kind="stable")
    used: set[int] = set()
    parent: dict[int, int] = {}
    accepted = []
    for o in order.tolist():
        a, b = int(lab[left[o]]), int(lab[right[o]])
        if a == b or a in used or b in used:
            continue
        if cluster_uploads[a] & cluster_uploads[b]:
            continue
        if any(
            x and y and not (x & y)
            for x, y in zip(cluster_strong[a], cluster_strong[b], strict=True)
        ):
            continue
        local_a, local_b = cluster_local[a], cluster_local[b]
        if any(not (local_a[d] & local_b[d]) for d in local_a.keys() & local_b.keys()):
            continue
        used.update((a, b))
        parent[max(a, b)] = min(a, b)
        accepted.append((int(left[o]), int(right[o]), float(scores[o])))
    if parent:
        mapping = np.arange(lab.max() + 1, dtype=np.int64)
        for child, root in parent.items():
            mapping[child] = root
        lab = mapping[lab]
    out = pl.DataFrame(accepted, schema=empty.schema, orient="row") if accepted else empty
    return BloomLinks(lab, len(accepted), out)
