"""Row builders: one function per extract layout, turning (person, event date) into a CSV row."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial

from synth.errors import RecordedIdentity, is_missing, record_identity
from synth.geography import BOROUGHS, ED_SITES, GSS_CODES, random_borough
from synth.identifiers import IssuedIdentifiers, random_crn, random_noms, random_pnc_id
from synth.population import ETHNICITIES, Person

Row = dict[str, str]

# HO code -> (group, MPS major text, MPS minor text, relative frequency)
OFFENCES: dict[str, tuple[str, str, str, float]] = {
    "8N": ("violence_with_injury", "Violence Against the Person", "Violence with Injury", 25.0),
    "105A": (
        "violence_without_injury",
        "Violence Against the Person",
        "Violence without Injury",
        22.0,
    ),
    "34B": ("robbery", "Robbery", "Robbery of Personal Property", 14.0),
    "8L": ("stalking_and_harassment", "Violence Against the Person", "Harassment", 8.0),
    "10D": (
        "possession_of_weapons",
        "Possession of Weapons",
        "Possession of Article with Blade or Point",
        5.0,
    ),
    "5D": ("violence_with_injury", "Violence Against the Person", "Violence with Injury", 4.0),
    "3B": (
        "violence_without_injury",
        "Violence Against the Person",
        "Violence without Injury",
        3.0,
    ),
    "104": (
        "violence_without_injury",
        "Violence Against the Person",
        "Violence without Injury",
        2.0,
    ),
    "10C": ("possession_of_weapons", "Possession of Weapons", "Possession of Other Weapons", 2.0),
    "8Q": ("stalking_and_harassment", "Violence Against the Person", "Harassment", 2.0),
    "34A": ("robbery", "Robbery", "Robbery of Business Property", 1.0),
    "8S": ("violence_with_injury", "Violence Against the Person", "Violence with Injury", 1.0),
    "8P": ("violence_with_injury", "Violence Against the Person", "Violence with Injury", 1.0),
    "105B": (
        "violence_without_injury",
        "Violence Against the Person",
        "Violence without Injury",
        1.0,
    ),
    "8M": ("stalking_and_harassment", "Violence Against the Person", "Harassment", 1.0),
    "10B": (
        "possession_of_weapons",
        "Possession of Weapons",
        "Possession of Firearms Offences",
        1.0,
    ),
    "19C": ("sexual_offences", "Sexual Offences", "Rape", 1.0),
    "20A": ("sexual_offences", "Sexual Offences", "Other Sexual Offences", 1.0),
    "2": ("violence_with_injury", "Violence Against the Person", "Violence with Injury", 0.5),
    "36": (
        "violence_without_injury",
        "Violence Against the Person",
        "Violence without Injury",
        0.5,
    ),
    "1": ("homicide", "Violence Against the Person", "Homicide", 0.3),
}
OFFENCE_CODES = tuple(OFFENCES)
OFFENCE_WEIGHTS = tuple(o[3] for o in OFFENCES.values())
_KNIFE_GROUPS = {"violence_with_injury", "robbery", "homicide", "sexual_offences"}

_YJB_GROUP = {
    "violence_with_injury": "violence_against_the_person",
    "violence_without_injury": "violence_against_the_person",
    "stalking_and_harassment": "violence_against_the_person",
    "homicide": "violence_against_the_person",
    "robbery": "robbery",
    "possession_of_weapons": "possession_of_weapons",
    "sexual_offences": "sexual_offences",
}
_PROBATION_GROUP = {**_YJB_GROUP, "sexual_offences": "sexual"}
# Offences outside the violence subset that youth justice and probation also record.
_OTHER_OFFENCES: tuple[tuple[str, str, str], ...] = (
    ("92D", "drugs", "drugs"),
    ("92A", "drugs", "drugs"),
    ("45", "theft_and_handling", "theft"),
    ("28E", "burglary", "burglary"),
    ("58A", "criminal_damage", "criminal_damage"),
    ("66", "public_order", "public_order"),
    ("80", "breach", "other"),
)


def d(value: date | None) -> str:
    return "" if value is None else value.isoformat()


def dt(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def b(value: bool) -> str:
    return "true" if value else "false"


def _maybe(rng: random.Random, p: float, value: str) -> str:
    return value if rng.random() < p else ""


@dataclass
class Context:
    """Shared state while building one generation's records."""

    rng: random.Random
    start: date
    end: date  # exclusive
    issued: IssuedIdentifiers = field(default_factory=IssuedIdentifiers)
    counters: dict[str, int] = field(default_factory=dict)

    def next_id(self, name: str) -> int:
        self.counters[name] = self.counters.get(name, 0) + 1
        return self.counters[name]

    def clip(self, day: date) -> date:
        last = self.end - timedelta(days=1)
        return last if day > last else day

    def time_of_day(self, day: date) -> datetime:
        # Violence peaks in the evening and at night.
        hour = self.rng.choices(range(24), weights=_HOUR_WEIGHTS)[0]
        return datetime(
            day.year, day.month, day.day, hour, self.rng.randrange(60), self.rng.randrange(60)
        )


