"""The SQL computes what it claims (checked against direct SQL and plain Python), the
sensitivity argument holds on the stored data, and the declared 95% intervals cover the true
bounded values about 95% of the time over many releases on the demo data.

Sensitivity argument (counts, bound k = rows per person): the SQL keeps a person's records
with rank_in_dataset <= k, so a person keeps at most k records; a count of records moves by at
most k in total (l1 <= k) when the person is removed, and a count of distinct persons moves at
most k cells by 1 each (the person's kept records fall in at most k cells), so l1 <= k = g.
The empirical privacy audit of the mechanisms themselves is in tests/dp/test_dp_mechanisms.py
(privacy.dp.audit); it is not repeated at the hub level.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import date

import polars as pl
import pytest
from sqlalchemy import delete, text

from hub.models import RecordPersonRow
from hub.queries import bounded_table, noise, plan, rank_histogram
from hub.services import Hub
from privacy.dp.budget import Query
from tests.queries.conftest import AGREEMENT, POLICE

TODAY = date(2026, 6, 1)
RAW = text(
    """
    SELECT rp.person_id, rp.rank_in_dataset, r.borough_gss_code, r.event_date, r.sex
    FROM records r
    JOIN record_persons rp ON rp.upload_pk = r.upload_pk AND rp."row" = r."row"
    JOIN uploads u ON u.id = r.upload_pk
    WHERE u.agreement_id = :agreement AND u.live = 1 AND r.dataset = :dataset
    """
)


def raw_rows(hub: Hub) -> list[tuple[str, int, str | None, str, str | None]]:
    with hub.engine.connect() as connection:
        rows = connection.execute(RAW, {"agreement": AGREEMENT, "dataset": POLICE}).all()
    return [(p, int(k), b, str(d)[:7], s) for p, k, b, d, s in rows]


def truth(
    rows: list[tuple[str, int, str | None, str, str | None]], k: int, measure: str
) -> Counter[tuple[str | None, str]]:
    kept = [r for r in rows if r[1] <= k]
    if measure == "count_records":
        return Counter((b, m) for _, _, b, m, _ in kept)
    return Counter((b, m) for (_, b, m) in {(p, b, m) for p, _, b, m, _ in kept})


def query(measure: str) -> Query:
    return Query(
        agreement_id=AGREEMENT,
        dataset=POLICE,
        measure=measure,  # type: ignore[arg-type]
        group_by=("borough", "month"),
        epsilon=0.5,
    )


def as_dict(table: pl.DataFrame) -> dict[tuple[str, str], int]:
    return {(b, m): int(v) for b, m, v in table.select("borough", "month", "value").iter_rows()}


@pytest.mark.parametrize("measure", ["count_records", "count_persons"])
def test_the_bounded_table_matches_direct_sql_and_the_sensitivity_holds(
    demo_hub: Hub, measure: str
) -> None:
    p = plan(query(measure), demo_hub.agreements.get(AGREEMENT), TODAY)
    rows = raw_rows(demo_hub)
    assert rows, "the demo data should be linked"
    for k in (1, 2, 3):
        with demo_hub.engine.connect() as connection:
            got = as_dict(bounded_table(connection, p, k))
        want = {key: n for key, n in truth(rows, k, measure).items() if key[0] is not None}
        assert got == want
    # Histogram in SQL: persons by their highest rank
    highest: dict[str, int] = defaultdict(int)
    for person, rank, *_ in rows:
        highest[person] = max(highest[person], rank)
    with demo_hub.engine.connect() as connection:
        assert rank_histogram(connection, p) == dict(Counter(highest.values()))
    # Remove the person with the most records: the table moves by at most k in l1.
    k = 2
    with demo_hub.engine.connect() as connection:
        before = as_dict(bounded_table(connection, p, k))
    person = max(highest, key=lambda x: highest[x])
    with demo_hub.engine.begin() as connection:
        connection.execute(delete(RecordPersonRow).where(RecordPersonRow.person_id == person))
    with demo_hub.engine.connect() as connection:
        after = as_dict(bounded_table(connection, p, k))
    l1 = sum(abs(before.get(key, 0) - after.get(key, 0)) for key in set(before) | set(after))
    assert 1 <= l1 <= k


def test_declared_95_percent_intervals_cover_the_true_bounded_counts(demo_hub: Hub) -> None:
    """Over 300 releases x 792 cells, coverage must lie in [0.95 - 4 sigma, 0.965]: the
    discrete Laplace interval covers with probability in [0.95, 0.96] (integer steps), and
    sigma = sqrt(0.05 * 0.95 / N) is the binomial standard deviation (cells are noised
    independently)."""
    p = plan(query("count_persons"), demo_hub.agreements.get(AGREEMENT), TODAY)
    k = 2
    with demo_hub.engine.connect() as connection:
        table = bounded_table(connection, p, k)
    keyed = truth(raw_rows(demo_hub), k, "count_persons")
    true = [keyed.get((b, m), 0) for b, m in p.keyset.iter_rows()]
    covered = total = 0
    for _ in range(300):
        release = noise(p, table, k, 0.45)
        lower = release.table["lower"].to_list()
        upper = release.table["upper"].to_list()
        covered += sum(lo <= t <= hi for lo, t, hi in zip(lower, true, upper, strict=True))
        total += len(true)
    coverage = covered / total
    sigma = math.sqrt(0.05 * 0.95 / total)
    assert 0.95 - 4 * sigma <= coverage <= 0.965, coverage
