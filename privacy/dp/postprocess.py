"""Declared post-processing of a release: it reads noisy values only, never true ones.

The functions take a ``Release`` (or its table), which by construction holds no true value, so
every decision here (clamping, rounding, suppression) is a function of the noise-protected
output and costs no privacy. Intervals are transformed so they keep their coverage: clamping to
>= 0 cannot exclude a true count (which is >= 0); rounding to a base widens outwards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import polars as pl

from privacy.dp.mechanisms import VALUE, Release


class PostProcessError(ValueError):
    """A post-processing declaration that cannot be applied."""


@dataclass(frozen=True)
class PostProcessing:
    """What the agreement declares, applied in this order: clamp, round, suppress."""

    non_negative: bool = False
    integer: bool = False
    round_to_base: int | None = None
    suppress_below: float | None = None

    def __post_init__(self) -> None:
        if self.round_to_base is not None and self.round_to_base < 1:
            raise PostProcessError("round_to_base must be a positive integer")
        if self.suppress_below is not None and self.suppress_below < 0:
            raise PostProcessError("suppress_below must be >= 0")


def apply(release: Release, spec: PostProcessing) -> Release:
    """Apply ``spec`` to the noisy table; adds a boolean ``suppressed`` column.

    Suppressed cells keep their row (the key set is public) with value and interval null.
    """
    t = release.table
    v, lo, hi = pl.col(VALUE), pl.col("lower"), pl.col("upper")
    if spec.non_negative:
        t = t.with_columns(
            pl.max_horizontal(v, pl.lit(0)).cast(t.schema[VALUE]).alias(VALUE),
            pl.max_horizontal(lo, pl.lit(0.0)).alias("lower"),
            pl.max_horizontal(hi, pl.lit(0.0)).alias("upper"),
        )
    if spec.integer:
        t = t.with_columns(
            v.round(0).cast(pl.Int64).alias(VALUE),
            lo.floor().alias("lower"),
            hi.ceil().alias("upper"),
        )
    if spec.round_to_base is not None:
        b = float(spec.round_to_base)
        t = t.with_columns(
            ((v.cast(pl.Float64) / b).round(0) * b).alias(VALUE),
            ((lo / b).floor() * b).alias("lower"),
            ((hi / b).ceil() * b).alias("upper"),
        )
        if spec.integer:
            t = t.with_columns(pl.col(VALUE).cast(pl.Int64))
    suppressed = (
        (pl.col(VALUE) < spec.suppress_below) if spec.suppress_below is not None else pl.lit(False)
    )
    t = t.with_columns(suppressed.fill_null(False).alias("suppressed"))
    null_if = pl.when(pl.col("suppressed")).then(None)
    t = t.with_columns(
        null_if.otherwise(pl.col(VALUE)).alias(VALUE),
        null_if.otherwise(pl.col("lower")).alias("lower"),
        null_if.otherwise(pl.col("upper")).alias("upper"),
    )
    if "half_width" in t.columns:
        t = t.with_columns(null_if.otherwise(pl.col("half_width")).alias("half_width"))
    notes = (*release.meta.notes, f"post-processing: {spec}")
    return Release(t, replace(release.meta, notes=notes))
