"""Every synthetic person has identifiers of their own, as real people do: linkage quality is
measured against the ground truth, and a shared NHS number would count as a false link."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from synth import generate

STRONG_IDENTIFIERS = ("nhs_number", "upn", "pnc_id", "crn", "noms_number")


def test_no_two_people_share_a_strong_identifier(tmp_path: Path) -> None:
    summary = generate(tmp_path, scale=0.5, seed=3)
    with summary.ground_truth.open(newline="") as handle:
        person = {(r["dataset"], int(r["row"])): r["person_id"] for r in csv.DictReader(handle)}
    owners: dict[tuple[str, str], set[str]] = defaultdict(set)
    for dataset, path in summary.files.items():
        with path.open(newline="") as handle:
            for row_number, row in enumerate(csv.DictReader(handle), start=2):
                for field in STRONG_IDENTIFIERS:
                    value = (row.get(field) or "").replace(" ", "").upper()
                    if value:
                        owners[(field, value)].add(person[(dataset, row_number)])
    assert len(owners) > 1000
    shared = [key for key, people in owners.items() if len(people) > 1]
    assert shared == []