_HOUR_WEIGHTS = (5, 4, 3, 2, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 7, 7, 7, 8, 8, 8, 7, 6)


@dataclass
class Record:
    row: Row
    person: Person
    event: date
    errors: set[str]
    eligible: set[str]


def _identity(
    ctx: Context, dataset: str, person: Person, *, names: bool = True
) -> tuple[RecordedIdentity, set[str]]:
    rec = record_identity(ctx.rng, person, names=names)
    if is_missing(ctx.rng, dataset, "postcode"):
        rec.postcode = ""
        rec.errors.add("missing_postcode")
    rec.eligible.add("missing_postcode")
    return rec, rec.eligible


def _pnc(ctx: Context, person: Person, event: date) -> str:
    if person.pnc_id is None:
        first_arrest = max(person.dob.year + 10, event.year - ctx.rng.randrange(0, 8))
        year = min(first_arrest, event.year)
        person.pnc_id = ctx.issued.unique(partial(random_pnc_id, ctx.rng, year))
    return person.pnc_id


def _sex_text(person: Person, rng: random.Random) -> str:
    return person.sex if rng.random() > 0.01 else "not_known"


def police(ctx: Context, person: Person, event: date, previous: Record | None) -> Record:
    rng = ctx.rng
    ident, eligible = _identity(ctx, "police_violence_offences", person)
    high_risk = person.risk > 2.5 and person.age_on(event) >= 10
    role = rng.choices(
        ("victim", "suspect", "accused", "offender"),
        weights=(35, 40, 15, 10) if high_risk else (75, 15, 6, 4),
    )[0]
    # A quarter of records are a second person (victim or suspect) in the previous crime.
    if previous is not None and previous.person is not person and rng.random() < 0.25:
        shared = {k: previous.row[k] for k in _POLICE_CRIME_FIELDS}
        event = date.fromisoformat(shared["offence_datetime_from"][:10])
    else:
        shared = _police_crime(ctx, event)
    errors, row = ident.errors, dict(shared)
    pnc = ""
    if role != "victim" or person.pnc_id is not None:
        eligible.add("missing_pnc_id")
        if is_missing(rng, "police_violence_offences", "pnc_id"):
            errors.add("missing_pnc_id")
        else:
            pnc = _pnc(ctx, person, event)
    if person.police_id is None:
        person.police_id = f"MPS{rng.randrange(10**9):09d}"
    eth = ETHNICITIES[person.ethnicity]
    row.update(
        person_role=role,
        police_person_id=person.police_id,
        pnc_id=pnc,
        forename=ident.forename,
        surname=ident.surname,
        date_of_birth=d(ident.dob),
        home_postcode=ident.postcode,
        sex=_sex_text(person, rng),
        age_at_offence=str(person.age_on(event)),
        self_defined_ethnicity=_maybe(rng, 0.7, eth[2]) or _maybe(rng, 0.1, "NS"),
        officer_defined_ethnicity=_maybe(rng, 0.8, eth[3]) if role != "victim" else "",
    )
    return Record(row, person, event, errors, eligible)


