"""Counts read the query facts in ``record_persons`` (dimension values and first-in-cell marks
written by the linkage service): every group-by and filter must give exactly the distinct
persons that the raw records say, after a withdrawal, and for rows stored before the facts
existed (repaired when the linkage service starts)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select, text, update

from hub.dimensions import ATTRIBUTE_FIELDS
from hub.linkage import LinkageService
from hub.models import RecordPersonRow
from hub.queries import bounded_table, plan
from hub.services import Hub
from privacy.dp.budget import Filter, LinkageCondition, Query
from tests.queries.conftest import AGREEMENT, POLICE, withdraw_dataset

TODAY = date(2026, 6, 1)
RAW = text(
    """
    SELECT rp.person_id, rp.rank_in_dataset, r.borough_gss_code, r.event_date, r.sex,
           r.age_band, r.attributes
    FROM records r
    JOIN record_persons rp ON rp.upload_pk = r.upload_pk AND rp."row" = r."row"
    JOIN uploads u ON u.id = r.upload_pk
    WHERE u.agreement_id = :agreement AND u.live = 1 AND r.dataset = :dataset
    """
)


def raw_records(hub: Hub, dataset: str) -> list[dict[str, Any]]:
    """Each live record of the dataset with its person, rank and dimension values, read from
    ``records`` itself (not from the query facts under test)."""
    with hub.engine.connect() as connection:
        rows = connection.execute(RAW, {"agreement": AGREEMENT, "dataset": dataset}).all()
    out = []
    for person, rank, borough, event_date, sex, age_band, attributes in rows:
        attrs = json.loads(attributes) if isinstance(attributes, str) else attributes
        record = {
            "person": person,
            "rank": int(rank),
            "borough": borough,
            "month": str(event_date)[:7],
            "sex": sex,
            "age_band": age_band,
        }
        for dimension, fields in ATTRIBUTE_FIELDS.items():
            record[dimension] = attrs.get(fields[dataset]) if dataset in fields else None
        out.append(record)
    return out


def distinct_persons(records: list[dict[str, Any]], q: Query, k: int) -> dict[tuple[Any, ...], int]:
    kept = [
        r for r in records if r["rank"] <= k and all(r[f.dimension] in f.values for f in q.filters)
    ]
    cells = {(r["person"], *(r[d] for d in q.group_by)) for r in kept}
    counts = Counter(cell[1:] or ("all",) for cell in cells)
    return {key: n for key, n in counts.items() if None not in key}


def released_counts(hub: Hub, q: Query, k: int) -> dict[tuple[Any, ...], int]:
    p = plan(q, hub.agreements.get(AGREEMENT), TODAY)
    with hub.engine.connect() as connection:
        table = bounded_table(connection, p, k)
    got = {tuple(row[:-1]): int(row[-1]) for row in table.select(*p.key_columns, "value").rows()}
    return {key: n for key, n in got.items() if n}


SHAPES: list[dict[str, Any]] = [
    {"group_by": ()},
    {"group_by": ("sex",)},
    {"group_by": ("borough", "month")},
    {"group_by": ("age_band", "offence_group")},
    {"group_by": ("borough",), "filters": (Filter(dimension="sex", values=("male",)),)},
    # a public value no record has: it has no code yet, and counts nothing
    {"group_by": ("borough",), "filters": (Filter(dimension="sex", values=("not_specified",)),)},
    {
        "group_by": ("month",),
        "filters": (
            Filter(dimension="weapon", values=("knife_or_blade", "other_sharp_instrument")),
            Filter(dimension="age_band", values=("15-17", "18-24")),
        ),
    },
    {
        "group_by": ("borough", "month", "sex", "age_band", "offence_group", "weapon"),
        "filters": (
            Filter(dimension="month", values=("2026-03", "2026-04", "2026-05")),
            Filter(dimension="sex", values=("male",)),
        ),
    },
]


def count_query(dataset: str = POLICE, **shape: Any) -> Query:
    return Query(
        agreement_id=AGREEMENT, dataset=dataset, measure="count_persons", epsilon=0.5, **shape
    )


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "+".join(s["group_by"]) or "total")
def test_counts_of_persons_match_the_raw_records_for_every_shape(
    demo_hub: Hub, shape: dict[str, Any]
) -> None:
    records = raw_records(demo_hub, POLICE)
    q = count_query(**shape)
    for k in (1, 2, 4):
        assert released_counts(demo_hub, q, k) == distinct_persons(records, q, k), k


def test_counts_stay_exact_after_a_withdrawal_and_for_rows_stored_before_the_facts(
    demo_hub: Hub,
) -> None:
    q = count_query(group_by=("borough", "month"))
    ae = count_query("ae_istv_assaults", group_by=("weapon",))
    withdraw_dataset(demo_hub, "school_exclusions")
    for query in (q, ae):
        records = raw_records(demo_hub, query.dataset)
        assert released_counts(demo_hub, query, 3) == distinct_persons(records, query, 3)

    # As migration 0007 leaves rows stored before it: no facts, no marks.
    facts = ["event_date", "month", "borough", "sex", "age_band", "offence_group", "weapon"]
    with demo_hub.engine.begin() as connection:
        connection.execute(update(RecordPersonRow).values(dict.fromkeys([*facts, "first_mask"])))
    assert released_counts(demo_hub, q, 3) == {}
    restarted = LinkageService(
        demo_hub.engine,
        demo_hub.agreements,
        demo_hub.linkage._master_secret,
        demo_hub.settings.key_version,
    )
    with demo_hub.engine.connect() as connection:
        persons_before = connection.execute(
            select(RecordPersonRow.upload_pk, RecordPersonRow.row, RecordPersonRow.person_id)
        ).all()
    restarted.catch_up()
    with demo_hub.engine.connect() as connection:
        persons_after = connection.execute(
            select(RecordPersonRow.upload_pk, RecordPersonRow.row, RecordPersonRow.person_id)
        ).all()
        unmarked = connection.execute(
            select(RecordPersonRow.row).where(RecordPersonRow.first_mask.is_(None))
        ).all()
    assert sorted(persons_after) == sorted(persons_before)  # repaired, not re-linked
    assert unmarked == []
    for query in (q, ae):
        records = raw_records(demo_hub, query.dataset)
        assert released_counts(demo_hub, query, 3) == distinct_persons(records, query, 3)


def test_a_linkage_condition_counts_persons_by_their_records_that_meet_it(demo_hub: Hub) -> None:
    """With a linkage condition the marks do not apply (the condition keeps single records):
    the count groups by person in SQL and must still match the raw records."""
    q = count_query(
        "ae_istv_assaults",
        group_by=("sex",),
        linkage=(LinkageCondition(dataset=POLICE, days_before=365, days_after=0),),
    )
    ae = raw_records(demo_hub, "ae_istv_assaults")
    with demo_hub.engine.connect() as connection:
        police = connection.execute(
            text(
                "SELECT rp.person_id, r.event_date FROM records r JOIN record_persons rp "
                'ON rp.upload_pk = r.upload_pk AND rp."row" = r."row" '
                "WHERE r.dataset = :d"
            ),
            {"d": POLICE},
        ).all()
        ae_dates = connection.execute(
            text(
                "SELECT rp.person_id, rp.rank_in_dataset, r.event_date FROM records r "
                'JOIN record_persons rp ON rp.upload_pk = r.upload_pk AND rp."row" = r."row" '
                "WHERE r.dataset = 'ae_istv_assaults'"
            )
        ).all()
    police_dates: dict[str, list[date]] = {}
    for person, day in police:
        police_dates.setdefault(person, []).append(date.fromisoformat(str(day)))
    meets = {
        (person, int(rank))
        for person, rank, day in ae_dates
        if any(
            0 <= (date.fromisoformat(str(day)) - d).days <= 365
            for d in police_dates.get(person, [])
        )
    }
    records = [r for r in ae if (r["person"], r["rank"]) in meets]
    assert records, "the demo data should have A&E attendances after a police record"
    assert released_counts(demo_hub, q, 3) == distinct_persons(records, q, 3)
