"""Linkage benchmark: match-key cascade + keyed Bloom filters vs Splink, on the synth generator.

Run: .venv/bin/python benchmarks/linkage.py [--scale 3.5] [--million] [--no-splink] [--write]
The main run (scale 3.5) gives ~70,000 police records and ~168,000 records over six agencies.
Each agency CSV is read with ``adapters``, pseudonymised with a ``Pseudonymiser`` (match keys)
and a ``BloomEncoder`` (CLKs), linked with ``Linker`` then ``bloom_link``; Splink 5 (DuckDB) links
the same canonical records on cleartext. Quality is pairwise against ground_truth.csv.
``--million`` also times 1,000,000 records through the cascade (synthetic key columns) and
reports peak RSS. ``--write`` writes the figures into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters import get_adapter
from adapters.readers import open_table
from benchmarks.report import write_section
from privacy.linkage.bloom import (
    ANCHOR_COLUMNS,
    ANCHOR_PASSES,
    BLOOM_PASSES,
    BloomEncoder,
    anchor_link,
    bloom_link,
    name_part_link,
)
from privacy.linkage.cascade import Linker, _components
from privacy.linkage.quality import (
    pairwise_quality,
    quality_by_dataset_pair,
    quality_by_step,
)
from privacy.matchkeys import MATCH_KEYS, STORED_KEY_BYTES, Pseudonymiser

MASTER = bytes(range(32))
DOMAIN = "benchmark"
DATASETS = (
    "police_violence_offences",
    "ae_istv_assaults",
    "school_exclusions",
    "youth_justice",
    "childrens_social_care",
    "probation",
)
SHORT = {
    "police_violence_offences": "police",
    "ae_istv_assaults": "ae",
    "school_exclusions": "schools",
    "youth_justice": "yjs",
    "childrens_social_care": "csc",
    "probation": "probation",
}


@dataclass
class Loaded:
    canonical: pl.DataFrame  # record_id, upload, dataset, truth + canonical identifier columns
    keyed: pl.DataFrame  # record_id, upload, match-key digests, bloom columns
    seconds_read: float
    seconds_keys: float
    cpu_keys: float  # match keys (Pseudonymiser), process CPU seconds
    cpu_bloom: float  # BloomEncoder (CLKs, block and anchor tokens), process CPU seconds
    cpu_bloom_warm: float  # the same encoder over the same extracts again (caches warm)


def load(out_dir: Path) -> Loaded:
    """Read every extract with its adapter and pseudonymise it."""
    truth = pl.read_csv(out_dir / "ground_truth.csv", schema_overrides={"row": pl.Int64})
    canon_parts, keyed_parts, raw = [], [], []
    t_read = t_keys = cpu_keys = cpu_bloom = 0.0
    encoder = BloomEncoder(MASTER, DOMAIN, 1)
    for dataset in DATASETS:
        t0 = time.perf_counter()
        adapter = get_adapter(dataset)
        with (out_dir / f"{dataset}.csv").open("rb") as fh:
            table = open_table(fh, f"{dataset}.csv")
            first = 2
            frames = []
            for batch in table.batches:
                frames.append(adapter.map_batch(batch, first_row=first).frame)
                first += batch.height
        canon = pl.concat(frames, how="vertical_relaxed")
        raw.append(canon)
        t1 = time.perf_counter()
        c0 = time.process_time()
        keys = Pseudonymiser(MASTER, DOMAIN, 1, dataset=dataset).match_keys(canon)
        c1 = time.process_time()
        bloom = encoder.encode(canon)
        c2 = time.process_time()
        t2 = time.perf_counter()
        t_read += t1 - t0
        t_keys += t2 - t1
        cpu_keys += c1 - c0
        cpu_bloom += c2 - c1
        ids = pl.Series("record_id", [f"{SHORT[dataset]}:{r}" for r in canon["row"].to_list()])
        canon = canon.with_columns(
            ids, pl.lit(dataset).alias("upload"), pl.lit(dataset).alias("dataset")
        ).join(
            truth.filter(pl.col("dataset") == dataset).select("row", "person_id"),
            on="row",
            how="left",
        )
        canon_parts.append(
            canon.select(
                "record_id", "upload", "dataset", "person_id", "forename", "surname",
                "date_of_birth", "postcode", "sex", "nhs_number", "upn", "pnc_id",
                "event_date", *[c for c in ("age_at_attendance",) if c in canon.columns],
            )
        )
        keyed_parts.append(
            pl.concat([pl.DataFrame([ids, pl.Series("upload", [dataset] * len(ids))]), keys,
                       bloom], how="horizontal")
        )
    c3 = time.process_time()
    for canon in raw:  # steady state of an ingest: the encoder has seen these cohorts
        encoder.encode(canon)
    cpu_warm = time.process_time() - c3
    return Loaded(pl.concat(canon_parts, how="diagonal_relaxed"), pl.concat(keyed_parts),
                  t_read, t_keys, cpu_keys, cpu_bloom, cpu_warm)


def evidence_ceiling(canonical: pl.DataFrame) -> pl.DataFrame:
    """Labels of an oracle that knows the truth but links two records of one person only
    through evidence present in the extracts: all named records of a person (generous: as if
    every name variant were resolved), plus a shared NHS number, a shared DOB (day and month
    in either order) + postcode, or a shared postcode + birth year (from the DOB, or from the
    A&E age at attendance). What is left -- a nameless record sharing only DOB and sex with
    its person's other records -- no rule can link without linking other people too."""
    frame = canonical.with_row_index("i").with_columns(
        pl.col("postcode").str.replace_all(" ", "").str.to_uppercase().alias("pc"),
        (pl.col("forename").is_not_null() | pl.col("surname").is_not_null()).alias("named"),
        pl.coalesce(
            pl.col("date_of_birth").dt.year(),
            pl.col("event_date").dt.year() - pl.col("age_at_attendance"),
        ).alias("yr"),
        pl.concat_str(
            [pl.col("date_of_birth").dt.year(),
             pl.min_horizontal(pl.col("date_of_birth").dt.day(),
                               pl.col("date_of_birth").dt.month()),
             pl.max_horizontal(pl.col("date_of_birth").dt.day(),
                               pl.col("date_of_birth").dt.month())],
            separator="-",
        ).alias("dob_either"),
    )
    a_parts, b_parts = [], []
    for evidence in (["named"], ["nhs_number"], ["dob_either", "pc"], ["pc", "yr"]):
        subset = frame.filter(pl.col("named")) if evidence == ["named"] else frame
        groups = subset.drop_nulls(evidence).group_by(["person_id", *evidence]).agg(
            pl.col("i").first().alias("h"), pl.col("i")
        ).explode("i")
        a_parts.append(groups["i"].to_numpy())
        b_parts.append(groups["h"].to_numpy())
    comp = _components(frame.height, np.concatenate(a_parts).astype(np.int64),
                       np.concatenate(b_parts).astype(np.int64))
    return pl.DataFrame({"label": comp})


