"""The match-key cascade: keyed pseudonyms that let records about one person be linked.

Why: agencies never share identifiers with each other or with the hub's store. At ingest each
record's identifiers are normalised and turned into several HMAC-SHA256 digests ("match keys"),
each built from a different combination of fields. A linker then joins records on equal keys,
strongest first, so a missing NHS number, a nickname, a typo'd date or a change of surname still
links where a weaker key agrees. The raw values exist only in memory inside :meth:`match_keys`.

Key inputs are ``key name + US + field + US + field ...`` (US = U+001F, which no normalised field
can contain), so keys never collide with each other; the two deliberate exceptions are
``upn_former`` (in the ``upn`` space, so a former UPN links to a current one) and the symmetric
keys ``swapped_dob`` and ``transposed_names_dob``, built so both records of a swapped pair yield
the same value in the same column. The HMAC key is derived per linkage domain and key version,
so pseudonyms from different domains or versions never link.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
import polars_hash  # noqa: F401  (registers the vectorised `chash` expression namespace)
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.hmac import HMAC

from privacy.keys import derive_key
from privacy.normalise import (
    canonical_forename_expr,
    first_forename_expr,
    local_id_expr,
    name_expr,
    nhs_number_expr,
    pnc_normalised,
    postcode_expr,
    postcode_sector_expr,
    surname_compact_expr,
    upn_expr,
)

__all__ = [
    "DIGEST_BYTES",
    "INPUT_COLUMNS",
    "KEY_SPACES",
    "MATCH_KEYS",
    "MATCH_KEY_PURPOSE",
    "NORMALISED_FIELDS",
    "STORED_KEY_BYTES",
    "MatchKeySpec",
    "Pseudonymiser",
    "normalised_fields",
    "pack_match_keys",
    "unpack_match_keys",
]

MATCH_KEY_PURPOSE = "match-key"
SEPARATOR = "\x1f"
INPUT_COLUMNS: tuple[str, ...] = (
    "forename",
    "surname",
    "nhs_number",
    "upn",
    "former_upn",
    "pnc_id",
    "local_id",
    "postcode",
    "date_of_birth",
)


@dataclass(frozen=True)
class MatchKeySpec:
    """One match key. ``level`` orders the cascade: 1 = a unique identifier, 2 = full
    demographics, 3 = demographics tolerating one kind of variation, 4 = tolerating a
    data-entry error (use only with corroboration)."""

    name: str
    level: int
    description: str


MATCH_KEYS: tuple[MatchKeySpec, ...] = (
    MatchKeySpec("nhs", 1, "NHS number (check digit valid). Links health and social care."),
    MatchKeySpec("upn", 1, "DfE Unique Pupil Number (check letter valid). Links education."),
    MatchKeySpec(
        "upn_former",
        1,
        "A former UPN, hashed in the upn key space: compare with upn to follow a pupil whose "
        "UPN was reissued.",
    ),
    MatchKeySpec("pnc", 1, "Police National Computer id (check letter valid). Links police."),
    MatchKeySpec(
        "local_id",
        1,
        "Agency-local person id, bound to the dataset name: links one agency's records over "
        "time, never across agencies.",
    ),
    MatchKeySpec(
        "name_dob_postcode",
        2,
        "First forename + surname (spaces removed) + date of birth + postcode. The strongest "
        "demographic key.",
    ),
    MatchKeySpec(
        "name_dob",
        2,
        "First forename + surname + date of birth. Survives a house move or missing postcode.",
    ),
    MatchKeySpec(
        "canonical_name_dob",
        3,
        "Nickname-resolved forename (Billy -> william, Mo -> muhammad) + surname + date of "
        "birth. Survives informal and variant spellings of forenames.",
    ),
    MatchKeySpec(
        "initial_surname_dob_sector",
        3,
        "Forename initial + surname + date of birth + postcode sector. Survives forename "
        "misspellings and nicknames outside the table, within a small area.",
    ),
    MatchKeySpec(
        "forename_dob_postcode",
        3,
        "First forename + date of birth + postcode. Survives a change or misspelling of surname.",
    ),
    MatchKeySpec(
        "surname_dob_postcode",
        3,
        "Surname + date of birth + postcode. Survives use of a middle or anglicised forename.",
    ),
    MatchKeySpec(
        "swapped_dob",
        4,
        "First forename + surname + birth year + the unordered {day, month} pair; only when "
        "day <= 12 and day != month. Equal for two records whose day and month were swapped.",
    ),
    MatchKeySpec(
        "transposed_names_dob",
        4,
        "The unordered {first forename, surname} pair + date of birth. Equal for two records "
        "whose forename and surname fields were swapped.",
    ),
)

# Which key space each column's digest lives in (column name -> space); linkers compare columns
# in the same space.
KEY_SPACES: dict[str, str] = {spec.name: spec.name for spec in MATCH_KEYS} | {"upn_former": "upn"}


def _key(space: str, *parts: pl.Expr) -> pl.Expr:
    # concat_str is null when any part is null: a key with a missing input is no key at all.
    return pl.concat_str([pl.lit(space), *parts], separator=SEPARATOR)


# Each text input is normalised once per *distinct* value: extracts repeat people, names and
# postcodes many times, and normalisation (Unicode decomposition, regexes) is the costly part.
# A normaliser adds a column "norm" to a frame of distinct values in a column "raw".
_Normaliser = Callable[[pl.LazyFrame], pl.LazyFrame]


def _by_expression(expression: Callable[[pl.Expr], pl.Expr]) -> _Normaliser:
    built = expression(pl.col("raw")).alias("norm")  # once: building costs ~0.2 ms a batch
    return lambda distinct: distinct.with_columns(built)


_NORMALISERS: dict[str, tuple[str, _Normaliser]] = {
    "forename": ("fore", _by_expression(lambda e: first_forename_expr(name_expr(e)))),
    "surname": ("sur", _by_expression(lambda e: surname_compact_expr(name_expr(e)))),
    "postcode": ("postcode", _by_expression(postcode_expr)),
    "nhs_number": ("nhs", _by_expression(nhs_number_expr)),
    "upn": ("upn", _by_expression(upn_expr)),
    "former_upn": ("upn_former", _by_expression(upn_expr)),
    # staged as columns (see pnc_normalised); it reads today's date to place two-digit years
    "pnc_id": ("pnc", lambda distinct: pnc_normalised(distinct, "raw", "norm")),
}


NORMALISED_FIELDS: tuple[str, ...] = (
    *(target for target, _ in _NORMALISERS.values()),
    "local",
    "dob",
    "year",
    "day",
    "month",
)
"""The normalised field columns the keys are built from: ``fore`` (first forename), ``sur``
(compact surname), ``postcode``, ``nhs``, ``upn``, ``upn_former``, ``pnc``, ``local`` (String,
null where absent or invalid), ``dob`` (``YYYY-MM-DD``), ``year`` (String), ``day`` and
``month`` of the date of birth."""


def _normalised_fields(
    inputs: pl.DataFrame, targets: tuple[str, ...] = NORMALISED_FIELDS
) -> pl.LazyFrame:
    """The normalised field columns ``targets`` (default: all that any key is built from),
    as one query, not yet run."""
    frame = inputs.lazy()
    parts: list[pl.LazyFrame] = []
    for source, (target, normaliser) in _NORMALISERS.items():
        if target not in targets:
            continue
        if inputs.get_column(source).null_count() == inputs.height:
            # nothing to normalise (a field the dataset does not have, mostly): the column of
            # nulls itself, so the part keeps the frame's height
            parts.append(frame.select(pl.col(source).alias(target)))
            continue
        # normalise each distinct value once and join the results back, in row order
        table = normaliser(frame.select(pl.col(source).drop_nulls().unique().alias("raw")))
        parts.append(
            frame.select(pl.col(source).alias("raw"))
            .join(table, on="raw", how="left", maintain_order="left")
            .select(pl.col("norm").alias(target))
        )
    dob = pl.col("date_of_birth")
    direct = {
        # local ids are nearly all distinct and cheap to normalise: do them directly.
        "local": local_id_expr(pl.col("local_id")),
        "dob": dob.dt.to_string("%Y-%m-%d"),
        "year": dob.dt.year().cast(pl.String),
        "day": dob.dt.day(),
        "month": dob.dt.month(),
    }
    parts.append(frame.select(expr.alias(name) for name, expr in direct.items() if name in targets))
    return pl.concat(parts, how="horizontal").select(targets)


def normalised_fields(frame: pl.DataFrame, targets: tuple[str, ...]) -> pl.DataFrame:
    """Some of :data:`NORMALISED_FIELDS` for each row of ``frame`` (as the ``fields`` of
    :meth:`Pseudonymiser.match_key_prefixes` return them). These are raw identifiers in normal
    form: for keyed encodings made from the same batch, never to be stored."""
    return _normalised_fields(_key_inputs(frame), targets).collect()


def _key_inputs(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame``'s :data:`INPUT_COLUMNS`, typed; absent ones all null."""
    inputs = frame.select(
        pl.col(c).cast(pl.Date if c == "date_of_birth" else pl.String)
        for c in INPUT_COLUMNS
        if c in frame.columns
    )
    missing = [
        pl.lit(None, dtype=pl.Date if c == "date_of_birth" else pl.String).alias(c)
        for c in INPUT_COLUMNS
        if c not in frame.columns
    ]
    return inputs.with_columns(missing) if missing else inputs


