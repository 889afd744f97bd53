"""Queries benchmark: a borough x month count of persons with the per-person bound.

Synthetic linked data is written straight into ``uploads``/``records``/``record_persons`` (not
through ingest): persons with 1-5 records (45/25/15/10/5%), 80% of them in a home borough,
dates uniform over the agreement's 24 months, ``rank_in_dataset`` by date as the linkage
service keeps it. Then, on each backend, in the same run:

* **hub**: ``QueryService.run`` end to end (plan, DP bound choice on the SQL histogram, the
  bounded table in SQL, OpenDP noise, post-processing, the budget transaction and audit event);
  p50 over ``--repeats`` distinct queries (distinct epsilons, so nothing is served stored);
* **OpenDP Polars**: ``dp.Context.compositor`` over the same rows read into a LazyFrame
  (identifier ``person_id``, ``truncate_per_group(1)``, ``truncate_num_groups(k)``, keys
  margin), at the bound the hub chose; p50 over fewer repeats (it takes seconds);
* **error per cell at epsilon 1**: mean absolute error against the *unbounded* true counts,
  i.e. bias (cells dropped by the bound) plus noise, for the hub's data-chosen bound
  (averaged over its DP choices) and for every fixed bound 1..5 with hindsight.

Usage: ``python -m benchmarks.queries --rows 1000000,10000000 --backends sqlite,postgresql
--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/q_bench --write``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, insert, text

from agreements.load import load_agreement
from hub.audit import SYSTEM
from hub.bulk import insert_rows
from hub.db import make_engine, upgrade_database
from hub.dimensions import first_masks
from hub.models import DimensionValueRow, RecordPersonRow, RecordRow, UploadRow
from hub.queries import (
    BOUND_SHARE,
    MAX_ROWS,
    QueryService,
    bounded_table,
    noise,
    plan,
)
from hub.records import RECORD_COLUMNS
from privacy.dp import bounds
from privacy.dp.budget import Query

AGREEMENT_FILE = Path(__file__).parents[1] / "agreements/examples/london-vru-partnership.yaml"
DATASET = "police_violence_offences"
START = date(2026, 1, 1)
DAYS = 730
CHUNK = 500_000
BOROUGHS = [f"E090000{i:02d}" for i in range(1, 34)]
SEXES = ["male", "female"]
BANDS = ["10-14", "15-17", "18-24", "25+"]


def synthetic(rows: int, seed: int = 2026) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    per = rng.choice([1, 2, 3, 4, 5], size=rows, p=[0.45, 0.25, 0.15, 0.10, 0.05])
    per = per[: int(np.searchsorted(np.cumsum(per), rows)) + 1]
    person = np.repeat(np.arange(per.size), per)[:rows]
    home = rng.integers(0, 33, per.size)[person]
    away = rng.random(rows) >= 0.8
    borough = np.where(away, rng.integers(0, 33, rows), home)
    day = rng.integers(0, DAYS, rows)
    order = np.lexsort((day, person))
    person, borough, day = person[order], borough[order], day[order]
    starts = np.r_[0, np.flatnonzero(np.diff(person)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, rows]))
    rank = np.arange(rows) - first + 1
    sex = rng.integers(0, 2, per.size)[person]
    band = rng.integers(0, 4, per.size)[person]
    return {
        "person": person,
        "borough": borough,
        "day": day,
        "rank": rank,
        "sex": sex,
        "band": band,
    }


def load(engine: Engine, data: dict[str, np.ndarray]) -> None:
    pg = engine.dialect.name == "postgresql"
    rows = data["person"].size
    with engine.begin() as connection:
        for table in (
            "record_persons",
            "records",
            "uploads",
            "releases",
            "budget_spends",
            "query_budgets",
            "dimension_values",
        ):
            # PostgreSQL: TRUNCATE leaves no dead rows behind from an earlier size
            verb = "TRUNCATE TABLE {} CASCADE" if pg else "DELETE FROM {}"
            connection.execute(text(verb.format(table)))
        connection.execute(
            insert(UploadRow).values(
                id=1,
                upload_id="bench",
                agreement_id="london-vru-partnership",
                agreement_version=1,
                dataset=DATASET,
                sha256="0" * 64,
                size_bytes=0,
                rows_read=rows,
                rows_accepted=rows,
                rows_rejected=0,
                key_version=1,
                status="stored",
                live=1,
                created_at=datetime.now(UTC),
                receipt={},
            )
        )
    days = [START + timedelta(days=int(d)) for d in range(DAYS)]
    day_values: list[Any] = days if pg else [d.isoformat() for d in days]
    record_cols = ["upload_pk", *RECORD_COLUMNS, "key_version", "match_key_mask", "match_keys"]
    person_cols = [
        "upload_pk",
        "row",
        "person_id",
        "dataset",
        "link_level",
        "link_key",
        "rank_in_dataset",
        "event_date",
        "month",
        "borough",
        "sex",
        "age_band",
        "first_mask",
    ]
    masks = query_facts_masks(data)
    month_names = sorted({d.isoformat()[:7] for d in days})
    month_code = [month_names.index(d.isoformat()[:7]) + 1 for d in days]
    dictionary = [
        *(("borough", v, i + 1) for i, v in enumerate(BOROUGHS)),
        *(("month", v, i + 1) for i, v in enumerate(month_names)),
        *(("sex", v, i + 1) for i, v in enumerate(SEXES)),
        *(("age_band", v, i + 1) for i, v in enumerate(BANDS)),
    ]
    with engine.begin() as connection:
        insert_rows(
            connection,
            DimensionValueRow.__table__,  # type: ignore[arg-type]
            ["dimension", "value", "code"],
            dictionary,
        )
    for lo in range(0, rows, CHUNK):
        hi = min(lo + CHUNK, rows)
        idx = range(lo, hi)
        records = [
            (1, i + 2, DATASET, day_values[d], BOROUGHS[b], SEXES[s], BANDS[a], "{}", 1, 0, b"")
            for i, d, b, s, a in zip(
                idx,
                data["day"][lo:hi].tolist(),
                data["borough"][lo:hi].tolist(),
                data["sex"][lo:hi].tolist(),
                data["band"][lo:hi].tolist(),
                strict=True,
            )
        ]
        persons = [
            (
                1,
                i + 2,
                f"p{p:09d}",
                DATASET,
                None,
                None,
                r,
                day_values[d],
                month_code[d],
                b + 1,
                s + 1,
                a + 1,
                m,
            )
            for i, p, r, d, b, s, a, m in zip(
                idx,
                data["person"][lo:hi].tolist(),
                data["rank"][lo:hi].tolist(),
                data["day"][lo:hi].tolist(),
                data["borough"][lo:hi].tolist(),
                data["sex"][lo:hi].tolist(),
                data["band"][lo:hi].tolist(),
                masks[lo:hi].to_list(),
                strict=True,
            )
        ]
        with engine.begin() as connection:
            insert_rows(connection, RecordRow.__table__, record_cols, records)  # type: ignore[arg-type]
            insert_rows(connection, RecordPersonRow.__table__, person_cols, persons)  # type: ignore[arg-type]
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()


def query_facts_masks(data: dict[str, np.ndarray]) -> pl.Series:
    """``first_mask`` of every row, as the linkage service computes it."""
    frame = pl.DataFrame(
        {
            "person": data["person"],
            "rank": data["rank"],
            "borough": data["borough"],
            "month": np.array([(START + timedelta(days=int(d))).month for d in range(DAYS)])[
                data["day"]
            ]
            + 100 * (data["day"] >= 365),
            "sex": data["sex"],
            "age_band": data["band"],
        }
    ).with_columns(
        pl.lit(DATASET).alias("dataset"),
        pl.lit("a").alias("agreement"),
        pl.lit(None, dtype=pl.String).alias("offence_group"),
        pl.lit(None, dtype=pl.String).alias("weapon"),
    )
    return first_masks(frame, partition=["person", "dataset", "agreement"], rank="rank")


def agreement_at_epsilon_one() -> Any:
    agreement = load_agreement(AGREEMENT_FILE)
    outputs = agreement.outputs
    budget = outputs.budget.model_copy(update={"epsilon_per_query": 1.0, "epsilon_per_period": 1e6})
    return agreement.model_copy(update={"outputs": outputs.model_copy(update={"budget": budget})})


def query(epsilon: float) -> Query:
    return Query(
        agreement_id="london-vru-partnership",
        dataset=DATASET,
        measure="count_persons",
        group_by=("borough", "month"),
        epsilon=epsilon,
    )


def truth(data: dict[str, np.ndarray], bound: int | None) -> np.ndarray:
    """Distinct persons per (borough, month) cell, keeping ranks <= bound; 33 x 24 cells."""
    month = np.array(
        [
            (START + timedelta(days=int(d))).month
            - 1
            + 12 * ((START + timedelta(days=int(d))).year - 2026)
            for d in range(DAYS)
        ]
    )[data["day"]]
    keep = slice(None) if bound is None else data["rank"] <= bound
    frame = pl.DataFrame({"p": data["person"][keep], "b": data["borough"][keep], "m": month[keep]})
    counts = frame.unique().group_by("b", "m").len()
    out = np.zeros((33, 24))
    out[counts["b"].to_numpy(), counts["m"].to_numpy()] = counts["len"].to_numpy()
    return out.ravel()


def opendp_frame(data: dict[str, np.ndarray]) -> tuple[pl.LazyFrame, pl.DataFrame]:
    """The same rows for OpenDP's Polars API: person, borough and month as integer codes
    (33 x 24 public keys), built from the generated arrays rather than read back."""
    month = np.array(
        [
            (d.year - START.year) * 12 + d.month - 1
            for d in (START + timedelta(days=int(x)) for x in range(DAYS))
        ]
    )[data["day"]]
    frame = pl.DataFrame(
        {"person_id": data["person"], "borough": data["borough"], "month": month}
    ).lazy()
    keys = pl.DataFrame(
        {"borough": np.repeat(np.arange(33), 24), "month": np.tile(np.arange(24), 33)}
    )
    return frame, keys


def opendp_polars(frame: pl.LazyFrame, keys: pl.DataFrame, k: int) -> float:
    import opendp.prelude

    dp: Any = opendp.prelude  # the prelude's polars helpers are not in its typed exports
    dp.enable_features("contrib")
    start = time.perf_counter()
    context = dp.Context.compositor(
        data=frame,
        privacy_unit=dp.unit_of(
            contributions=[
                dp.polars.Bound(per_group=1),
                dp.polars.Bound(by=["borough", "month"], num_groups=k),
            ],
            identifier="person_id",
        ),
        privacy_loss=dp.loss_of(epsilon=1.0),
        split_evenly_over=1,
        margins=[dp.polars.Margin(by=["borough", "month"], invariant="keys")],
    )
    (
        context.query()
        .truncate_per_group(1, by=["borough", "month"], keep="first")
        .truncate_num_groups(k, by=["borough", "month"], keep="first")
        .group_by("borough", "month")
        .agg(dp.len())
        .with_keys(keys)
        .release()
        .collect()
    )
    return time.perf_counter() - start


def run_backend(name: str, url: str, data: dict[str, np.ndarray], repeats: int) -> dict[str, Any]:
    upgrade_database(url)
    engine = make_engine(url)
    t0 = time.perf_counter()
    load(engine, data)
    load_s = time.perf_counter() - t0
    agreement = agreement_at_epsilon_one()
    service = QueryService(engine)
    times, bounds_chosen = [], []
    for i in range(repeats + 1):
        start = time.perf_counter()
        release = service.run(
            query(1.0 - i * 1e-6), agreement, organisation="mopac-vru", actor=SYSTEM
        )
        times.append(time.perf_counter() - start)
        bounds_chosen.append(release["contribution_bound"]["rows_per_person"])
    p = plan(query(1.0), agreement, date.today())
    with engine.connect() as connection:
        t = time.perf_counter()
        table = bounded_table(connection, p, bounds_chosen[0])
        sql_s = time.perf_counter() - t
    t = time.perf_counter()
    noise(p, table, bounds_chosen[0], 1.0)
    noise_s = time.perf_counter() - t
    engine.dispose()
    return {
        "backend": name,
        "load_s": load_s,
        "first": times[0],
        "p50": statistics.median(times[1:]),
        "times": times,
        "sql_s": sql_s,
        "noise_s": noise_s,
        "bounds": bounds_chosen,
    }


def errors(data: dict[str, np.ndarray], runs: int = 2_000) -> dict[str, Any]:
    """MAE per cell at epsilon 1 against unbounded truth: bias + noise, for fixed bounds with
    hindsight and for the hub's bound chosen from a fresh DP histogram each run (the histogram's
    own epsilon is paid once per population and period, not by each query)."""
    full = truth(data, None)
    bias = {k: float(np.mean(np.abs(full - truth(data, k)))) for k in range(1, MAX_ROWS + 1)}
    fixed = {k: bias[k] + bounds.discrete_laplace_mean_abs_error(k / 1.0) for k in range(1, 6)}
    persons_by_rows = Counter(np.bincount(data["person"]).tolist())
    cells = 33 * 24
    chosen = [
        bounds.count_bound(
            bounds.release_rows_histogram(persons_by_rows, epsilon=BOUND_SHARE, max_rows=MAX_ROWS),
            cells=cells,
            epsilon=1.0,
        )
        for _ in range(runs)
    ]
    ours = statistics.fmean(
        bias[k] + bounds.discrete_laplace_mean_abs_error(k / 1.0) for k in chosen
    )
    best = min(fixed, key=lambda k: fixed[k])
    return {
        "bias": bias,
        "fixed": fixed,
        "best": best,
        "ours": ours,
        "chosen": dict(sorted(Counter(chosen).items())),
    }


def report(
    rows: int, results: list[dict[str, Any]], err: dict[str, Any], odp: float, k: int
) -> str:
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on this machine (2 shared cores) by "
        f"`benchmarks/queries.py`: {rows:,} linked rows (persons with 1-5 records), a "
        "borough x month count of persons (792 cells) with the per-person bound chosen "
        f"from the data, epsilon 1 per query; the population's rows-per-person histogram "
        f"(epsilon {BOUND_SHARE:g}) is released by the first query and reused by the others.",
        "",
        "| backend | load | hub p50 (end to end, incl. budget transaction) "
        "| first query (also releases the histogram) | of which the SQL pass | noise (OpenDP) "
        "| bounds chosen |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['load_s']:.0f} s | {r['p50']:.3f} s | {r['first']:.3f} s "
            f"| {r['sql_s']:.3f} s | {r['noise_s'] * 1000:.1f} ms | {sorted(r['bounds'])} |"
        )
    lines.append(
        f"| OpenDP Polars (same rows, in memory; identifier person_id, truncate_per_group(1), "
        f"truncate_num_groups({k}), keys margin) | | {odp:.3f} s | | | | |"
    )
    lines += [
        "",
        "Mean absolute error per cell against the unbounded true counts, at epsilon 1 "
        "(bias from the bound + discrete Laplace noise E|X|):",
        "",
        "| bound | bias | noise | total |",
        "|---|---|---|---|",
    ]
    for k in range(1, 6):
        noise_mae = err["fixed"][k] - err["bias"][k]
        lines.append(
            f"| fixed {k} | {err['bias'][k]:.2f} | {noise_mae:.2f} | {err['fixed'][k]:.2f} |"
        )
    lines.append(f"| hub (DP-chosen, choices {err['chosen']}) | | | {err['ours']:.2f} |")
    lines.append("")
    lines.append(
        f"Best fixed bound with hindsight: {err['best']} ({err['fixed'][err['best']]:.2f} per "
        f"cell); the hub's data-chosen bound: {err['ours']:.2f} per cell."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="1000000", help="comma-separated sizes")
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/q_bench")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--odp-repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="write the Queries section")
    args = parser.parse_args()
    bodies = []
    for rows in [int(r) for r in args.rows.split(",")]:
        data = synthetic(rows)
        results = []
        with tempfile.TemporaryDirectory() as tmp:
            for backend in args.backends.split(","):
                url = f"sqlite:///{tmp}/bench.db" if backend == "sqlite" else args.pg_url
                result = run_backend(backend, url, data, args.repeats)
                print(result, flush=True)
                results.append(result)
        frame, keys = opendp_frame(data)
        k = int(statistics.median(results[0]["bounds"]))
        odp = [opendp_polars(frame, keys, k) for _ in range(args.odp_repeats)]
        print("opendp polars", odp, flush=True)
        err = errors(data)
        body = report(rows, results, err, statistics.median(odp) if odp else math.nan, k)
        print(body, flush=True)
        bodies.append(f"### {rows:,} linked rows\n\n{body}")
        del data, frame, results
    if args.write:
        from benchmarks.report import write_section

        write_section(
            Path(__file__).parents[1] / "docs/benchmarks.md", "Queries", "\n\n".join(bodies)
        )


if __name__ == "__main__":
    main()
