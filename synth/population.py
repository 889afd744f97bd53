"""A population of synthetic Londoners with their true identifiers."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial

from synth.geography import BOROUGHS, GSS_CODES, random_borough, random_postcode
from synth.identifiers import IssuedIdentifiers, random_nhs_number, random_upn
from synth.names import FEMALE_FORENAMES, MALE_FORENAMES, SURNAMES

# (label, ONS 5 group, police self-defined 16+1, police officer-defined IC, NHS ethnic category,
#  DfE code, share of London residents)
ETHNICITIES: tuple[tuple[str, str, str, str, str, str, float], ...] = (
    ("White British", "White", "W1", "IC1", "A", "WBRI", 36.8),
    ("White Irish", "White", "W2", "IC1", "B", "WIRI", 1.7),
    ("White other", "White", "W9", "IC2", "C", "WOTH", 14.7),
    ("Mixed White/Black Caribbean", "Mixed", "M1", "IC3", "D", "MWBC", 1.5),
    ("Mixed White/Black African", "Mixed", "M2", "IC3", "E", "MWBA", 0.9),
    ("Mixed White/Asian", "Mixed", "M3", "IC4", "F", "MWAS", 1.5),
    ("Mixed other", "Mixed", "M9", "IC0/IC9 unknown", "G", "MOTH", 1.9),
    ("Indian", "Asian", "A1", "IC4", "H", "AIND", 7.5),
    ("Pakistani", "Asian", "A2", "IC4", "J", "APKN", 3.3),
    ("Bangladeshi", "Asian", "A3", "IC4", "K", "ABAN", 3.7),
    ("Asian other", "Asian", "A9", "IC4", "L", "AOTH", 4.6),
    ("Black Caribbean", "Black", "B1", "IC3", "M", "BCRB", 3.9),
    ("Black African", "Black", "B2", "IC3", "N", "BAFR", 7.9),
    ("Black other", "Black", "B9", "IC3", "P", "BOTH", 1.7),
    ("Chinese", "Other", "O1", "IC5", "R", "CHNE", 1.7),
    ("Any other", "Other", "O9", "IC6", "S", "OOTH", 6.3),
)
_ETH_WEIGHTS = tuple(e[6] for e in ETHNICITIES)

# Age at the window start: (lowest, highest, share, risk multiplier). Serious violence is
# concentrated in the 10-30 range, so those ages are both over-represented and riskier.
_AGE_BANDS: tuple[tuple[int, int, float, float], ...] = (
    (2, 9, 10.0, 0.4),
    (10, 17, 30.0, 2.0),
    (18, 24, 22.0, 2.5),
    (25, 34, 18.0, 1.5),
    (35, 49, 12.0, 0.7),
    (50, 80, 8.0, 0.3),
)


@dataclass
class Person:
    """One synthetic Londoner: the truth that agency records are noisy copies of."""

    person_id: str
    forename: str
    surname: str
    sex: str  # "male" | "female"
    dob: date
    postcode: str
    previous_postcode: str
    borough: str
    nhs_number: str
    upn: str | None
    ethnicity: int  # index into ETHNICITIES
    risk: float
    twin_of: str | None = None
    pnc_id: str | None = None
    crn: str | None = None
    noms: str | None = None
    police_id: str | None = None
    yjs_id: str | None = None
    la_child_id: str | None = None
    school: tuple[str, str, str] | None = None  # (la code, estab, urn)

    def age_on(self, day: date) -> int:
        return day.year - self.dob.year - ((day.month, day.day) < (self.dob.month, self.dob.day))


def _random_dob(rng: random.Random, start: date, age: int) -> date:
    # Born between `age` and `age+1` years before start, and never within 2 years of it.
    latest = date(start.year - age, start.month, 1) - timedelta(days=1)
    return latest - timedelta(days=rng.randrange(365))


def build_population(
    rng: random.Random,
    size: int,
    start: date,
    twin_rate: float,
    issued: IssuedIdentifiers,
) -> list[Person]:
    people: list[Person] = []
    band_weights = [b[2] for b in _AGE_BANDS]
    while len(people) < size:
        lo, hi, _, risk_mult = rng.choices(_AGE_BANDS, weights=band_weights)[0]
        age = rng.randint(lo, hi)
        sex = rng.choice(("male", "female"))
        forename = rng.choice(MALE_FORENAMES if sex == "male" else FEMALE_FORENAMES)
        borough = random_borough(rng)
        postcode = random_postcode(rng, borough)
        # People move: the previous address is in the same borough half the time.
        prev_borough = borough if rng.random() < 0.5 else rng.choice(GSS_CODES)
        dob = _random_dob(rng, start, max(age, 2))
        upn = None
        if 4 <= age <= 24:
            entry_year = dob.year + 5 if dob.month < 9 else dob.year + 6
            upn = issued.unique(partial(random_upn, rng, BOROUGHS[borough][1], entry_year))
        risk = math.exp(rng.gauss(0.0, 1.0)) * risk_mult
        person = Person(
            person_id=f"P{len(people) + 1:07d}",
            forename=forename,
            surname=rng.choice(SURNAMES),
            sex=sex,
            dob=dob,
            postcode=postcode,
            previous_postcode=random_postcode(rng, prev_borough),
            borough=borough,
            nhs_number=issued.unique(partial(random_nhs_number, rng)),
            upn=upn,
            ethnicity=rng.choices(range(len(ETHNICITIES)), weights=_ETH_WEIGHTS)[0],
            risk=risk,
        )
        people.append(person)
        if rng.random() < twin_rate and len(people) < size:
            people.append(_twin_of(rng, person, len(people) + 1, issued))
    return people


def _twin_of(
    rng: random.Random, sibling: Person, number: int, issued: IssuedIdentifiers
) -> Person:
    sex = rng.choice(("male", "female"))
    pool = MALE_FORENAMES if sex == "male" else FEMALE_FORENAMES
    same_initial = [n for n in pool if n[0] == sibling.forename[0] and n != sibling.forename]
    if same_initial and rng.random() < 0.4:
        forename = rng.choice(same_initial)
    else:
        forename = rng.choice([n for n in pool if n != sibling.forename])
    upn = None
    if sibling.upn is not None:
        entry_year = 2000 + int(sibling.upn[8:10])
        la_code = sibling.upn[1:4]
        upn = issued.unique(partial(random_upn, rng, la_code, entry_year))
    return Person(
        person_id=f"P{number:07d}",
        forename=forename,
        surname=sibling.surname,
        sex=sex,
        dob=sibling.dob,
        postcode=sibling.postcode,
        previous_postcode=sibling.previous_postcode,
        borough=sibling.borough,
        nhs_number=issued.unique(partial(random_nhs_number, rng)),
        upn=upn,
        ethnicity=sibling.ethnicity,
        risk=sibling.risk * math.exp(rng.gauss(0.0, 0.3)),
        twin_of=sibling.person_id,
    )
