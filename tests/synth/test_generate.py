"""The synthetic generator writes extracts a strict validator accepts, with ground truth."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest

from synth import GenerationSummary, generate, generate_police_extract
from synth.errors import ERROR_RATES, MISSING_RATES
from synth.generate import BASE_ROWS, observed_rates, synthesise
from synth.layouts import DATASETS, load_layouts
from tests.synth.validate import problems_in

SCALE = 0.05
SEED = 7
START = date(2025, 1, 1)
END = date(2026, 1, 1)
MAIN_EVENT = {
    "police_violence_offences": "offence_datetime_from",
    "ae_istv_assaults": "arrival_datetime",
    "school_exclusions": "exclusion_start_date",
    "youth_justice": "offence_date",
    "childrens_social_care": "referral_date",
    "probation": "sentence_date",
}


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> GenerationSummary:
    return generate(tmp_path_factory.mktemp("synth"), scale=SCALE, seed=SEED, start=START)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_writes_every_dataset_with_the_requested_volume(summary: GenerationSummary) -> None:
    assert set(summary.files) == set(DATASETS)
    for dataset in DATASETS:
        assert summary.rows[dataset] == round(BASE_ROWS[dataset] * SCALE)
        assert summary.files[dataset].name == f"{dataset}.csv"
    assert "police_violence_offences" in str(summary)


@pytest.mark.parametrize("dataset", DATASETS)
def test_files_pass_a_strict_layout_validator(summary: GenerationSummary, dataset: str) -> None:
    assert problems_in(summary.files[dataset], load_layouts()[dataset]) == []


@pytest.mark.parametrize("dataset", DATASETS)
def test_main_event_dates_fall_in_the_window(summary: GenerationSummary, dataset: str) -> None:
    days = [date.fromisoformat(r[MAIN_EVENT[dataset]][:10]) for r in _rows(summary.files[dataset])]
    assert min(days) >= START
    assert max(days) < END


def test_ground_truth_covers_every_row_once(summary: GenerationSummary) -> None:
    truth = _rows(summary.ground_truth)
    by_dataset: dict[str, list[int]] = defaultdict(list)
    for t in truth:
        by_dataset[t["dataset"]].append(int(t["row"]))
    for dataset in DATASETS:
        assert sorted(by_dataset[dataset]) == list(range(2, summary.rows[dataset] + 2))


def test_people_appear_across_agencies_and_repeat_within_one(summary: GenerationSummary) -> None:
    truth = _rows(summary.ground_truth)
    datasets_of: dict[str, set[str]] = defaultdict(set)
    for t in truth:
        datasets_of[t["person_id"]].add(t["dataset"])
    assert sum(len(s) >= 3 for s in datasets_of.values()) >= 20
    repeats = Counter((t["dataset"], t["person_id"]) for t in truth)
    assert max(repeats.values()) <= 5
    assert sum(n > 1 for n in repeats.values()) > 50


def test_some_exclusions_precede_an_ae_attendance(summary: GenerationSummary) -> None:
    truth = _rows(summary.ground_truth)
    people = {(t["dataset"], int(t["row"])): t["person_id"] for t in truth}
    first_exclusion: dict[str, date] = {}
    for i, r in enumerate(_rows(summary.files["school_exclusions"]), start=2):
        pid = people[("school_exclusions", i)]
        day = date.fromisoformat(r["exclusion_start_date"])
        first_exclusion[pid] = min(day, first_exclusion.get(pid, day))
    hits = 0
    for i, r in enumerate(_rows(summary.files["ae_istv_assaults"]), start=2):
        pid = people[("ae_istv_assaults", i)]
        arrival = date.fromisoformat(r["arrival_datetime"][:10])
        if (
            pid in first_exclusion
            and arrival - timedelta(days=730) <= first_exclusion[pid] < arrival
        ):
            hits += 1
    assert hits >= 5


def test_manifest_records_seed_counts_and_rates(summary: GenerationSummary) -> None:
    manifest = json.loads(summary.manifest.read_text(encoding="utf-8"))
    assert manifest["seed"] == SEED
    assert manifest["scale"] == SCALE
    assert manifest["counts"] == summary.rows
    assert manifest["error_rates"] == ERROR_RATES
    assert manifest["missing_rates"] == MISSING_RATES


def test_missing_nhs_numbers_match_the_stated_rates(summary: GenerationSummary) -> None:
    for dataset in ("ae_istv_assaults", "childrens_social_care"):
        rows = _rows(summary.files[dataset])
        share = sum(r["nhs_number"] == "" for r in rows) / len(rows)
        assert share == pytest.approx(MISSING_RATES[dataset]["nhs_number"], abs=0.06)


def test_error_injection_rates_are_close_to_stated() -> None:
    synthesis = synthesise(scale=0.2, seed=SEED, start=START)
    observed = observed_rates(synthesis)
    pooled: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for per_error in observed.values():
        for name, stats in per_error.items():
            pooled[name][0] += stats["affected"]
            pooled[name][1] += stats["eligible"]
    for name, rate in ERROR_RATES.items():
        affected, eligible = pooled[name]
        assert eligible > 200, name
        assert affected / eligible == pytest.approx(rate, rel=0.25, abs=0.01), name
    police = observed["police_violence_offences"]["missing_postcode"]["rate"]
    assert police == pytest.approx(MISSING_RATES["police_violence_offences"]["postcode"], abs=0.02)


def test_recorded_names_differ_from_the_truth_only_where_errors_were_injected() -> None:
    synthesis = synthesise(scale=SCALE, seed=SEED, start=START)
    for rec in synthesis.records["youth_justice"]:
        clean = not rec.errors & {"forename_typo", "forename_variant", "case_whitespace"}
        if clean:
            assert rec.row["forename"] == rec.person.forename
        if "dob_day_month_swap" not in rec.errors:
            assert rec.row["date_of_birth"] == rec.person.dob.isoformat()


def test_population_has_twins_and_no_dob_near_the_window() -> None:
    synthesis = synthesise(scale=SCALE, seed=SEED, start=START)
    twins = [p for p in synthesis.people if p.twin_of is not None]
    assert twins
    by_id = {p.person_id: p for p in synthesis.people}
    for twin in twins:
        sibling = by_id[twin.twin_of or ""]
        assert (twin.surname, twin.dob, twin.postcode) == (
            sibling.surname,
            sibling.dob,
            sibling.postcode,
        )
        assert twin.forename != sibling.forename
    assert max(p.dob for p in synthesis.people) <= START - timedelta(days=365 * 2)
    young = sum(10 <= p.age_on(START) <= 30 for p in synthesis.people)
    assert young / len(synthesis.people) > 0.5


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    generate(tmp_path / "a", scale=0.02, seed=11)
    generate(tmp_path / "b", scale=0.02, seed=11)
    generate(tmp_path / "c", scale=0.02, seed=12)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert (
        _digest(tmp_path / "a")["police_violence_offences.csv"]
        != _digest(tmp_path / "c")["police_violence_offences.csv"]
    )


def test_rejects_nonsense_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        generate(tmp_path, scale=0)
    with pytest.raises(ValueError, match="months"):
        generate(tmp_path, months=0)


def test_police_extract_has_requested_rows_and_valid_values(tmp_path: Path) -> None:
    path = tmp_path / "police.csv"
    generate_police_extract(path, 250_123, seed=3)
    with path.open(encoding="utf-8") as fh:
        assert sum(1 for _ in fh) == 250_124
    assert problems_in(path, load_layouts()["police_violence_offences"], limit_rows=20_000) == []


def test_police_extract_is_deterministic_and_handles_zero_rows(tmp_path: Path) -> None:
    generate_police_extract(tmp_path / "a.csv", 1000, seed=5)
    generate_police_extract(tmp_path / "b.csv", 1000, seed=5)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    generate_police_extract(tmp_path / "empty.csv", 0, seed=5)
    header = (tmp_path / "empty.csv").read_text(encoding="utf-8").strip().split(",")
    assert header == load_layouts()["police_violence_offences"].names