_POLICE_CRIME_FIELDS = (
    "crime_reference",
    "offence_datetime_from",
    "offence_datetime_to",
    "reported_date",
    "ho_offence_code",
    "ho_offence_group",
    "mps_major_text",
    "mps_minor_text",
    "knife_sharp_instrument_flag",
    "knife_injury_flag",
    "firearm_flag",
    "lethal_barrelled_discharge_flag",
    "weapon_type",
    "domestic_abuse_flag",
    "gang_related_flag",
    "location_type",
    "borough_gss_code",
    "ward_code",
    "lsoa_code",
    "easting",
    "northing",
    "outcome_type",
    "outcome_date",
)


def _police_crime(ctx: Context, event: date) -> Row:
    rng = ctx.rng
    code = rng.choices(OFFENCE_CODES, weights=OFFENCE_WEIGHTS)[0]
    group, major, minor, _ = OFFENCES[code]
    knife = (group in _KNIFE_GROUPS and rng.random() < 0.18) or code == "10D"
    firearm = not knife and (code == "10B" or rng.random() < 0.01)
    if knife:
        weapon = rng.choice(("knife_or_blade", "knife_or_blade", "other_sharp_instrument"))
    elif firearm:
        weapon = "firearm"
    else:
        weapon = rng.choice(
            (
                "body_part",
                "body_part",
                "none",
                "blunt_object",
                "bottle_or_glass",
                "other",
                "unknown",
            )
        )
    start_dt = ctx.time_of_day(event)
    borough = random_borough(rng)
    east, north = BOROUGHS[borough][4]
    reported = ctx.clip(event + timedelta(days=rng.choice((0, 0, 0, 1, 2, 7, 30))))
    outcome = rng.choice(("1", "8", "14", "15", "16", "18", "21", "22"))
    outcome_date = ctx.clip(reported + timedelta(days=rng.randrange(7, 200)))
    has_outcome = rng.random() < 0.6
    return {
        "crime_reference": f"{ctx.next_id('crime') + 1000000:07d}/{event.year % 100:02d}",
        "offence_datetime_from": dt(start_dt),
        "offence_datetime_to": _maybe(
            rng, 0.3, dt(start_dt + timedelta(minutes=rng.randrange(5, 240)))
        ),
        "reported_date": d(reported),
        "ho_offence_code": code,
        "ho_offence_group": group,
        "mps_major_text": major,
        "mps_minor_text": minor,
        "knife_sharp_instrument_flag": b(knife),
        "knife_injury_flag": b(knife and group == "violence_with_injury"),
        "firearm_flag": b(firearm),
        "lethal_barrelled_discharge_flag": _maybe(rng, 0.5, b(firearm and rng.random() < 0.3)),
        "weapon_type": _maybe(rng, 0.85, weapon),
        "domestic_abuse_flag": b(rng.random() < 0.2),
        "gang_related_flag": _maybe(rng, 0.5, b(rng.random() < 0.1)),
        "location_type": _maybe(
            rng,
            0.9,
            rng.choice(
                (
                    "street_or_public_open_space",
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
            ),
        ),
        "borough_gss_code": borough,
        "ward_code": _maybe(rng, 0.9, f"E05{rng.randrange(9000, 14000):06d}"),
        "lsoa_code": _maybe(rng, 0.85, f"E01{rng.randrange(0, 35000):06d}"),
        "easting": _maybe(rng, 0.8, str(east + rng.randrange(-3000, 3000) // 100 * 100)),
        "northing": _maybe(rng, 0.8, str(north + rng.randrange(-3000, 3000) // 100 * 100)),
        "outcome_type": outcome if has_outcome else "",
        "outcome_date": d(outcome_date) if has_outcome else "",
    }


_ASSAULT_LOCATIONS = {
    "public_place_street": ("street", "high street", "bus stop", "outside shops", "estate walkway"),
    "licensed_premises": ("pub", "nightclub", "bar"),
    "home": ("own home", "friend's flat"),
    "workplace": ("workplace", "shop where works"),
    "school_or_college": ("school gates", "college"),
    "transport": ("bus", "tube station", "railway platform"),
    "other": ("park", "playing field", "car park"),
    "unknown": ("not recorded",),
}


def ae(ctx: Context, person: Person, event: date) -> Record:
    rng = ctx.rng
    ident, eligible = _identity(ctx, "ae_istv_assaults", person, names=False)
    errors = ident.errors
    site, site_borough = rng.choice(ED_SITES)
    arrival = ctx.time_of_day(event)
    assault = arrival - timedelta(minutes=rng.randrange(20, 720))
    if assault.date() < ctx.start:
        assault = arrival - timedelta(minutes=10)
        arrival = assault + timedelta(minutes=10)
    month_start = date(event.year, event.month, 1)
    month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    nhs = person.nhs_number
    eligible.update(("missing_nhs_number", "missing_date_of_birth"))
    if is_missing(rng, "ae_istv_assaults", "nhs_number"):
        nhs = ""
        errors.add("missing_nhs_number")
    dob = d(ident.dob)
    if is_missing(rng, "ae_istv_assaults", "date_of_birth"):
        dob = ""
        errors.add("missing_date_of_birth")
    method = rng.choices(
        (
            "body_part",
            "knife_or_blade",
            "blunt_object",
            "bottle_or_glass",
            "other_sharp_instrument",
            "bite",
            "firearm",
            "corrosive_substance",
            "other",
            "unknown",
        ),
        weights=(45, 15, 10, 8, 3, 3, 1, 1, 6, 8),
    )[0]
    location = rng.choices(tuple(_ASSAULT_LOCATIONS), weights=(45, 15, 15, 4, 4, 7, 5, 5))[0]
    incident_borough = site_borough if rng.random() < 0.6 else random_borough(rng)
    geocoded = rng.random() < 0.7
    eth = ETHNICITIES[person.ethnicity]
    row: Row = {
        "reporting_period_start_date": d(month_start),
        "reporting_period_end_date": d(month_end),
        "site_code_of_treatment": site,
        "ae_department_type": "01",
        "attendance_id": _maybe(rng, 0.95, f"{site}-{ctx.next_id('attendance'):08d}"),
        "nhs_number": nhs,
        "date_of_birth": dob,
        "postcode_of_usual_address": ident.postcode,
        "sex": _maybe(rng, 0.97, _sex_text(person, rng)),
        "age_at_attendance": _maybe(rng, 0.95, str(person.age_on(event))),
        "ethnic_category": _maybe(rng, 0.85, eth[4]) or _maybe(rng, 0.5, "Z"),
        "arrival_datetime": dt(arrival),
        "assault_datetime": dt(assault),
        "assault_method": method,
        "assault_method_other_description": "unspecified object" if method == "other" else "",
        "assault_location_type": location,
        "assault_location_description": rng.choice(_ASSAULT_LOCATIONS[location]),
        "incident_borough_gss_code": incident_borough if geocoded else "",
        "incident_lsoa_code": _maybe(rng, 0.6, f"E01{rng.randrange(0, 35000):06d}")
        if geocoded
        else "",
        "place_of_injury_latitude": _maybe(rng, 0.3, f"{51.38 + rng.random() * 0.28:.4f}"),
        "place_of_injury_longitude": _maybe(rng, 0.3, f"{-0.45 + rng.random() * 0.6:.4f}"),
        "injury_intent_snomed": _maybe(rng, 0.6, "1912002"),
        "assailant_relationship": _maybe(
            rng,
            0.5,
            rng.choice(
                (
                    "stranger",
                    "acquaintance",
                    "partner_or_ex_partner",
                    "family_member",
                    "other",
                    "not_known",
                )
            ),
        ),
        "number_of_assailants": _maybe(rng, 0.5, rng.choice(("1", "1", "2", "3+", "not_known"))),
        "admitted_flag": _maybe(rng, 0.8, b(rng.random() < 0.15)),
    }
    return Record(row, person, event, errors, eligible)


_EXCLUSION_REASONS = (
    "PD/DB",
    "PP",
    "PA",
    "VP",
    "VA",
    "OW",
    "BU",
    "DA",
    "DM",
    "SM",
    "MT",
    "RA",
    "TH",
    "BW",
    "DR",
)
_EXCLUSION_WEIGHTS = (35, 15, 8, 10, 10, 3, 3, 3, 3, 1, 2, 1, 1, 2, 3)


def nc_year(dob: date, day: date) -> int:
    """National Curriculum year (Reception = 0) of a child with this DOB on this day."""
    academic_start = day.year if day.month >= 9 else day.year - 1
    cohort = dob.year if dob.month >= 9 else dob.year - 1
    return academic_start - cohort - 5


def school_day(ctx: Context, day: date) -> date:
    """Move a date off weekends and out of August so it falls in term time."""
    if day.month == 8:
        day += timedelta(days=31)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    day = ctx.clip(day)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def school(ctx: Context, person: Person, event: date) -> Record:
    rng = ctx.rng
    ident, eligible = _identity(ctx, "school_exclusions", person)
    year = max(1, min(13, nc_year(person.dob, event)))
    if person.school is None or (year >= 7 and person.school[1][0] == "2"):
        la = BOROUGHS[person.borough][1]
        estab = rng.choice(("2", "4", "4", "4")) if year < 7 else "4"
        person.school = (
            la,
            f"{estab}{rng.randrange(200):03d}",
            f"{rng.randrange(100000, 150000):06d}",
        )
    la, estab, urn = person.school
    if rng.random() < 0.04:
        school_type = rng.choice(("special", "alternative provision/PRU"))
    else:
        school_type = "state-funded primary" if year <= 6 else "state-funded secondary"
    category = rng.choices(("FIXD", "PERM", "LUNC"), weights=(88, 4, 8))[0]
    reasons = rng.choices(_EXCLUSION_REASONS, weights=_EXCLUSION_WEIGHTS, k=3)
    academic_start = event.year if event.month >= 9 else event.year - 1
    term = "autumn" if event.month >= 9 else ("spring" if event.month <= 3 else "summer")
    eth = ETHNICITIES[person.ethnicity]
    row: Row = {
        "upn": person.upn or "",
        "former_upn": "",
        "legal_forename": ident.forename,
        "legal_surname": ident.surname,
        "date_of_birth": d(ident.dob),
        "sex": "M" if person.sex == "male" else "F",
        "home_postcode": ident.postcode,
        "ethnicity": eth[5] if rng.random() > 0.03 else rng.choice(("REFU", "NOBT")),
        "fsm_eligible": b(rng.random() < 0.35),
        "sen_provision": rng.choices(("N", "K", "E"), weights=(60, 30, 10))[0],
        "la_code_old": la,
        "laestab": f"{la}{estab}",
        "urn": _maybe(rng, 0.9, urn),
        "school_type": school_type,
        "nc_year_actual": str(year),
        "academic_year": f"{academic_start}/{(academic_start + 1) % 100:02d}",
        "term": term,
        "exclusion_category": category,
        "exclusion_reason_1": reasons[0],
        "exclusion_reason_2": reasons[1] if rng.random() < 0.3 else "",
        "exclusion_reason_3": reasons[2] if rng.random() < 0.1 else "",
        "exclusion_start_date": d(event),
        "exclusion_sessions": str(rng.randint(1, 10)) if category != "PERM" else "",
        "permanent_exclusion_overturned": _maybe(rng, 0.8, b(rng.random() < 0.05))
        if category == "PERM"
        else "",
        "persistent_absence_flag": _maybe(rng, 0.7, b(rng.random() < 0.3)),
    }
    return Record(row, person, event, ident.errors, eligible)


_YJ_OUTCOMES = (
    "community_resolution",
    "outcome_22_deferred_prosecution",
    "youth_caution",
    "youth_conditional_caution",
    "absolute_or_conditional_discharge",
    "fine",
    "referral_order",
    "youth_rehabilitation_order",
    "detention_and_training_order",
    "section_250_or_259_custody",
    "other",
)
_YJ_OUTCOME_WEIGHTS = (15, 10, 10, 10, 5, 3, 25, 12, 5, 2, 3)


def _offence_for_justice(rng: random.Random) -> tuple[str, str, str]:
    """(offence code, YJB group, probation group): mostly violence, sometimes other offending."""
    if rng.random() < 0.7:
        code = rng.choices(OFFENCE_CODES, weights=OFFENCE_WEIGHTS)[0]
        group = OFFENCES[code][0]
        return code, _YJB_GROUP[group], _PROBATION_GROUP[group]
    return rng.choice(_OTHER_OFFENCES)


def youth_justice(ctx: Context, person: Person, event: date, first: bool) -> Record:
    rng = ctx.rng
    ident, eligible = _identity(ctx, "youth_justice", person)
    errors = ident.errors
    eligible.update(("missing_upn", "missing_pnc_id"))
    upn = person.upn or ""
    if upn and is_missing(rng, "youth_justice", "upn"):
        upn = ""
        errors.add("missing_upn")
    pnc = _pnc(ctx, person, event)
    if is_missing(rng, "youth_justice", "pnc_id"):
        pnc = ""
        errors.add("missing_pnc_id")
    if person.yjs_id is None:
        person.yjs_id = f"YJ{BOROUGHS[person.borough][1]}-{ctx.next_id('yjs'):06d}"
    code, group, _ = _offence_for_justice(rng)
    gravity = (
        rng.randint(2, 6)
        if group in ("violence_against_the_person", "robbery")
        else rng.randint(1, 5)
    )
    outcome = ctx.clip(event + timedelta(days=rng.randrange(14, 150)))
    intervention = rng.random() < 0.6
    iv_start = ctx.clip(outcome + timedelta(days=rng.randrange(0, 21)))
    row: Row = {
        "yjs_child_id": person.yjs_id,
        "pnc_id": pnc,
        "upn": upn,
        "forename": ident.forename,
        "surname": ident.surname,
        "date_of_birth": d(ident.dob),
        "home_postcode": ident.postcode,
        "sex": person.sex,
        "ethnicity": ETHNICITIES[person.ethnicity][1],
        "yjs_la_gss_code": person.borough,
        "offence_date": d(event),
        "offence_code": code,
        "yjb_offence_group": group,
        "gravity_score": str(gravity),
        "knife_or_offensive_weapon_flag": b(code in ("10C", "10D") or rng.random() < 0.1),
        "serious_violence_flag": b(
            group in ("violence_against_the_person", "robbery") and gravity >= 5
        ),
        "outcome_type": rng.choices(_YJ_OUTCOMES, weights=_YJ_OUTCOME_WEIGHTS)[0],
        "outcome_date": d(outcome),
        "first_time_entrant_flag": b(first and rng.random() < 0.6),
        "intervention_start_date": d(iv_start) if intervention else "",
        "intervention_end_date": "",
        "rosh_rating": _maybe(
            rng, 0.7, rng.choice(("low", "medium", "medium", "high", "very_high"))
        ),
        "likelihood_of_reoffending": _maybe(rng, 0.7, rng.choice(("low", "medium", "high"))),
        "safety_and_wellbeing": _maybe(
            rng, 0.7, rng.choice(("low", "medium", "high", "very_high"))
        ),
        "looked_after_flag": _maybe(rng, 0.8, b(rng.random() < 0.15)),
        "ete_status": _maybe(rng, 0.8, rng.choice(("full_time", "part_time", "none", "unknown"))),
        "sen_flag": _maybe(rng, 0.8, b(rng.random() < 0.3)),
        "substance_misuse_flag": _maybe(rng, 0.8, b(rng.random() < 0.3)),
        "mental_health_need_flag": _maybe(rng, 0.8, b(rng.random() < 0.3)),
    }
    return Record(row, person, event, errors, eligible)


_REFERRAL_SOURCES = (
    "1A",
    "1B",
    "1C",
    "1D",
    "2A",
    "2B",
    "3A",
    "3B",
    "3C",
    "3D",
    "3E",
    "3F",
    "4",
    "5A",
    "5B",
    "5C",
    "5D",
    "6",
    "7",
    "8",
    "9",
    "10",
)
_FACTORS = (
    "1A",
    "1B",
    "2A",
    "2B",
    "3A",
    "3B",
    "4A",
    "4B",
    "6B",
    "10A",
    "11A",
    "13A",
    "14A",
    "15A",
    "16A",
    "17A",
    "18B",
    "24A",
    "20",
    "21",
)


def social_care(ctx: Context, person: Person, event: date) -> Record:
    rng = ctx.rng
    ident, eligible = _identity(ctx, "childrens_social_care", person)
    errors = ident.errors
    eligible.update(("missing_nhs_number", "missing_upn"))
    nhs = person.nhs_number
    if is_missing(rng, "childrens_social_care", "nhs_number"):
        nhs = ""
        errors.add("missing_nhs_number")
    upn = person.upn or ""
    if upn and is_missing(rng, "childrens_social_care", "upn"):
        upn = ""
        errors.add("missing_upn")
    if person.la_child_id is None:
        person.la_child_id = f"{BOROUGHS[person.borough][1]}C{ctx.next_id('lachild'):07d}"
    assess_start = ctx.clip(event + timedelta(days=rng.randrange(0, 10)))
    assess_auth = ctx.clip(assess_start + timedelta(days=rng.randrange(5, 45)))
    cp = rng.random() < 0.2
    cp_start = ctx.clip(assess_auth + timedelta(days=rng.randrange(5, 30)))
    looked_after = rng.random() < 0.15
    closed = rng.random() < 0.4
    row: Row = {
        "la_child_id": person.la_child_id,
        "upn": upn,
        "upn_unknown_reason": "" if upn else rng.choice(("UN1", "UN2", "UN3", "UN5", "UN10")),
        "nhs_number": nhs,
        "forename": ident.forename if rng.random() > 0.02 else "",
        "surname": ident.surname if rng.random() > 0.02 else "",
        "date_of_birth": d(ident.dob),
        "sex": "1" if person.sex == "male" else "2",
        "ethnicity": ETHNICITIES[person.ethnicity][5],
        "disability_flag": _maybe(rng, 0.8, b(rng.random() < 0.1)),
        "home_postcode": ident.postcode,
        "la_gss_code": person.borough,
        "referral_date": d(event),
        "referral_source": rng.choice(_REFERRAL_SOURCES),
        "primary_need_code": rng.choices(
            ("N0", "N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9"),
            weights=(2, 50, 5, 4, 10, 15, 8, 1, 2, 3),
        )[0],
        "assessment_start_date": d(assess_start),
        "assessment_authorisation_date": d(assess_auth),
        "assessment_factors": ";".join(sorted(set(rng.sample(_FACTORS, rng.randint(1, 4))))),
        "s47_enquiry_flag": b(rng.random() < 0.25),
        "cp_plan_start_date": d(cp_start) if cp else "",
        "cp_plan_end_date": "",
        "cp_initial_category_of_abuse": rng.choice(("NEG", "PHY", "EMO", "SAB", "MUL"))
        if cp
        else "",
        "cin_closure_date": d(ctx.clip(assess_auth + timedelta(days=rng.randrange(30, 300))))
        if closed
        else "",
        "cin_closure_reason": rng.choice(("RC1", "RC2", "RC3", "RC4", "RC8")) if closed else "",
        "looked_after_flag": b(looked_after),
        "cla_legal_status": rng.choice(("C1", "C2", "V2", "J1")) if looked_after else "",
        # The care episode may have begun before this referral, up to two years earlier.
        "cla_episode_start_date": d(event - timedelta(days=rng.randrange(0, 730)))
        if looked_after
        else "",
        "cla_placement_type": rng.choice(("U1", "U4", "K2", "H5", "R1")) if looked_after else "",
        "missing_episodes_count_12m": _maybe(rng, 0.5, str(rng.choice((0, 0, 0, 1, 2, 5)))),
        "care_leaver_flag": _maybe(rng, 0.5, b(person.age_on(event) >= 16 and rng.random() < 0.3)),
    }
    return Record(row, person, event, errors, eligible)


_SENTENCES = (
    "community_order",
    "suspended_sentence_order",
    "licence",
    "post_sentence_supervision",
    "custody_pre_release",
)
_REQUIREMENTS = (
    "unpaid_work",
    "rehabilitation_activity_requirement",
    "curfew_electronic_monitoring",
    "accredited_programme",
    "drug_rehabilitation",
    "alcohol_treatment",
    "mental_health_treatment",
    "exclusion",
    "residence",
    "prohibited_activity",
    "other",
)


def probation(ctx: Context, person: Person, event: date) -> Record:
    rng = ctx.rng
    ident, eligible = _identity(ctx, "probation", person)
    if person.crn is None:
        person.crn = ctx.issued.unique(partial(random_crn, rng))
    sentence = rng.choices(_SENTENCES, weights=(40, 25, 25, 5, 5))[0]
    custodial = sentence in ("licence", "post_sentence_supervision", "custody_pre_release")
    if custodial and person.noms is None:
        person.noms = ctx.issued.unique(partial(random_noms, rng))
    code, _, group = _offence_for_justice(rng)
    expected_end = event + timedelta(days=rng.randrange(180, 1100))
    terminated = rng.random() < 0.1
    borough = person.borough
    requirements = rng.sample(_REQUIREMENTS, rng.randint(1, 3)) if not custodial else []
    mappa = rng.random() < 0.1
    row: Row = {
        "crn": person.crn,
        "noms_number": (person.noms or "") if custodial else "",
        "pnc_id": _pnc(ctx, person, event),
        "forename": ident.forename,
        "surname": ident.surname,
        "date_of_birth": d(ident.dob),
        "home_postcode": ident.postcode,
        "sex": person.sex,
        "ethnicity": ETHNICITIES[person.ethnicity][1],
        "pdu": f"{BOROUGHS[borough][0]} PDU",
        "borough_gss_code": borough,
        "sentence_type": sentence,
        "sentence_date": d(event),
        "expected_end_date": d(expected_end),
        "termination_date": d(ctx.clip(event + timedelta(days=rng.randrange(30, 200))))
        if terminated
        else "",
        "termination_reason": rng.choice(("Revoked", "Completed early", "Death"))
        if terminated
        else "",
        "main_offence_code": code,
        "offence_group": group,
        "requirements": ";".join(requirements),
        "rosh_level": rng.choices(("low", "medium", "high", "very_high"), weights=(30, 45, 22, 3))[
            0
        ],
        "ogrs_score": _maybe(rng, 0.8, str(rng.randrange(5, 95))),
        "tier": _maybe(rng, 0.7, rng.choice(("A", "B", "C", "D", "E", "F", "G", "NA"))),
        "mappa_category": rng.choice(("M1", "M2", "M3", "M4")) if mappa else "",
        "mappa_level": rng.choice(("1", "2", "3")) if mappa else "",
        "iom_nominal_flag": b(rng.random() < 0.1),
        "street_gangs_flag": b(rng.random() < 0.05),
        "domestic_abuse_perpetrator_flag": _maybe(rng, 0.7, b(rng.random() < 0.2)),
        "recall_flag": _maybe(rng, 0.7, b(custodial and rng.random() < 0.2)),
        "breach_flag": _maybe(rng, 0.7, b(rng.random() < 0.15)),
    }
    return Record(row, person, event, ident.errors, eligible)


Builder = Callable[[Context, Person, date], Record]
__all__ = [
    "GSS_CODES",
    "Context",
    "Record",
    "Row",
    "ae",
    "police",
    "probation",
    "school",
    "social_care",
    "youth_justice",
]
