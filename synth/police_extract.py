"""Fast, vectorised writer of a large synthetic police extract, for benchmarks.

Unlike `generate`, rows are independent (no linked population or ground truth): the point is
volume. Rows are built in chunks with numpy/polars and appended to the file, so memory stays
flat however many rows are asked for.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from synth.geography import BOROUGH_WEIGHTS, BOROUGHS, GSS_CODES
from synth.layouts import load_layouts
from synth.names import FEMALE_FORENAMES, MALE_FORENAMES, SURNAMES
from synth.population import ETHNICITIES
from synth.records import OFFENCE_CODES, OFFENCE_WEIGHTS, OFFENCES

DATASET = "police_violence_offences"
CHUNK_ROWS = 100_000
_INWARD = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))
_PNC_LETTERS = np.array(list("ZABCDEFGHJKLMNPQRTUVWXY"))
_ROLES = ("victim", "suspect", "accused", "offender")
_WEAPONS = (
    "knife_or_blade",
    "body_part",
    "none",
    "blunt_object",
    "bottle_or_glass",
    "other",
    "unknown",
    "firearm",
    "other_sharp_instrument",
)
_LOCATIONS = (
    "street_or_public_open_space",
    "dwelling",
    "licensed_premises",
    "transport",
    "school_or_college",
    "retail",
    "park",
    "other",
    "unknown",
)
_OUTCOMES = ("1", "8", "14", "15", "16", "18", "21", "22")


def _pick(values: tuple[str, ...] | list[str], idx: np.ndarray) -> pl.Series:
    return pl.Series(values=list(values), dtype=pl.String).gather(pl.Series(idx))


def _weights(w: tuple[float, ...]) -> np.ndarray:
    arr: np.ndarray = np.asarray(w, dtype=float)
    total = float(arr.sum())
    return arr / total


def _bool(mask: np.ndarray) -> pl.Series:
    return pl.Series(np.where(mask, "true", "false"))


def _chunk(rng: np.random.Generator, n: int, first_id: int, start: date) -> pl.DataFrame:
    role_idx = rng.choice(4, n, p=[0.6, 0.25, 0.1, 0.05])
    female = rng.random(n) < 0.35
    male_idx = rng.integers(0, len(MALE_FORENAMES), n)
    female_idx = rng.integers(0, len(FEMALE_FORENAMES), n)
    forename = pl.select(
        pl.when(pl.lit(pl.Series(female)))
        .then(pl.lit(_pick(FEMALE_FORENAMES, female_idx)))
        .otherwise(pl.lit(_pick(MALE_FORENAMES, male_idx)))
    ).to_series()
    start64 = np.datetime64(start.isoformat(), "D")
    # Ages skewed to 10-30: a gamma bump around the early twenties, at least 10.
    age_days = (10 * 365 + rng.gamma(2.0, 3.5, n) * 365).astype(np.int64)
    dob = start64 - age_days - rng.integers(0, 365, n)
    offence = start64.astype("datetime64[s]") + rng.integers(0, 365 * 86_400, n)
    offence_day = offence.astype("datetime64[D]")
    age = ((offence_day - dob).astype(np.int64) / 365.2425).astype(np.int64)
    end_day = start64 + 364
    reported = np.minimum(offence_day + rng.choice([0, 0, 0, 1, 2, 7, 30], n), end_day)
    outcome_day = np.minimum(reported + rng.integers(7, 200, n), end_day)
    has_outcome = rng.random(n) < 0.6

    borough_idx = rng.choice(len(GSS_CODES), n, p=_weights(BOROUGH_WEIGHTS))
    home_borough = rng.choice(len(GSS_CODES), n, p=_weights(BOROUGH_WEIGHTS))
    districts = [rng.choice(BOROUGHS[g][2]) for g in GSS_CODES]  # one district per borough
    district = _pick(districts, home_borough)
    inward = (
        pl.Series(rng.integers(1, 10, n)).cast(pl.String)
        + _pick(list(_INWARD), rng.integers(0, 20, n))
        + _pick(list(_INWARD), rng.integers(0, 20, n))
    )
    postcode = (district + " " + inward).set(pl.Series(rng.random(n) < 0.15), None)

    not_victim = role_idx > 0
    pnc_year = rng.integers(2000, 2026, n)
    pnc_serial = rng.integers(1, 10_000_000, n)
    check = _PNC_LETTERS[((pnc_year % 100) * 10_000_000 + pnc_serial) % 23]
    pnc = (
        pl.Series(pnc_year).cast(pl.String)
        + "/"
        + pl.Series(pnc_serial).cast(pl.String).str.zfill(7)
        + pl.Series(check)
    ).set(pl.Series(~not_victim | (rng.random(n) < 0.15)), None)

    code_idx = rng.choice(len(OFFENCE_CODES), n, p=_weights(OFFENCE_WEIGHTS))
    offence_info = list(OFFENCES.values())
    knife = rng.random(n) < 0.15
    firearm = ~knife & (rng.random(n) < 0.01)
    weapon_idx = np.where(knife, 0, np.where(firearm, 7, rng.integers(1, 7, n)))
    eth_idx = rng.choice(len(ETHNICITIES), n, p=_weights(tuple(e[6] for e in ETHNICITIES)))
    centre = np.array([BOROUGHS[g][4] for g in GSS_CODES])
    east = centre[borough_idx, 0] + rng.integers(-30, 30, n) * 100
    north = centre[borough_idx, 1] + rng.integers(-30, 30, n) * 100

    def optional(series: pl.Series, p_missing: float) -> pl.Series:
        return series.set(pl.Series(rng.random(n) < p_missing), None)

    def day_text(values: np.ndarray) -> pl.Series:
        return pl.Series(values.astype("datetime64[D]")).dt.strftime("%Y-%m-%d")

    ids = np.arange(first_id, first_id + n)
    columns: dict[str, pl.Series] = {
        "crime_reference": pl.Series(ids + 1_000_000).cast(pl.String) + f"/{start.year % 100:02d}",
        "person_role": _pick(_ROLES, role_idx),
        "police_person_id": "MPS"
        + pl.Series(rng.integers(0, 10**9, n)).cast(pl.String).str.zfill(9),
        "pnc_id": pnc,
        "forename": forename,
        "surname": _pick(SURNAMES, rng.integers(0, len(SURNAMES), n)),
        "date_of_birth": day_text(dob),
        "home_postcode": postcode,
        "sex": pl.Series(np.where(female, "female", "male")),
        "age_at_offence": pl.Series(age).cast(pl.String),
        "self_defined_ethnicity": optional(_pick([e[2] for e in ETHNICITIES], eth_idx), 0.3),
        "officer_defined_ethnicity": optional(_pick([e[3] for e in ETHNICITIES], eth_idx), 0.3),
        "offence_datetime_from": pl.Series(offence.astype("datetime64[ms]")).dt.strftime(
            "%Y-%m-%dT%H:%M:%S"
        ),
        "offence_datetime_to": optional(
            pl.Series(
                (offence + rng.integers(300, 14_400, n)).astype("datetime64[ms]")
            ).dt.strftime("%Y-%m-%dT%H:%M:%S"),
            0.7,
        ),
        "reported_date": day_text(reported),
        "ho_offence_code": _pick(OFFENCE_CODES, code_idx),
        "ho_offence_group": _pick([o[0] for o in offence_info], code_idx),
        "mps_major_text": _pick([o[1] for o in offence_info], code_idx),
        "mps_minor_text": _pick([o[2] for o in offence_info], code_idx),
        "knife_sharp_instrument_flag": _bool(knife),
        "knife_injury_flag": _bool(knife & (rng.random(n) < 0.5)),
        "firearm_flag": _bool(firearm),
        "lethal_barrelled_discharge_flag": optional(_bool(firearm & (rng.random(n) < 0.3)), 0.5),
        "weapon_type": optional(_pick(_WEAPONS, weapon_idx), 0.15),
        "domestic_abuse_flag": _bool(rng.random(n) < 0.2),
        "gang_related_flag": optional(_bool(rng.random(n) < 0.1), 0.5),
        "location_type": optional(_pick(_LOCATIONS, rng.integers(0, len(_LOCATIONS), n)), 0.1),
        "borough_gss_code": _pick(GSS_CODES, borough_idx),
        "ward_code": optional(
            "E05" + pl.Series(rng.integers(9000, 14000, n)).cast(pl.String).str.zfill(6), 0.1
        ),
        "lsoa_code": optional(
            "E01" + pl.Series(rng.integers(0, 35000, n)).cast(pl.String).str.zfill(6), 0.15
        ),
        "easting": optional(pl.Series(east).cast(pl.String), 0.2),
        "northing": optional(pl.Series(north).cast(pl.String), 0.2),
        "outcome_type": _pick(_OUTCOMES, rng.integers(0, len(_OUTCOMES), n)).set(
            pl.Series(~has_outcome), None
        ),
        "outcome_date": day_text(outcome_day).set(pl.Series(~has_outcome), None),
    }
    names = load_layouts()[DATASET].names
    return pl.DataFrame({name: columns[name].alias(name) for name in names})


def generate_police_extract(
    path: Path, rows: int, *, seed: int, start: date = date(2025, 1, 1)
) -> None:
    """Write `rows` synthetic police rows (plus header) to `path`, in chunks."""
    if rows < 0:
        raise ValueError(f"rows must be zero or more, got {rows}")
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        if rows == 0:
            fh.write((",".join(load_layouts()[DATASET].names) + "\n").encode("utf-8"))
            return
        written = 0
        while written < rows:
            n = min(CHUNK_ROWS, rows - written)
            _chunk(rng, n, written, start).write_csv(fh, include_header=written == 0)
            written += n
