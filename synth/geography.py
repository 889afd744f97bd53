"""London geography for synthetic records: boroughs, DfE LA codes, postcode districts, ED sites."""

from __future__ import annotations

import random

# GSS code -> (borough name, DfE 3-digit LA code, postcode districts mostly inside it,
#              share of London's serious-violence events, approx. (easting, northing) centre)
BOROUGHS: dict[str, tuple[str, str, tuple[str, ...], float, tuple[int, int]]] = {
    "E09000001": ("City of London", "201", ("EC1A", "EC2V", "EC3N", "EC4M"), 0.3, (532500, 181300)),
    "E09000002": (
        "Barking and Dagenham",
        "301",
        ("IG11", "RM8", "RM9", "RM10"),
        3.0,
        (547500, 185000),
    ),
    "E09000003": (
        "Barnet",
        "302",
        ("N2", "N3", "N11", "N12", "NW4", "NW7", "NW9", "EN5"),
        3.0,
        (524000, 191000),
    ),
    "E09000004": (
        "Bexley",
        "303",
        ("DA5", "DA6", "DA7", "DA14", "DA15", "DA16"),
        2.0,
        (549000, 175000),
    ),
    "E09000005": ("Brent", "304", ("NW2", "NW6", "NW10", "HA0", "HA9"), 3.8, (519500, 185000)),
    "E09000006": (
        "Bromley",
        "305",
        ("BR1", "BR2", "BR3", "BR5", "BR6", "SE20"),
        2.5,
        (542000, 167000),
    ),
    "E09000007": ("Camden", "202", ("NW1", "NW3", "NW5", "WC1H", "WC1N"), 3.2, (528500, 184500)),
    "E09000008": ("Croydon", "306", ("CR0", "CR2", "CR7", "SE25", "SW16"), 4.5, (533000, 165000)),
    "E09000009": (
        "Ealing",
        "307",
        ("W5", "W7", "W13", "UB1", "UB2", "UB5", "UB6"),
        3.3,
        (516000, 181000),
    ),
    "E09000010": (
        "Enfield",
        "308",
        ("EN1", "EN2", "EN3", "N9", "N13", "N18", "N21"),
        3.6,
        (533000, 196000),
    ),
    "E09000011": (
        "Greenwich",
        "203",
        ("SE2", "SE3", "SE7", "SE9", "SE10", "SE18", "SE28"),
        3.5,
        (542000, 176000),
    ),
    "E09000012": ("Hackney", "204", ("E5", "E8", "E9", "N16", "N1"), 3.8, (534500, 185000)),
    "E09000013": (
        "Hammersmith and Fulham",
        "205",
        ("W6", "W12", "W14", "SW6"),
        2.4,
        (523500, 178000),
    ),
    "E09000014": (
        "Haringey",
        "309",
        ("N4", "N8", "N10", "N15", "N17", "N22"),
        3.6,
        (532000, 189500),
    ),
    "E09000015": ("Harrow", "310", ("HA1", "HA2", "HA3", "HA5", "HA7"), 1.6, (515000, 189000)),
    "E09000016": (
        "Havering",
        "311",
        ("RM1", "RM2", "RM3", "RM7", "RM11", "RM12"),
        2.3,
        (553500, 188000),
    ),
    "E09000017": (
        "Hillingdon",
        "312",
        ("UB3", "UB4", "UB7", "UB8", "UB10", "HA4"),
        2.8,
        (507500, 183000),
    ),
    "E09000018": (
        "Hounslow",
        "313",
        ("TW3", "TW4", "TW5", "TW7", "TW13", "TW14"),
        2.8,
        (512500, 175000),
    ),
    "E09000019": ("Islington", "206", ("N5", "N7", "N19", "EC1V"), 3.0, (531000, 185500)),
    "E09000020": (
        "Kensington and Chelsea",
        "207",
        ("W8", "W10", "W11", "SW3", "SW5", "SW10"),
        1.7,
        (526000, 179000),
    ),
    "E09000021": (
        "Kingston upon Thames",
        "314",
        ("KT1", "KT2", "KT3", "KT5", "KT6", "KT9"),
        1.3,
        (519000, 167000),
    ),
    "E09000022": (
        "Lambeth",
        "208",
        ("SE11", "SE27", "SW2", "SW4", "SW8", "SW9"),
        4.6,
        (530500, 175000),
    ),
    "E09000023": (
        "Lewisham",
        "209",
        ("SE4", "SE6", "SE8", "SE12", "SE13", "SE14", "SE23"),
        3.8,
        (537500, 174000),
    ),
    "E09000024": ("Merton", "315", ("SW19", "SW20", "CR4", "SM4"), 1.7, (525500, 169500)),
    "E09000025": ("Newham", "316", ("E6", "E7", "E12", "E13", "E15", "E16"), 4.8, (540500, 183500)),
    "E09000026": (
        "Redbridge",
        "317",
        ("IG1", "IG2", "IG3", "IG4", "IG5", "IG6"),
        2.6,
        (543000, 189000),
    ),
    "E09000027": (
        "Richmond upon Thames",
        "318",
        ("TW1", "TW2", "TW9", "TW10", "TW11", "TW12"),
        1.1,
        (518000, 172500),
    ),
    "E09000028": (
        "Southwark",
        "210",
        ("SE1", "SE5", "SE15", "SE16", "SE17", "SE21", "SE22"),
        4.8,
        (533500, 177000),
    ),
    "E09000029": ("Sutton", "319", ("SM1", "SM2", "SM3", "SM5", "SM6"), 1.5, (526500, 163500)),
    "E09000030": ("Tower Hamlets", "211", ("E1", "E2", "E3", "E14", "E1W"), 4.6, (536000, 181500)),
    "E09000031": ("Waltham Forest", "320", ("E4", "E10", "E11", "E17"), 3.2, (537500, 189500)),
    "E09000032": (
        "Wandsworth",
        "212",
        ("SW11", "SW12", "SW15", "SW17", "SW18"),
        3.0,
        (526000, 174500),
    ),
    "E09000033": (
        "Westminster",
        "213",
        ("W1D", "W1F", "W2", "W9", "SW1V", "NW8"),
        5.3,
        (529000, 180500),
    ),
}