def _key_strings(dataset: str | None) -> list[pl.Expr]:
    """Expressions building each key's input string from the normalised field columns."""
    fore, sur, dob = pl.col("fore"), pl.col("sur"), pl.col("dob")
    postcode = pl.col("postcode")
    day, month = pl.col("day"), pl.col("month")
    swappable = (day <= 12) & (day != month)
    low = pl.min_horizontal(day, month).cast(pl.String)
    high = pl.max_horizontal(day, month).cast(pl.String)

    keys = {
        "nhs": _key("nhs", pl.col("nhs")),
        "upn": _key("upn", pl.col("upn")),
        "upn_former": _key("upn", pl.col("upn_former")),
        "pnc": _key("pnc", pl.col("pnc")),
        "local_id": _key("local_id", pl.lit(dataset, dtype=pl.String), pl.col("local")),
        "name_dob_postcode": _key("name_dob_postcode", fore, sur, dob, postcode),
        "name_dob": _key("name_dob", fore, sur, dob),
        "canonical_name_dob": _key("canonical_name_dob", canonical_forename_expr(fore), sur, dob),
        "initial_surname_dob_sector": _key(
            "initial_surname_dob_sector",
            fore.str.slice(0, 1),
            sur,
            dob,
            postcode_sector_expr(postcode),
        ),
        "forename_dob_postcode": _key("forename_dob_postcode", fore, dob, postcode),
        "surname_dob_postcode": _key("surname_dob_postcode", sur, dob, postcode),
        "swapped_dob": pl.when(swappable).then(
            _key("swapped_dob", fore, sur, pl.col("year"), low, high)
        ),
        # min/max_horizontal skip nulls, so guard explicitly: both names are needed.
        "transposed_names_dob": pl.when(fore.is_not_null() & sur.is_not_null()).then(
            _key(
                "transposed_names_dob",
                pl.min_horizontal(fore, sur),
                pl.max_horizontal(fore, sur),
                dob,
            )
        ),
    }
    return [keys[spec.name].alias(spec.name) for spec in MATCH_KEYS]


