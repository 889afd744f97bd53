"""What the hub itself links: synth extracts uploaded through a real hub, scored.

``benchmarks/linkage.py`` measures the linkage stages on frames in memory; this runs the hub's
own path end to end: ``Ingestor`` (match keys and anchors made at ingest and stored),
``LinkageService`` after each upload (cascade, then the anchor stage), on SQLite in a temporary
folder. The persons are read back from ``record_persons`` and scored against the generator's
ground truth (pairwise precision, recall and F1, overall and per dataset pair), with the
records linked at each level as an IG lead sees them.

    python -m benchmarks.hub_linkage --scale 1.0
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl
from sqlalchemy import select

from hub.demo import DEMO_AGREEMENT, DEMO_MONTHS, DEMO_START, register_examples
from hub.linkage import linkage_counts
from hub.models import RecordPersonRow, RecordRow, UploadRow
from hub.services import build_hub
from hub.settings import Settings
from privacy.linkage.quality import pairwise_quality, quality_by_dataset_pair

MASTER_SECRET = "5a" * 32


def run(scale: float, seed: int, work: Path) -> None:
    from synth import generate

    extracts = work / "extracts"
    summary = generate(extracts, scale=scale, seed=seed, start=DEMO_START, months=DEMO_MONTHS)
    settings = Settings(
        data_dir=work / "data",
        database_url=f"sqlite:///{work / 'hub.db'}",
        master_secret=MASTER_SECRET,
    )
    hub = build_hub(settings)
    register_examples(hub, work / "keys")
    agreement = hub.agreements.get(DEMO_AGREEMENT)
    ingest_seconds = link_seconds = 0.0
    for dataset, path in summary.files.items():
        t0 = time.perf_counter()
        with path.open("rb") as handle:
            receipt = hub.ingestor.ingest(
                handle, filename=path.name, agreement=agreement, dataset=dataset
            )
        t1 = time.perf_counter()
        hub.linkage.link_upload(receipt["upload_id"])
        t2 = time.perf_counter()
        ingest_seconds += t1 - t0
        link_seconds += t2 - t1
        print(f"{dataset}: {receipt['rows_accepted']:,} records, ingest {t1 - t0:.1f} s, "
              f"link {t2 - t1:.1f} s")

    with hub.engine.connect() as connection:
        stored = pl.DataFrame(
            connection.execute(
                select(RecordRow.dataset, RecordRow.row, RecordPersonRow.person_id)
                .join(UploadRow, UploadRow.id == RecordRow.upload_pk)
                .join(
                    RecordPersonRow,
                    (RecordPersonRow.upload_pk == RecordRow.upload_pk)
                    & (RecordPersonRow.row == RecordRow.row),
                )
            ).all(),
            schema={"dataset": pl.String, "row": pl.Int64, "person_id": pl.String},
            orient="row",
        )
        counts = linkage_counts(connection, DEMO_AGREEMENT)
    truth = pl.read_csv(extracts / "ground_truth.csv", schema_overrides={"row": pl.Int64})
    scored = stored.join(
        truth.rename({"person_id": "truth"}), on=["dataset", "row"], how="inner"
    )
    quality = pairwise_quality(scored["person_id"], scored["truth"])
    by_pair = quality_by_dataset_pair(scored["person_id"], scored["truth"], scored["dataset"])

    print()
    print(f"synth scale {scale}, seed {seed}: {stored.height:,} records linked "
          f"({scored.height:,} with ground truth); ingest {ingest_seconds:.1f} s, "
          f"linking {link_seconds:.1f} s in all")
    print(f"pairwise precision {quality.precision:.4f}, recall {quality.recall:.4f}, "
          f"F1 {quality.f1:.4f}")
    print()
    print(by_pair)
    print()
    levels = sorted({k for per in counts.values() for k in per})
    print("| dataset | " + " | ".join(levels) + " |")
    print("|---|" + "---:|" * len(levels))
    for dataset, per in sorted(counts.items()):
        print(f"| {dataset} | " + " | ".join(f"{per.get(k, 0):,}" for k in levels) + " |")
    hub.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-linkage-") as work:
        run(args.scale, args.seed, Path(work))


if __name__ == "__main__":
    main()