def run_ours(data: Loaded) -> dict[str, object]:
    c0 = time.process_time()
    t0 = time.perf_counter()
    linker = Linker(MASTER, DOMAIN, 1)
    linker.add(data.keyed)
    t1 = time.perf_counter()
    ids, labels = linker.labels()
    assert ids == data.keyed["record_id"].to_list()
    cascade_labels = labels.copy()
    # the passes of bloom_cascade and anchor_cascade, one by one (the same work), so that each
    # pass's labels can be scored
    steps: list[tuple[str, int, np.ndarray]] = []
    bloom_links = 0
    for bloom_pass in BLOOM_PASSES:
        result = bloom_link(data.keyed, labels, bloom_pass=bloom_pass)
        labels, bloom_links = result.labels, bloom_links + result.links
        steps.append((bloom_pass.column, 5, labels))
    labels, joined = name_part_link(data.keyed, labels)
    bloom_links += joined
    steps.append(("name_part", 5, labels))
    bloomed = labels.copy()
    attached = []
    for anchor_pass in ANCHOR_PASSES:
        labels, count = anchor_link(data.keyed, labels, anchor_pass=anchor_pass)
        attached.append(count)
        steps.append((f"anchor_{anchor_pass.name}", 6, labels))
    final = labels
    t2 = time.perf_counter()
    c2 = time.process_time()
    truth = data.canonical["person_id"]
    return {
        "cascade_seconds": t1 - t0,
        "bloom_seconds": t2 - t1,
        "cpu_seconds": c2 - c0,
        "cascade": pairwise_quality(cascade_labels, truth),
        "bloom": pairwise_quality(bloomed, truth),
        "final": pairwise_quality(final, truth),
        "bloom_links": bloom_links,
        "anchor_links": attached,
        "by_pair": quality_by_dataset_pair(final, truth, data.canonical["dataset"]),
        "by_step": quality_by_step([*linker.trace(data.keyed), *steps], truth),
    }