# How a digest is returned: hex text of all 32 bytes, or its first STORED_KEY_BYTES as an integer.
_DigestForm = Literal["hex", "prefix"]

# Datasets whose key expressions one Pseudonymiser keeps (an ingest uses one or two).
_MAX_CACHED_DATASETS = 16


class Pseudonymiser:
    """Turns identifier columns into match-key digests for one linkage domain and key version.

    The HMAC key is derived once (HKDF, purpose ``"match-key"``); the master secret itself is
    not kept. ``key_version`` is exposed so the store can record which key made each digest.
    """

    def __init__(
        self,
        master_secret: bytes,
        domain: str,
        key_version: int,
        *,
        dataset: str | None = None,
    ) -> None:
        self.domain = domain
        self.key_version = key_version
        self.dataset = dataset
        key = derive_key(
            master_secret, domain=domain, version=key_version, purpose=MATCH_KEY_PURPOSE
        )
        # The HMAC key is the derived key's 64-character hex text (256 bits of entropy in one
        # SHA-256 block): the vectorised HMAC below takes its key as text.
        self._hmac_key_text = key.hex()
        self._hmac = HMAC(self._hmac_key_text.encode("ascii"), SHA256())
        self._expression_cache: dict[
            tuple[str | None, _DigestForm], tuple[list[pl.Expr], list[pl.Expr]]
        ] = {}

    def __repr__(self) -> str:  # never show key material
        return f"Pseudonymiser(domain={self.domain!r}, key_version={self.key_version})"

    def digest(self, message: bytes) -> bytes:
        """HMAC-SHA256 of one message under this domain's match key (for tests and tools)."""
        mac = self._hmac.copy()
        mac.update(message)
        return mac.finalize()

    def _digest_expr(self, column: str, form: _DigestForm) -> pl.Expr:
        # Ingest's hot loop, vectorised in Rust (polars-hash) and run outside the GIL, so it
        # overlaps with reading and storing. Nulls stay null.
        # `chash` is registered at run time by polars_hash, so mypy cannot see it.
        digest: pl.Expr = pl.col(column).chash.hmac_sha256(key=self._hmac_key_text)  # type: ignore[attr-defined]
        if form == "prefix":
            # parsed in the same expression, so no batch ever holds 13 columns of hex text
            digest = digest.str.slice(0, 2 * STORED_KEY_BYTES).str.to_integer(
                base=16, dtype=pl.UInt64
            )
        return digest.alias(column)

    def _keys_for(
        self,
        inputs: pl.DataFrame,
        dataset: str | None,
        fields: tuple[str, ...],
        form: _DigestForm,
    ) -> pl.DataFrame:
        """The digests for ``inputs``, and the normalised ``fields``, in one query (one pass
        of planning and running)."""
        strings, digests = self._expressions(dataset, form)
        kept = [pl.col(name) for name in fields]
        return (
            _normalised_fields(inputs).select([*strings, *kept]).select([*digests, *kept]).collect()
        )

    def _expressions(
        self, dataset: str | None, form: _DigestForm
    ) -> tuple[list[pl.Expr], list[pl.Expr]]:
        """The key-string and HMAC expressions for ``dataset``, built once.

        Building them costs about as much as running them on a few thousand rows.
        """
        cached = self._expression_cache.get((dataset, form))
        if cached is None:
            if len(self._expression_cache) >= _MAX_CACHED_DATASETS:
                self._expression_cache.clear()
            cached = (
                _key_strings(dataset),
                [self._digest_expr(spec.name, form) for spec in MATCH_KEYS],
            )
            self._expression_cache[(dataset, form)] = cached
        return cached

    def match_keys(self, frame: pl.DataFrame, dataset: str | None = None) -> pl.DataFrame:
        """One ``pl.Binary`` column per :data:`MATCH_KEYS` entry (32-byte HMAC-SHA256 digest,
        null where any input is missing), same row count and order as ``frame``."""
        hex_keys = self.match_keys_hex(frame, dataset)
        return hex_keys.select(pl.col(name).str.decode("hex") for name in hex_keys.columns)

    def match_keys_hex(
        self,
        frame: pl.DataFrame,
        dataset: str | None = None,
        *,
        fields: tuple[str, ...] = (),
    ) -> pl.DataFrame:
        """One ``pl.String`` column per :data:`MATCH_KEYS` entry (hex HMAC-SHA256 digest,
        null where any input is missing), same row count and order as ``frame``.

        ``frame`` has String columns forename, surname, nhs_number, upn, former_upn, pnc_id,
        local_id, postcode and a Date column date_of_birth; absent columns count as all null.
        ``dataset`` (or the constructor's) scopes ``local_id`` keys to one agency extract.
        ``fields``: some of :data:`NORMALISED_FIELDS` to return too, after the keys, as
        :func:`normalised_fields` gives them (so that other keyed encodings of the same batch
        need not normalise it again; raw identifiers in normal form, never to be stored).
        """
        return self._match_key_columns(frame, dataset, fields, "hex")

    def match_key_prefixes(
        self,
        frame: pl.DataFrame,
        dataset: str | None = None,
        *,
        fields: tuple[str, ...] = (),
    ) -> pl.DataFrame:
        """As :meth:`match_keys_hex`, but each key is the first :data:`STORED_KEY_BYTES` of
        its digest as a big-endian ``pl.UInt64``: what the store keeps
        (:func:`pack_match_keys`)."""
        return self._match_key_columns(frame, dataset, fields, "prefix")

    def _match_key_columns(
        self,
        frame: pl.DataFrame,
        dataset: str | None,
        fields: tuple[str, ...],
        form: _DigestForm,
    ) -> pl.DataFrame:
        dataset = dataset if dataset is not None else self.dataset
        if dataset is not None and (not dataset or not dataset.isprintable()):
            raise ValueError("dataset must be a non-empty printable name")
        unknown = set(fields) - set(NORMALISED_FIELDS)
        if unknown:
            raise ValueError(f"not normalised fields: {sorted(unknown)}")
        inputs = _key_inputs(frame)
        local_ids = inputs.get_column("local_id")
        if dataset is None and local_ids.null_count() < inputs.height:
            raise ValueError(
                "local_id values are present but no dataset name was given: pass dataset= so "
                "local ids link only within their own agency"
            )
        if local_ids.null_count() == 0 and local_ids.n_unique() == inputs.height:
            # every row has its own local id, so no identifier tuple repeats (most extracts
            # give each record its own reference): nothing to gain from the lookup below
            return self._keys_for(inputs, dataset, fields, form)
        # Extracts repeat people (one row per event): key each distinct identifier tuple once
        # and join the digests back onto every row, in the original order.
        distinct = inputs.unique()
        if distinct.height == inputs.height:
            return self._keys_for(inputs, dataset, fields, form)
        distinct = distinct.with_row_index("__distinct_row")
        rows = inputs.join(
            distinct, on=list(INPUT_COLUMNS), how="left", nulls_equal=True, maintain_order="left"
        ).get_column("__distinct_row")
        keys = self._keys_for(distinct.drop("__distinct_row"), dataset, fields, form)
        return keys[rows]


