"""Micro benchmark: normalise + all match keys for 1,000,000 synthetic rows on one core.

Run: .venv/bin/python benchmarks/matchkeys_bench.py [rows] [people]
Synthetic rows are drawn from a pool of people (default 400,000) so people recur, as they do in
agency extracts; identifiers are present at realistic rates and vary in case and spacing.
Pass people == rows for (nearly) all-distinct rows, the worst case. polars is limited to one
thread (POLARS_MAX_THREADS=1) unless the environment says otherwise, to measure one core.
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")

import random
import sys
import time
from datetime import date, timedelta

import polars as pl

from privacy.matchkeys import Pseudonymiser
from privacy.normalise import pnc_check_letter, upn_check_letter
from privacy.secrets import generate_master_secret

FORENAMES = [
    "John",
    "Mohammed",
    "Bill",
    "Zoë",
    "Amara",
    "Oliver",
    "Aisha",
    "Jayden",
    "Chloe",
    "Kwame",
    "Fatima",
    "Liam",
    "Olivia",
    "Mary-Jane",
    "Seán",
    "Ibrahim",
    "Grace",
    "Tyler",
]
SURNAMES = [
    "Smith",
    "O'Brien",
    "Khan",
    "van der Berg",
    "Okafor",
    "Nowak",
    "Smith-Jones",
    "Ahmed",
    "Mensah",
    "Jones",
    "Ali",
    "Williams",
    "Brown",
    "Łukasiewicz",
    "Da Silva",
]
POSTCODES = ["SW1A 1AA", "e1 6an", "N17 9PL", "CR0 2RH", "SE15 5DQ", "W10 6HG", "NW10 8JN"]


def nhs(rng: random.Random) -> str:
    while True:
        body = [rng.randint(0, 9) for _ in range(9)]
        check = 11 - sum(d * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return "".join(map(str, body)) + str(check)


def upn(rng: random.Random) -> str:
    body = f"{rng.randint(201, 938):03d}{rng.randint(0, 99_999_999):08d}{rng.randint(0, 9)}"
    return upn_check_letter(body) + body


def pnc(rng: random.Random) -> str:
    year, serial = rng.randint(1995, 2024), rng.randint(1, 999_999)
    return f"{year}/{serial}{pnc_check_letter(year, serial)}"


def people(n: int, rng: random.Random) -> list[dict[str, object]]:
    out = []
    for i in range(n):
        out.append(
            {
                "forename": rng.choice(FORENAMES) + ("" if i % 7 else " Junior"),
                "surname": rng.choice(SURNAMES) + str(i // 1000 % 50 * "x")[:3],
                "nhs_number": nhs(rng) if rng.random() < 0.7 else None,
                "upn": upn(rng) if rng.random() < 0.35 else None,
                "former_upn": upn(rng) if rng.random() < 0.02 else None,
                "pnc_id": pnc(rng) if rng.random() < 0.2 else None,
                "local_id": f"P{i:08d}",
                "postcode": rng.choice(POSTCODES) if rng.random() < 0.85 else None,
                "date_of_birth": date(1990, 1, 1) + timedelta(days=rng.randint(0, 10_000)),
            }
        )
    return out


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    pool = int(sys.argv[2]) if len(sys.argv) > 2 else 400_000
    rng = random.Random(42)
    persons = pl.DataFrame(people(pool, rng))
    index = pl.Series("i", [rng.randrange(pool) for _ in range(rows)])
    frame = persons[index]
    # vary case and spacing per row, as agencies do
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0)
        .then(pl.col("surname").str.to_uppercase())
        .otherwise(pl.col("surname"))
    )
    pseudonymiser = Pseudonymiser(bytes.fromhex(generate_master_secret()), "bench", 1)
    for size in (min(rows, 65_536), rows):
        batch = frame.head(size)
        start = time.perf_counter()
        keys = pseudonymiser.match_keys(batch, dataset="bench")
        elapsed = time.perf_counter() - start
        digests = sum(keys.height - keys.get_column(c).null_count() for c in keys.columns)
        print(
            f"threads={pl.thread_pool_size()} {size:>9,} rows: {elapsed:6.2f} s  "
            f"{size / elapsed:>10,.0f} rows/s  "
            f"({digests / size:.1f} digests/row, {len(keys.columns)} key columns)"
        )


if __name__ == "__main__":
    main()
