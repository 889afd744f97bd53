"""Benchmark: the audit log at 1,000,000 events on SQLite.

Targets (issue 6): appends of at least 2,000 events/s sustained, batched in transactions and
one transaction per event; proofs in O(log n). Measures the append rate both ways, inclusion
and consistency proof latency (p50/p99 over random requests) and the time to export the log
and verify the export offline against a signed checkpoint, and to verify the database.

Run with `python -m benchmarks.audit --events 1000000`. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.report import write_section
from hub.api.audit import jsonl_lines
from hub.audit import AuditEvent, append_event
from hub.audit.ledger import (
    NoteSigner,
    consistency_proof,
    inclusion_proof,
    iter_export,
    make_checkpoint,
)
from hub.audit.verify import verify_database, verify_export
from hub.services import build_hub
from hub.settings import Settings
from tests.conftest import TEST_MASTER_SECRET


def event(i: int) -> AuditEvent:
    return AuditEvent(
        action=("upload.create", "query.release", "agreement.read", "audit.read")[i % 4],
        decision="deny" if i % 9 == 0 else "allow",
        reason="permitted by agreement london-vru-partnership, purpose vru-needs-assessment",
        actor=f"client-{i % 50:03d}",
        organisation=("met-police", "lb-hackney", "nhs-barts", "lb-lambeth")[i % 4],
        role="analyst",
        resource=f"agreements/london-vru-partnership/datasets/d{i % 6}",
        agreement_id="london-vru-partnership",
        request_id=f"{i:032x}",
        query_hash=f"{i:064x}" if i % 4 == 1 else None,
        epsilon_spent=0.05 if i % 4 == 1 else None,
        release_id=f"rel-{i}" if i % 4 == 1 else None,
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="events per transaction")
    parser.add_argument("--single", type=int, default=20_000, help="one-per-transaction events")
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            data_dir=Path(folder), database_url=None, master_secret=TEST_MASTER_SECRET
        )
        hub = build_hub(settings)
        engine = hub.engine
        signer = NoteSigner.from_key_file(settings.audit_origin, settings.signing_key_file)

        batched = args.events - args.single
        started = time.perf_counter()
        for start in range(0, batched, args.batch):
            with engine.begin() as connection:
                for i in range(start, min(start + args.batch, batched)):
                    append_event(connection, event(i))
        batched_rate = batched / (time.perf_counter() - started)
        print(f"batched appends: {batched_rate:,.0f} events/s over {batched:,}")
        checkpoint_before = make_checkpoint(engine, signer).note

        started = time.perf_counter()
        for i in range(batched, args.events):
            with engine.begin() as connection:
                append_event(connection, event(i))
        single_rate = args.single / (time.perf_counter() - started)
        print(f"single appends: {single_rate:,.0f} events/s over {args.single:,} (tree ~1M)")
        checkpoint = make_checkpoint(engine, signer).note
        size = args.events

        rng = random.Random(6)
        inclusion: list[float] = []
        consistency: list[float] = []
        with engine.connect() as connection:
            for _ in range(args.proofs):
                index = rng.randrange(size)
                t = time.perf_counter()
                inclusion_proof(connection, index, size)
                inclusion.append((time.perf_counter() - t) * 1000)
                first = rng.randrange(1, size + 1)
                t = time.perf_counter()
                consistency_proof(connection, first, size)
                consistency.append((time.perf_counter() - t) * 1000)
        print(
            f"inclusion p50 {statistics.median(inclusion):.2f} ms "
            f"p99 {percentile(inclusion, 0.99):.2f} ms; consistency p50 "
            f"{statistics.median(consistency):.2f} ms p99 {percentile(consistency, 0.99):.2f} ms"
        )

        export = Path(folder) / "audit.jsonl"
        started = time.perf_counter()
        with export.open("w", encoding="utf-8") as handle:
            handle.writelines(jsonl_lines(iter_export(engine)))
        export_seconds = time.perf_counter() - started
        started = time.perf_counter()
        with export.open("rb") as lines:
            verify_export(
                lines, checkpoint, signer.name, signer.public_key, previous_note=checkpoint_before
            )
        verify_seconds = time.perf_counter() - started
        export_mb = export.stat().st_size / 1e6
        print(
            f"export {export_seconds:.1f} s ({export_mb:.0f} MB); "
            f"offline verify {verify_seconds:.1f} s"
        )
        started = time.perf_counter()
        verify_database(engine, signer.name, signer.public_key)
        db_verify_seconds = time.perf_counter() - started
        print(f"database verify {db_verify_seconds:.1f} s")
        db_mb = Path(settings.resolved_database_url.removeprefix("sqlite:///")).stat().st_size
        engine.dispose()

    if args.write:
        rows = [
            ("measure", "figure"),
            ("---", "---"),
            (
                f"append, {args.batch:,} events per transaction",
                f"{batched_rate:,.0f} events/s over {batched:,}",
            ),
            (
                f"append, one transaction per event (tree at {batched:,}+)",
                f"{single_rate:,.0f} events/s over {args.single:,}",
            ),
            (
                f"inclusion proof at size {size:,}, p50 / p99",
                f"{statistics.median(inclusion):.2f} / {percentile(inclusion, 0.99):.2f} ms",
            ),
            (
                f"consistency proof to size {size:,}, p50 / p99",
                f"{statistics.median(consistency):.2f} / {percentile(consistency, 0.99):.2f} ms",
            ),
            (f"export to JSON Lines ({export_mb:,.0f} MB)", f"{export_seconds:.1f} s"),
            (
                "verify the export offline (every leaf, root, signature, consistency)",
                f"{verify_seconds:.1f} s",
            ),
            (
                "`hub audit verify --database` (every leaf and node, every checkpoint)",
                f"{db_verify_seconds:.1f} s",
            ),
        ]
        table = "\n".join(f"| {a} | {b} |" for a, b in rows)
        body = f"""
Measured {datetime.now(UTC):%Y-%m-%d} on {platform.machine()} ({os.cpu_count()} cores shared
with other work, {platform.python_implementation()} {platform.python_version()}, SQLite in WAL
mode), `python -m benchmarks.audit --events {args.events}`. Events are realistic (all fields,
a quarter with query hash, epsilon and release id). Database {db_mb / 1e6:,.0f} MB at the end.

{table}

Proofs read only the O(log n) stored subtree nodes they need (one indexed query); latency is
in-process (no HTTP).
"""
        write_section(Path("docs/benchmarks.md"), f"Audit log: {args.events:,} events", body)


if __name__ == "__main__":
    main()