GSS_CODES: tuple[str, ...] = tuple(BOROUGHS)
BOROUGH_WEIGHTS: tuple[float, ...] = tuple(b[3] for b in BOROUGHS.values())

# Letters allowed in the unit part of an inward code (Royal Mail excludes C I K M O V).
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

# Type 1 emergency departments (ODS site codes) and the borough each sits in.
ED_SITES: tuple[tuple[str, str], ...] = (
    ("RJ122", "E09000022"),  # St Thomas'
    ("RJZ01", "E09000028"),  # King's College Hospital
    ("RAL01", "E09000007"),  # Royal Free
    ("RRV03", "E09000007"),  # University College Hospital
    ("R1HKH", "E09000030"),  # Royal London
    ("R1HNH", "E09000025"),  # Newham
    ("R1HWH", "E09000031"),  # Whipps Cross
    ("RQM01", "E09000020"),  # Chelsea and Westminster
    ("RYJ02", "E09000033"),  # St Mary's
    ("RJ611", "E09000008"),  # Croydon University
    ("RJ701", "E09000032"),  # St George's
    ("RJ224", "E09000023"),  # University Hospital Lewisham
    ("RJ231", "E09000011"),  # Queen Elizabeth Woolwich
    ("RKEQ4", "E09000019"),  # Whittington
    ("RAPNM", "E09000014"),  # North Middlesex
    ("R1K01", "E09000015"),  # Northwick Park
    ("RAS01", "E09000017"),  # Hillingdon
    ("RF4QH", "E09000016"),  # Queen's Romford
    ("RVR50", "E09000029"),  # St Helier
    ("RAX01", "E09000021"),  # Kingston
)


def random_postcode(rng: random.Random, gss: str) -> str:
    """A well-formed postcode in one of the borough's districts (the unit itself is random)."""
    district = rng.choice(BOROUGHS[gss][2])
    unit = rng.choice(_INWARD_LETTERS) + rng.choice(_INWARD_LETTERS)
    return f"{district} {rng.randint(1, 9)}{unit}"


def random_borough(rng: random.Random) -> str:
    return rng.choices(GSS_CODES, weights=BOROUGH_WEIGHTS)[0]
