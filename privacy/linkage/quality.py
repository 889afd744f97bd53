"""Pairwise linkage quality against ground truth, counted from cluster sizes.

Why: precision and recall of linkage are defined on record pairs (a pair is predicted when both
records got the same person, true when both belong to the same real person). Enumerating pairs
is quadratic; counting them is not: a cluster of n records holds n(n-1)/2 pairs, and the true
positives are the pairs of the cells of the (predicted, true) contingency table. Per agency
pair the same holds with n_A * n_B (or n_A(n_A-1)/2 within one agency).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = ["PairQuality", "pairwise_quality", "quality_by_dataset_pair", "quality_by_step"]

Labels = npt.ArrayLike | pl.Series


@dataclass(frozen=True)
class PairQuality:
    """Pair counts: ``true_positive`` pairs both predicted and true, ``predicted`` pairs,
    ``actual`` (true) pairs."""

    true_positive: int
    predicted: int
    actual: int

    @property
    def precision(self) -> float:
        return self.true_positive / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positive / self.actual if self.actual else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _series(values: Labels, name: str) -> pl.Series:
    if isinstance(values, pl.Series):
        return values.alias(name)
    return pl.Series(name, np.asarray(values))


def _pairs(frame: pl.DataFrame, by: list[str]) -> int:
    sizes = frame.group_by(by).len().get_column("len").cast(pl.Int64)
    return int((sizes * (sizes - 1) // 2).sum())


def pairwise_quality(predicted: Labels, truth: Labels) -> PairQuality:
    """Pairwise quality of ``predicted`` cluster labels against ``truth`` labels (same length;
    any hashable label type)."""
    frame = pl.DataFrame([_series(predicted, "p"), _series(truth, "t")])
    if frame.height == 0:
        return PairQuality(0, 0, 0)
    return PairQuality(
        true_positive=_pairs(frame, ["p", "t"]),
        predicted=_pairs(frame, ["p"]),
        actual=_pairs(frame, ["t"]),
    )


def _pairs_by_dataset(frame: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    counts = frame.group_by([*by, "dataset"]).len()
    joined = counts.join(counts, on=by, suffix="_r").filter(
        pl.col("dataset") <= pl.col("dataset_r")
    )
    pairs = (
        pl.when(pl.col("dataset") == pl.col("dataset_r"))
        .then(pl.col("len").cast(pl.Int64) * (pl.col("len").cast(pl.Int64) - 1) // 2)
        .otherwise(pl.col("len").cast(pl.Int64) * pl.col("len_r").cast(pl.Int64))
    )
    return joined.group_by(pl.col("dataset").alias("left"), pl.col("dataset_r").alias("right")).agg(
        pairs.sum().alias("pairs")
    )


def quality_by_dataset_pair(predicted: Labels, truth: Labels, dataset: Labels) -> pl.DataFrame:
    """One row per (left, right) dataset pair (left <= right) with ``true_positive``,
    ``predicted``, ``actual``, ``precision``, ``recall`` and ``f1``."""
    frame = pl.DataFrame(
        [_series(predicted, "p"), _series(truth, "t"), _series(dataset, "dataset").cast(pl.String)]
    )
    keys = ["left", "right"]
    tp = _pairs_by_dataset(frame, ["p", "t"]).rename({"pairs": "true_positive"})
    pred = _pairs_by_dataset(frame, ["p"]).rename({"pairs": "predicted"})
    act = _pairs_by_dataset(frame, ["t"]).rename({"pairs": "actual"})
    out = (
        act.join(pred, on=keys, how="full", coalesce=True)
        .join(tp, on=keys, how="full", coalesce=True)
        .fill_null(0)
        .filter((pl.col("predicted") > 0) | (pl.col("actual") > 0))
    )
    p = pl.col("true_positive") / pl.col("predicted")
    r = pl.col("true_positive") / pl.col("actual")
    return (
        out.with_columns(
            pl.when(pl.col("predicted") > 0).then(p).otherwise(1.0).alias("precision"),
            pl.when(pl.col("actual") > 0).then(r).otherwise(1.0).alias("recall"),
        )
        .with_columns(
            (2 * pl.col("precision") * pl.col("recall") / (pl.col("precision") + pl.col("recall")))
            .fill_nan(0.0)
            .alias("f1")
        )
        .select([*keys, "true_positive", "predicted", "actual", "precision", "recall", "f1"])
        .sort(keys)
    )


def quality_by_step(
    steps: Sequence[tuple[str, int, npt.NDArray[np.int64]]], truth: Labels
) -> pl.DataFrame:
    """Pairs each cascade step added (labels after the step minus labels before it) and how
    many of them are true: ``key``, ``level``, ``added``, ``added_true``, ``precision`` of the
    added pairs, and ``cumulative_precision``, ``cumulative_recall``, ``cumulative_f1``."""
    truth_s = _series(truth, "t")
    n = truth_s.len()
    previous = PairQuality(0, 0, pairwise_quality(np.arange(n), truth_s).actual)
    rows = []
    for key, level, labels in steps:
        q = pairwise_quality(labels, truth_s)
        added = q.predicted - previous.predicted
        added_true = q.true_positive - previous.true_positive
        rows.append(
            {
                "key": key,
                "level": level,
                "added": added,
                "added_true": added_true,
                "precision": added_true / added if added else 1.0,
                "cumulative_precision": q.precision,
                "cumulative_recall": q.recall,
                "cumulative_f1": q.f1,
            }
        )
        previous = q
    schema = {
        "key": pl.String,
        "level": pl.Int64,
        "added": pl.Int64,
        "added_true": pl.Int64,
        "precision": pl.Float64,
        "cumulative_precision": pl.Float64,
        "cumulative_recall": pl.Float64,
        "cumulative_f1": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)
