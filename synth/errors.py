"""Realistic recording errors: each agency record is a noisy copy of the person's true identity."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

from synth.names import NICKNAMES
from synth.population import Person

# Probabilities per record. Conditional ones apply only to records where the error can occur
# (a known nickname, a hyphenated or multi-part surname, a day <= 12, a previous address).
ERROR_RATES: dict[str, float] = {
    "forename_typo": 0.04,
    "forename_variant": 0.25,  # of records whose forename has a nickname/spelling variant
    "surname_typo": 0.03,
    "surname_partial": 0.30,  # of records of people with hyphenated/multi-part surnames
    "dob_day_month_swap": 0.03,  # of records whose day <= 12 and day != month
    "old_postcode": 0.10,
    "case_whitespace": 0.08,
}

# Per dataset: share of records with the identifier left empty.
MISSING_RATES: dict[str, dict[str, float]] = {
    "police_violence_offences": {"postcode": 0.15, "pnc_id": 0.15},
    "ae_istv_assaults": {"postcode": 0.10, "nhs_number": 0.40, "date_of_birth": 0.05},
    "school_exclusions": {"postcode": 0.03},
    "youth_justice": {"postcode": 0.08, "upn": 0.35, "pnc_id": 0.30},
    "childrens_social_care": {"postcode": 0.10, "nhs_number": 0.40, "upn": 0.15},
    "probation": {"postcode": 0.08},
}

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class RecordedIdentity:
    forename: str
    surname: str
    dob: date
    postcode: str
    errors: set[str] = field(default_factory=set)
    # Errors that could have happened to this record (denominators for observed rates).
    eligible: set[str] = field(default_factory=set)


def typo(rng: random.Random, word: str) -> str:
    """One-character substitution, transposition or deletion (never touches the first letter
    for deletions of 2-letter names, so the result is never empty)."""
    if len(word) < 3:
        return word + rng.choice(_LETTERS)
    i = rng.randrange(1, len(word))
    kind = rng.randrange(3)
    if kind == 0:
        ch = rng.choice([c for c in _LETTERS if c != word[i].lower()])
        return word[:i] + ch + word[i + 1 :]
    if kind == 1 and i < len(word) - 1 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + word[i + 1 :]


def _is_multipart(surname: str) -> bool:
    return "-" in surname or " " in surname


def _partial(rng: random.Random, surname: str) -> str:
    parts = [p for p in surname.replace("-", " ").split(" ") if p]
    return rng.choice([parts[0], parts[-1]])


def _case_whitespace(rng: random.Random, value: str) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return value.upper()
    if kind == 1:
        return value.lower()
    if kind == 2:
        return f" {value} "
    return value.replace(" ", "  ") if " " in value else value + " "


def record_identity(rng: random.Random, person: Person, *, names: bool = True) -> RecordedIdentity:
    """A noisy copy of the person's identity. `names=False` for layouts without name fields
    (A&E), so name errors are neither injected nor counted there."""
    rates = ERROR_RATES
    rec = RecordedIdentity(person.forename, person.surname, person.dob, person.postcode)
    rec.eligible.update(("old_postcode", "case_whitespace"))
    if names:
        _name_errors(rng, person, rec)
    d = person.dob
    if d.day <= 12 and d.day != d.month:
        rec.eligible.add("dob_day_month_swap")
        if rng.random() < rates["dob_day_month_swap"]:
            rec.dob = date(d.year, d.day, d.month)
            rec.errors.add("dob_day_month_swap")
    if rng.random() < rates["old_postcode"]:
        rec.postcode = person.previous_postcode
        rec.errors.add("old_postcode")
    if rng.random() < rates["case_whitespace"]:
        target = rng.randrange(3) if names else 2
        if target == 0:
            rec.forename = _case_whitespace(rng, rec.forename)
        elif target == 1:
            rec.surname = _case_whitespace(rng, rec.surname)
        else:
            rec.postcode = _case_whitespace(rng, rec.postcode)
        rec.errors.add("case_whitespace")
    return rec


def _name_errors(rng: random.Random, person: Person, rec: RecordedIdentity) -> None:
    rates = ERROR_RATES
    rec.eligible.update(("forename_typo", "surname_typo"))
    variants = NICKNAMES.get(person.forename.lower())
    if variants:
        rec.eligible.add("forename_variant")
    if _is_multipart(person.surname):
        rec.eligible.add("surname_partial")
    if variants and rng.random() < rates["forename_variant"]:
        rec.forename = rng.choice(variants)
        rec.errors.add("forename_variant")
    if rng.random() < rates["forename_typo"]:
        rec.forename = typo(rng, rec.forename)
        rec.errors.add("forename_typo")
    if _is_multipart(person.surname) and rng.random() < rates["surname_partial"]:
        rec.surname = _partial(rng, person.surname)
        rec.errors.add("surname_partial")
    if rng.random() < rates["surname_typo"]:
        rec.surname = typo(rng, rec.surname)
        rec.errors.add("surname_typo")


def is_missing(rng: random.Random, dataset: str, item: str) -> bool:
    return rng.random() < MISSING_RATES[dataset].get(item, 0.0)