def run_splink(data: Loaded) -> dict[str, object]:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, SettingsCreator, block_on
    from splink import Linker as SplinkLinker

    frame = data.canonical.select(
        pl.col("record_id").alias("unique_id"),
        pl.col("dataset").alias("source_dataset"),
        "forename", "surname",
        pl.col("date_of_birth").cast(pl.String).alias("dob"),
        "postcode", "sex", "nhs_number", "upn", "pnc_id",
    ).to_arrow()
    c0 = time.process_time()
    t0 = time.perf_counter()
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.NameComparison("forename"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.PostcodeComparison("postcode"),
            cl.ExactMatch("sex"),
            cl.ExactMatch("nhs_number"),
            cl.ExactMatch("upn"),
            cl.ExactMatch("pnc_id"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("nhs_number"),
            block_on("upn"),
            block_on("pnc_id"),
            block_on("dob", "surname"),
            block_on("dob", "forename"),
            block_on("dob", "postcode"),
            block_on("forename", "surname"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI()
    linker = SplinkLinker(db_api.register(frame), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("forename", "surname", "dob")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("surname"))
    predictions = linker.inference.predict(threshold_match_probability=0.99)
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=0.99
    )
    clusters = pl.from_arrow(clustered.as_pyarrow_table())  # type: ignore[no-untyped-call]
    assert isinstance(clusters, pl.DataFrame)
    t1 = time.perf_counter()
    c1 = time.process_time()
    joined = data.canonical.select("record_id", "person_id").join(
        clusters.select(pl.col("unique_id").alias("record_id"), "cluster_id"), on="record_id"
    )
    return {
        "seconds": t1 - t0,
        "cpu_seconds": c1 - c0,
        "quality": pairwise_quality(joined["cluster_id"], joined["person_id"]),
    }


def synthetic_keys(n: int, seed: int = 1) -> pl.DataFrame:
    """``n`` records of ~n/2.5 people with random digests per key (a stress test of the
    clustering machinery, not of quality): each record keeps each key of its person with
    probability 0.8, else the key is null or (5%) a fresh random value."""
    rng = np.random.default_rng(seed)
    people = max(1, int(n / 2.5))
    person = rng.integers(0, people, n)
    cols: dict[str, pl.Series] = {
        "record_id": pl.Series(np.char.add("r", np.arange(n).astype(str))),
        "upload": pl.Series((np.arange(n) // 100_000).astype(str)),
    }
    for j, spec in enumerate(MATCH_KEYS):
        base = rng.integers(1, 2**63, people, dtype=np.int64) + j
        vals = base[person]
        roll = rng.random(n)
        vals = np.where(roll < 0.05, rng.integers(1, 2**63, n, dtype=np.int64), vals)
        raw = vals.astype("<u8").view(np.uint8).reshape(n, 8)
        digests = [bytes(row) + b"\x00" * 24 for row in raw]
        series = pl.Series(spec.name, digests, dtype=pl.Binary)
        cols[spec.name] = series.set(pl.Series(roll > 0.8), None)
    return pl.DataFrame(cols)


# ---------------------------------------------------------------- the hub's linkage service


class _Domains:
    """Stands in for the agreement registry: every agreement maps to one linkage domain."""

    class _Agreement:
        linkage_domain = DOMAIN

    def get(self, agreement_id: str) -> _Agreement:
        return self._Agreement()


def _stored_form(frame: pl.DataFrame) -> tuple[np.ndarray, list[bytes]]:
    """``match_key_mask`` and ``match_keys`` blobs (privacy.matchkeys.pack_match_keys layout:
    the first 8 bytes of each digest) of a frame of Binary digest columns."""
    n, width = frame.height, len(MATCH_KEYS)
    digests = np.zeros((n, width, 32), dtype=np.uint8)
    present = np.zeros((n, width), dtype=bool)
    for j, spec in enumerate(MATCH_KEYS):
        column = frame[spec.name]
        valid = column.is_not_null().to_numpy()
        present[:, j] = valid
        raw = b"".join(column.drop_nulls().to_list())
        digests[valid, j] = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 32)
    mask = (present.astype(np.int64) << np.arange(width, dtype=np.int64)).sum(axis=1)
    flat = digests[present][:, :STORED_KEY_BYTES].tobytes()
    ends = np.cumsum(present.sum(axis=1) * STORED_KEY_BYTES)
    starts = np.concatenate([[0], ends[:-1]])
    return mask, [flat[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def hub_database(path: Path, n: int, uploads: int) -> str:
    """A hub database (SQLite) holding ``n`` synthetic records in ``uploads`` uploads, none
    linked yet; plus a held-back upload of n/100 records (returned pending)."""
    from datetime import UTC, date, datetime

    from sqlalchemy import insert

    from hub.bulk import insert_rows
    from hub.db import make_engine, upgrade_database
    from hub.models import RecordAnchorBatchRow, RecordRow, UploadRow
    from hub.records import batch_blob, clk_blob

    url = f"sqlite:///{path}"
    upgrade_database(url)
    engine = make_engine(url)
    extra = n // 100
    frame = synthetic_keys(n + extra)
    anchors = synthetic_anchors(n + extra)
    mask, blobs = _stored_form(frame)
    per = n // uploads
    bounds = [(i * per, (i + 1) * per) for i in range(uploads)] + [(n, n + extra)]
    with engine.begin() as connection:
        for u, (lo, hi) in enumerate(bounds):
            pk = connection.execute(
                insert(UploadRow).values(
                    upload_id=f"upl_{u}", agreement_id="bench", agreement_version=1,
                    dataset="police_violence_offences", sha256=f"{u:064d}", size_bytes=0,
                    rows_read=hi - lo, rows_accepted=hi - lo, rows_rejected=0, key_version=1,
                    status="stored" if u < uploads else "receiving",
                    live=1 if u < uploads else None, created_at=datetime.now(UTC), receipt={},
                ).returning(UploadRow.id)
            ).scalar_one()
            day = date(2026, 1, 1).toordinal()
            rows = [
                (pk, r - lo + 2, "police_violence_offences",
                 date.fromordinal(day + r % 300).isoformat(), None, None, None, "{}", 1,
                 int(mask[r]), blobs[r])
                for r in range(lo, hi)
            ]
            insert_rows(
                connection, RecordRow.__table__,  # type: ignore[arg-type]
                ["upload_pk", "row", "dataset", "event_date", "borough_gss_code", "sex",
                 "age_band", "attributes", "key_version", "match_key_mask", "match_keys"],
                rows,
            )
            for first in range(lo, hi, 8192):  # anchors, per batch of rows as an ingest stores
                batch = anchors.slice(first, min(8192, hi - first))
                clk = batch["bloom_name_clk"]
                present = clk.is_not_null().to_numpy()
                rows_of_clk = np.zeros((batch.height, BloomEncoder.FOLDED_WORDS), np.uint64)
                rows_of_clk[present] = clk.filter(clk.is_not_null()).to_numpy()
                connection.execute(
                    insert(RecordAnchorBatchRow).values(
                        upload_pk=pk, first_row=first - lo + 2, rows=batch.height,
                        body=batch_blob(batch.drop("bloom_name_clk").with_columns(
                            (pl.int_range(pl.len()) + first - lo + 2).alias("row")
                        ), compression="lz4"),
                        clks=clk_blob(rows_of_clk, present),
                    )
                )
    engine.dispose()
    return url


def synthetic_anchors(n: int, seed: int = 2) -> pl.DataFrame:
    """Anchor fingerprints and name CLKs for ``synthetic_keys``' records (same people: seed 1
    picks them again): per person a value of each anchor, 20% of records nameless, 10% of
    values missing; the date of birth (the Bloom pass's block) is drawn from a pool of one per
    15 people, as birthdays are shared in a city; per named record the person's random
    1,024-bit CLK, with 8% of its bits flipped on one record in five (a misspelling). Random
    values, so this measures the stages' cost, not their quality."""
    person = np.random.default_rng(1).integers(0, max(1, int(n / 2.5)), n)
    rng = np.random.default_rng(seed)
    people = int(person.max()) + 1
    cols: dict[str, pl.Series] = {}
    for name in ANCHOR_COLUMNS:
        pool = max(1, people // 15) if name == "anchor_dob" else people
        values = rng.integers(1, 2**63, pool, dtype=np.int64).astype(np.uint64)
        of_person = values[rng.integers(0, pool, people)] if pool < people else values
        cols[name] = pl.Series(name, of_person[person]).set(pl.Series(rng.random(n) < 0.1), None)
    named = rng.random(n) >= 0.2
    cols["bloom_named"] = pl.Series("bloom_named", named)
    words = BloomEncoder.FOLDED_WORDS
    clks = rng.integers(0, 2**63, (people, words), dtype=np.int64).astype(np.uint64)[person]
    misspelt = rng.random(n) < 0.2
    flips = (rng.random((int(misspelt.sum()), words * 64)) < 0.08).astype(np.uint8)
    clks[misspelt] ^= np.packbits(flips, axis=1).view(np.uint64)
    cols["bloom_name_clk"] = pl.select(
        pl.when(pl.Series(named)).then(pl.Series("bloom_name_clk", clks))
    ).to_series()
    return pl.DataFrame(cols)


def hub_phase(url: str, phase: str) -> dict[str, float]:
    """One measured phase in this process: ``link`` (link every pending record), ``restart``
    (rebuild the linker from the stored keys and persons, then link and withdraw one more
    upload)."""
    from sqlalchemy import update

    from hub.db import make_engine
    from hub.linkage import LinkageService
    from hub.models import UploadRow

    engine = make_engine(url)
    service = LinkageService(engine, _Domains(), MASTER, 1)  # type: ignore[arg-type]
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    examined = service.catch_up()
    out["seconds"] = time.perf_counter() - t0
    out["examined"] = examined
    if phase == "restart":
        with engine.begin() as connection:  # the held-back upload commits
            connection.execute(
                update(UploadRow).where(UploadRow.status == "receiving")
                .values(status="stored", live=1)
            )
            upload_id = connection.execute(
                UploadRow.__table__.select().order_by(UploadRow.id.desc()).limit(1)
            ).first()[1]  # type: ignore[index]
        t1 = time.perf_counter()
        out["upload_examined"] = service.link_upload(upload_id)
        out["upload_seconds"] = time.perf_counter() - t1
        with engine.begin() as connection:
            connection.execute(
                update(UploadRow).where(UploadRow.upload_id == upload_id)
                .values(status="withdrawn", live=None)
            )
            from sqlalchemy import delete

            from hub.models import RecordRow

            pk = connection.execute(
                UploadRow.__table__.select().where(UploadRow.upload_id == upload_id)
            ).first()[0]  # type: ignore[index]
            connection.execute(delete(RecordRow).where(RecordRow.upload_pk == pk))
        t2 = time.perf_counter()
        out["withdraw_examined"] = service.after_withdrawal(upload_id)
        out["withdraw_seconds"] = time.perf_counter() - t2
    out["peak_rss_mib"] = peak_rss_mib()
    engine.dispose()
    return out


def run_hub(n: int, uploads: int = 10) -> dict[str, dict[str, float]]:
    """Build the database, then measure each phase in a fresh process (clean peak RSS)."""
    import json
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        url = hub_database(Path(tmp) / "hub.db", n, uploads)
        print(f"hub database with {n:,} records built in {time.perf_counter() - t0:.0f} s")
        results = {}
        for phase in ("link", "restart"):
            done = subprocess.run(
                [sys.executable, __file__, "--hub-phase", phase, "--hub-url", url],
                check=True, capture_output=True, text=True,
            )
            results[phase] = json.loads(done.stdout.strip().splitlines()[-1])
            print(phase, results[phase])
    return results


def run_million() -> tuple[float, float, float]:
    """1,000,000 synthetic records through the cascade in a fresh process, so that its peak
    RSS is its own (not Splink's, which ran in this one): (seconds, MiB before, peak MiB)."""
    import json
    import subprocess

    done = subprocess.run(
        [sys.executable, __file__, "--million-phase"], check=True, capture_output=True, text=True
    )
    seconds, before, peak = json.loads(done.stdout.strip().splitlines()[-1])
    return float(seconds), float(before), float(peak)


def peak_rss_mib() -> float:
    """Peak resident memory of this process. VmHWM belongs to the process image, so a child
    started with subprocess does not inherit its parent's peak (ru_maxrss does, after fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=3.5)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--no-splink", action="store_true")
    ap.add_argument("--million", action="store_true")
    ap.add_argument("--million-phase", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--hub", type=int, default=0, help="records for the hub service run")
    ap.add_argument("--hub-phase", help=argparse.SUPPRESS)
    ap.add_argument("--hub-url", help=argparse.SUPPRESS)
    ap.add_argument("--no-quality", action="store_true")
    args = ap.parse_args()
    if args.hub_phase:
        import json

        print(json.dumps(hub_phase(args.hub_url, args.hub_phase)))
        return
    if args.million_phase:
        import json

        frame = synthetic_keys(1_000_000)
        rss_before = peak_rss_mib()
        t0 = time.perf_counter()
        Linker(MASTER, DOMAIN, 1).add(frame)
        print(json.dumps([time.perf_counter() - t0, rss_before, peak_rss_mib()]))
        return
    if args.no_quality:
        if args.hub:
            run_hub(args.hub)
        return
    from synth import generate

    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        summary = generate(Path(tmp), scale=args.scale, seed=args.seed)
        data = load(Path(tmp))
    n = data.keyed.height
    data_read, data_keys = data.seconds_read, data.seconds_keys
    ours = run_ours(data)
    print(f"records {n:,}  read {data.seconds_read:.1f}s  keys+bloom {data.seconds_keys:.1f}s")
    for name in ("cascade", "bloom", "final"):
        q = ours[name]
        print(f"{name}: P={q.precision:.5f} R={q.recall:.5f} F1={q.f1:.5f}")  # type: ignore[attr-defined]
    print(
        f"cascade {ours['cascade_seconds']:.2f}s bloom {ours['bloom_seconds']:.2f}s "
        f"links {ours['bloom_links']} anchor {ours['anchor_links']}"
    )
    with pl.Config(tbl_rows=40, tbl_cols=12, tbl_width_chars=160):
        print(ours["by_step"])
        print(ours["by_pair"])
    splink = None if args.no_splink else run_splink(data)
    if splink:
        q = splink["quality"]
        print(f"splink: P={q.precision:.5f} R={q.recall:.5f} {splink['seconds']:.1f}s")  # type: ignore[attr-defined]
    ceiling = evidence_ceiling(data.canonical)["label"]
    ceiling_q = pairwise_quality(ceiling, data.canonical["person_id"])
    ceiling_ae = quality_by_dataset_pair(
        ceiling, data.canonical["person_id"], data.canonical["dataset"]
    ).filter((pl.col("left") == "ae_istv_assaults") | (pl.col("right") == "ae_istv_assaults"))
    print(f"evidence ceiling: R={ceiling_q.recall:.5f}")
    encoding = (data.cpu_keys, data.cpu_bloom, data.cpu_bloom_warm)
    million = None
    if args.million:
        del data
        gc.collect()
        million = run_million()
        print(f"1M cascade: {million[0]:.1f}s, peak RSS {million[2]:.0f} MiB")
    q_c, q_f = ours["cascade"], ours["final"]
    lines += [
        f"Measured {time.strftime('%Y-%m-%d')} on the development machine (2 shared cores), "
        f"`benchmarks/linkage.py --scale {args.scale}`: synth seed {args.seed}, "
        f"{n:,} records over six agencies ({summary.rows['police_violence_offences']:,} police).",
        "",
        "| method | precision | recall | F1 | link time (s) | CPU time (s) |",
        "|---|---|---|---|---|---|",
        f"| match-key cascade only (pseudonymised) | {q_c.precision:.4f} | {q_c.recall:.4f} | "  # type: ignore[attr-defined]
        f"{q_c.f1:.4f} | {ours['cascade_seconds']:.2f} | |",  # type: ignore[attr-defined]
        f"| cascade + Bloom + surname parts + anchors (pseudonymised) | {q_f.precision:.4f} | "  # type: ignore[attr-defined]
        f"{q_f.recall:.4f} | {q_f.f1:.4f} | "  # type: ignore[attr-defined]
        f"{ours['cascade_seconds'] + ours['bloom_seconds']:.2f} | "  # type: ignore[operator]
        f"{ours['cpu_seconds']:.2f} |",
    ]
    if splink:
        q = splink["quality"]
        lines.append(
            f"| Splink {splink_version()} (cleartext, DuckDB, p >= 0.99) | {q.precision:.4f} | "  # type: ignore[attr-defined]
            f"{q.recall:.4f} | {q.f1:.4f} | {splink['seconds']:.1f} | "  # type: ignore[attr-defined]
            f"{splink['cpu_seconds']:.1f} |"
        )
    lines += [
        "",
        f"Reading + adapters: {data_read:.1f} s; match keys + Bloom encoding: {data_keys:.1f} s "
        "(ingest cost, not linkage). Link time excludes them for both methods "
        "(Splink's includes training).",
        "",
        f"Ingest-side encoding, CPU time per record ({n:,} records; process CPU, so other "
        "load on the shared machine counts less than in wall time): match keys "
        f"{encoding[0] / n * 1e6:.1f} us; `BloomEncoder.encode` (two hardened CLKs, block, "
        f"anchor and name-part tokens) {encoding[1] / n * 1e6:.1f} us with cold caches "
        "(every field|year|bigram pattern computed for the first time), "
        f"{encoding[2] / n * 1e6:.1f} us in the steady state of an ingest (the same "
        "extracts encoded again by the same encoder: patterns cached).",
    ]
    if million:
        lines += [
            "",
            "1,000,000 records through the cascade (synthetic digests, the 11 keys of the "
            f"default cascade, ~400k people, one `Linker.add`): "
            f"{million[0]:.1f} s, peak RSS {million[2]:.0f} MiB "
            f"({million[1]:.0f} MiB before the run, mostly the input frame).",
        ]
    lines += ["", "Final quality split by whether a pair involves an A&E record:", ""]
    pairs = ours["by_pair"]
    assert isinstance(pairs, pl.DataFrame)
    ae = (pl.col("left") == "ae_istv_assaults") | (pl.col("right") == "ae_istv_assaults")
    for label, subset in (("pairs without an A&E record", pairs.filter(~ae)),
                          ("pairs with an A&E record (no names)", pairs.filter(ae))):
        tp, pred, act = (int(subset[c].sum()) for c in ("true_positive", "predicted", "actual"))
        p_, r_ = tp / max(pred, 1), tp / max(act, 1)
        lines.append(
            f"- {label}: precision {p_:.4f}, recall {r_:.4f}, F1 {2 * p_ * r_ / (p_ + r_):.4f} "
            f"({act:,} true pairs)"
        )
    q = ceiling_q
    ae_tp, ae_act = int(ceiling_ae["true_positive"].sum()), int(ceiling_ae["actual"].sum())
    lines += [
        "",
        "Evidence ceiling (`evidence_ceiling`: an oracle that links two records of one "
        "person only through evidence in the extracts -- any name, a shared NHS number, "
        "DOB + postcode, or postcode + birth year): "
        f"recall {q.recall:.4f} overall, {ae_tp / ae_act:.4f} for pairs with an A&E record; "
        f"{q.actual - q.true_positive:,} true pairs ({1 - q.recall:.2%}) share nothing "
        "but DOB and sex (+ ethnicity).",
    ]
    if args.hub:
        hub = run_hub(args.hub)
        link, restart = hub["link"], hub["restart"]
        lines += [
            "",
            f"The hub's `LinkageService` on SQLite, {args.hub:,} stored records (synthetic "
            "digests, 10 uploads), each phase in a fresh process:",
            "",
            "| phase | time (s) | peak RSS (MiB) |",
            "|---|---|---|",
            f"| link all pending records (cold start: unpack keys, cascade, write "
            f"record_persons and persons) | {link['seconds']:.1f} | {link['peak_rss_mib']:.0f} |",
            f"| restart: rebuild the linker from stored keys and persons (no re-linking) | "
            f"{restart['seconds']:.1f} | {restart['peak_rss_mib']:.0f} |",
            f"| then link one more upload of {args.hub // 100:,} records | "
            f"{restart['upload_seconds']:.2f} | |",
            f"| then withdraw it (re-link the persons it touched) | "
            f"{restart['withdraw_seconds']:.2f} | |",
        ]
    steps = ours["by_step"]
    assert isinstance(steps, pl.DataFrame)
    by_level = (
        steps.group_by("level", maintain_order=True)
        .agg(
            pl.col("key").str.join(", ").alias("keys"),
            pl.col("added").sum(),
            pl.col("added_true").sum(),
            pl.col("cumulative_precision").last(),
            pl.col("cumulative_recall").last(),
            pl.col("cumulative_f1").last(),
        )
        .with_columns(
            (pl.col("added_true") / pl.col("added")).fill_nan(1.0).alias("precision_added")
        )
        .select("level", "keys", "added", "added_true", "precision_added",
                "cumulative_precision", "cumulative_recall", "cumulative_f1")
    )
    lines += ["", "Per cascade level (5 = Bloom passes and surname parts, 6 = nameless anchors; "
              "pairs added and "
              "quality after the level):", "", markdown(by_level)]
    lines += ["", "Per cascade step (pairs added):", "", markdown(ours["by_step"]),  # type: ignore[arg-type]
              "", "Per agency pair (final):", "", markdown(ours["by_pair"])]  # type: ignore[arg-type]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md",
                      "Linkage", text)


def splink_version() -> str:
    from importlib.metadata import version

    return version("splink")


def markdown(frame: pl.DataFrame) -> str:
    def cell(v: object) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * frame.width
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([head, rule, *body])


if __name__ == "__main__":
    main()
