"""Generate a linked set of synthetic agency extracts with ground truth."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from synth import records
from synth.errors import ERROR_RATES, MISSING_RATES
from synth.identifiers import IssuedIdentifiers
from synth.layouts import DATASETS, load_layouts
from synth.population import Person, build_population
from synth.records import Context, Record

# Rows per dataset at scale 1.0: "a London year in miniature".
BASE_ROWS: dict[str, int] = {
    "police_violence_offences": 20_000,
    "ae_istv_assaults": 6_000,
    "school_exclusions": 8_000,
    "youth_justice": 3_000,
    "childrens_social_care": 6_000,
    "probation": 5_000,
}
POPULATION_PER_SCALE = 32_000
TWIN_RATE = 0.01

# Records per person: weights for 1, 2, 3, 4, 5 records in one dataset.
REPEATS: dict[str, tuple[int, ...]] = {
    "police_violence_offences": (55, 22, 12, 7, 4),
    "ae_istv_assaults": (75, 15, 6, 3, 1),
    "school_exclusions": (50, 25, 13, 8, 4),
    "youth_justice": (55, 22, 12, 7, 4),
    "childrens_social_care": (80, 13, 5, 2, 0),
    "probation": (80, 14, 4, 2, 0),
}

# Who can appear in each dataset, by age at the middle of the window.
AGE_RANGES: dict[str, tuple[int, int]] = {
    "police_violence_offences": (10, 85),
    "ae_istv_assaults": (3, 85),
    "school_exclusions": (6, 16),
    "youth_justice": (10, 17),
    "childrens_social_care": (2, 17),
    "probation": (18, 75),
}

# Share of a person's police/A&E/youth-justice events placed after their first school or
# social-care event, so "excluded before the attendance" questions have answers.
LATER_EVENT_SHARE = 0.7


@dataclass(frozen=True)
class GenerationSummary:
    out_dir: Path
    files: dict[str, Path]
    rows: dict[str, int]
    ground_truth: Path
    manifest: Path
    people: int
    seed: int
    scale: float

    def __str__(self) -> str:
        lines = [f"Synthetic extracts in {self.out_dir} (seed {self.seed}, scale {self.scale}):"]
        lines += [
            f"  {name}: {self.rows[name]:,} rows -> {path.name}"
            for name, path in self.files.items()
        ]
        lines.append(f"  ground truth: {self.ground_truth.name} ({self.people:,} people)")
        return "\n".join(lines)


@dataclass
class Synthesis:
    """Everything generated in memory, before writing (tests inspect it)."""

    people: list[Person]
    records: dict[str, list[Record]] = field(default_factory=dict)


def _add_months(day: date, months: int) -> date:
    total = day.month - 1 + months
    return date(day.year + total // 12, total % 12 + 1, 1)


def _select(
    rng: random.Random, people: list[Person], dataset: str, rows: int, mid: date
) -> list[tuple[Person, int]]:
    """Weighted sampling without replacement (Efraimidis-Spirakis) by risk, then repeat counts."""
    lo, hi = AGE_RANGES[dataset]
    keyed = [(rng.random() ** (1.0 / p.risk), p) for p in people if lo <= p.age_on(mid) <= hi]
    keyed.sort(key=lambda kp: kp[0], reverse=True)
    chosen: list[tuple[Person, int]] = []
    total = 0
    for _, person in keyed:
        if total >= rows:
            break
        n = min(rng.choices((1, 2, 3, 4, 5), weights=REPEATS[dataset])[0], rows - total)
        chosen.append((person, n))
        total += n
    return chosen


def synthesise(
    *, scale: float = 1.0, seed: int = 2026, start: date = date(2025, 1, 1), months: int = 12
) -> Synthesis:
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if months < 1:
        raise ValueError(f"months must be at least 1, got {months}")
    rng = random.Random(seed)
    end = _add_months(start, months)
    span = (end - start).days
    mid = start + timedelta(days=span // 2)
    issued = IssuedIdentifiers()
    people = build_population(
        rng, max(50, round(POPULATION_PER_SCALE * scale)), start, TWIN_RATE, issued
    )
    ctx = Context(rng, start, end, issued)
    out = Synthesis(people)
    earliest: dict[str, date] = {}

    def dates(person: Person, n: int, after_earlier: bool) -> list[date]:
        lo = start
        first = earliest.get(person.person_id)
        room = first is not None and first < end - timedelta(days=2)
        if after_earlier and first is not None and room and rng.random() < LATER_EVENT_SHARE:
            lo = first + timedelta(days=1)
        width = (end - lo).days
        return sorted(lo + timedelta(days=rng.randrange(width)) for _ in range(n))

    def build(dataset: str, make: Callable[[Person, date, int], Record], after: bool) -> None:
        rows = max(1, round(BASE_ROWS[dataset] * scale))
        built: list[Record] = []
        for person, n in _select(rng, people, dataset, rows, mid):
            for i, day in enumerate(dates(person, n, after)):
                built.append(make(person, day, i))
        built.sort(key=lambda r: r.event)
        out.records[dataset] = built
        if not after:
            for rec in built:
                pid = rec.person.person_id
                if pid not in earliest or rec.event < earliest[pid]:
                    earliest[pid] = rec.event

    build(
        "school_exclusions",
        lambda p, day, _i: records.school(ctx, p, records.school_day(ctx, day)),
        after=False,
    )
    build("childrens_social_care", lambda p, day, _i: records.social_care(ctx, p, day), after=False)
    build("youth_justice", lambda p, day, i: records.youth_justice(ctx, p, day, i == 0), after=True)
    previous: list[Record] = []

    def police(p: Person, day: date, _i: int) -> Record:
        rec = records.police(ctx, p, day, previous[-1] if previous else None)
        previous.append(rec)
        return rec

    build("police_violence_offences", police, after=True)
    build("ae_istv_assaults", lambda p, day, _i: records.ae(ctx, p, day), after=True)
    build("probation", lambda p, day, _i: records.probation(ctx, p, day), after=True)
    return out


def observed_rates(synthesis: Synthesis) -> dict[str, dict[str, dict[str, float]]]:
    """Per dataset and error: records eligible, records affected, and the observed share."""
    result: dict[str, dict[str, dict[str, float]]] = {}
    for dataset, recs in synthesis.records.items():
        eligible: dict[str, int] = {}
        hit: dict[str, int] = {}
        for rec in recs:
            for name in rec.eligible:
                eligible[name] = eligible.get(name, 0) + 1
            for name in rec.errors:
                hit[name] = hit.get(name, 0) + 1
        result[dataset] = {
            name: {
                "eligible": n,
                "affected": hit.get(name, 0),
                "rate": round(hit.get(name, 0) / n, 4),
            }
            for name, n in sorted(eligible.items())
        }
    return result


def generate(
    out_dir: Path,
    *,
    scale: float = 1.0,
    seed: int = 2026,
    start: date = date(2025, 1, 1),
    months: int = 12,
) -> GenerationSummary:
    """Write the six extracts, ground_truth.csv and synth_manifest.json into `out_dir`."""
    synthesis = synthesise(scale=scale, seed=seed, start=start, months=months)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    layouts = load_layouts()
    files: dict[str, Path] = {}
    counts: dict[str, int] = {}
    truth_path = out_dir / "ground_truth.csv"
    with truth_path.open("w", encoding="utf-8", newline="") as truth_file:
        truth = csv.writer(truth_file, lineterminator="\n")
        truth.writerow(("dataset", "row", "person_id"))
        for dataset in DATASETS:
            names = layouts[dataset].names
            path = out_dir / f"{dataset}.csv"
            recs = synthesis.records[dataset]
            with path.open("w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(names)
                for i, rec in enumerate(recs, start=2):
                    writer.writerow([rec.row.get(name, "") for name in names])
                    truth.writerow((dataset, i, rec.person.person_id))
            files[dataset] = path
            counts[dataset] = len(recs)
    manifest_path = out_dir / "synth_manifest.json"
    manifest = {
        "generator": "synth",
        "seed": seed,
        "scale": scale,
        "start": start.isoformat(),
        "months": months,
        "people": len(synthesis.people),
        "twin_rate": TWIN_RATE,
        "counts": counts,
        "error_rates": ERROR_RATES,
        "missing_rates": MISSING_RATES,
        "observed": observed_rates(synthesis),
        "identifiers": "NHS numbers are in the 999 test range; names and postcodes are random "
        "combinations and describe nobody real.",
    }
    manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return GenerationSummary(
        out_dir=out_dir,
        files=files,
        rows=counts,
        ground_truth=truth_path,
        manifest=manifest_path,
        people=len(synthesis.people),
        seed=seed,
        scale=scale,
    )