# Packed form, as stored: a bit mask of which keys are present (bit i = MATCH_KEYS[i]) and the
# present keys concatenated in cascade order. One column instead of thirteen makes a stored
# row several times cheaper to write, and absent keys cost nothing. A key is stored as the
# first STORED_KEY_BYTES of its HMAC-SHA256 digest: the linker compares nothing else (its
# 64-bit fingerprint), and the whole digest was three quarters of a record row (~200 bytes).
# At 64 bits two different values of one key collide with probability ~n^2 / 2^65: about one
# in 300,000 for ten million distinct values. Rows stored before keep full 32-byte digests;
# readers take either (the width is the blob's length over the keys present).
DIGEST_BYTES = 32
STORED_KEY_BYTES = 8
STORED_WIDTHS = (STORED_KEY_BYTES, DIGEST_BYTES)


def pack_match_keys(prefixes: pl.DataFrame) -> pl.DataFrame:
    """``match_key_mask`` (Int32) and ``match_keys`` (Binary: the first
    :data:`STORED_KEY_BYTES` of each present digest) from the digest prefixes that
    :meth:`Pseudonymiser.match_key_prefixes` returns.

    Built on whole arrays: numpy lays the present prefixes out big-endian (the digest's own
    byte order), row by row in cascade order, and each row's bytes are one slice of that
    buffer.
    """
    names = [spec.name for spec in MATCH_KEYS]
    wrong = [name for name in names if prefixes.schema.get(name) != pl.UInt64]
    if wrong:
        raise ValueError(
            f"pack_match_keys takes UInt64 digest prefixes (Pseudonymiser.match_key_prefixes); "
            f"not so: {', '.join(wrong)}"
        )
    present = prefixes.select(pl.col(names).is_not_null()).to_numpy()
    bits = np.left_shift(1, np.arange(len(names), dtype=np.int32), dtype=np.int32)
    mask = (present * bits).sum(axis=1, dtype=np.int32)
    blob = prefixes.select(pl.col(names).fill_null(0)).to_numpy().astype(">u8")[present].tobytes()
    bounds = np.zeros(len(present) + 1, dtype=np.int64)
    np.cumsum(present.sum(axis=1) * STORED_KEY_BYTES, out=bounds[1:])
    digests = [blob[begin:end] for begin, end in itertools.pairwise(bounds.tolist())]
    return pl.DataFrame(
        [
            pl.Series("match_key_mask", mask, dtype=pl.Int32),
            pl.Series("match_keys", digests, dtype=pl.Binary),
        ]
    )


def unpack_match_keys(mask: int, blob: bytes) -> dict[str, bytes]:
    """The stored keys of one row, by key name (absent keys omitted): the first
    :data:`STORED_KEY_BYTES` of each digest, or whole digests in rows stored before."""
    present = [spec.name for bit, spec in enumerate(MATCH_KEYS) if mask & (1 << bit)]
    width = len(blob) // len(present) if present else 0
    if (present and width not in STORED_WIDTHS) or width * len(present) != len(blob):
        raise ValueError("match key blob does not match its mask")
    return {name: blob[i * width : (i + 1) * width] for i, name in enumerate(present)}
