"""The linkage service on a real database: uploads link after they commit, withdrawals
re-link only the persons they touched, a restart or a crash leaves nothing inconsistent, and
an IG lead sees counts per cascade level through the API. Bad input, each with a test."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from hub.api.app import create_app
from hub.auth.clients import ClientStore
from hub.cli import app as cli_app
from hub.linkage import LinkageService, linkage_counts
from hub.models import (
    PersonRow,
    RecordAnchorBatchRow,
    RecordPersonRow,
    RecordRow,
    UploadRow,
)
from hub.services import Hub, build_hub
from hub.settings import Settings
from tests.adapters.adapter_extracts import extract_csv
from tests.conftest import TEST_MASTER_SECRET, HubProcess, Tokens

AGREEMENT = "london-vru-partnership"
POLICE = "police_violence_offences"
AE = "ae_istv_assaults"
SCHOOLS = "school_exclusions"
CSC = "childrens_social_care"
PROBATION = "probation"
VALID_NHS = "9434765919"
OTHER_NHS = "9876543210"  # also passes mod 11
BAD_NHS = "9434765918"  # fails its check digit


def upload(hub: Hub, dataset: str, *rows: dict[str, str], link: bool = True) -> dict[str, Any]:
    receipt = hub.ingestor.ingest(
        io.BytesIO(extract_csv(dataset, *rows)),
        filename=f"{dataset}.csv",
        agreement=hub.agreements.get(AGREEMENT),
        dataset=dataset,
    )
    if link:
        hub.linkage.link_upload(receipt["upload_id"])
    return receipt


def persons(hub: Hub, receipt: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored person rows of an upload's records, in spreadsheet-row order."""
    with hub.engine.connect() as connection:
        rows = connection.execute(
            select(
                RecordRow.row,
                RecordPersonRow.person_id,
                RecordPersonRow.link_level,
                RecordPersonRow.link_key,
                RecordPersonRow.rank_in_dataset,
            )
            .join(UploadRow, UploadRow.id == RecordRow.upload_pk)
            .outerjoin(
                RecordPersonRow,
                (RecordPersonRow.upload_pk == RecordRow.upload_pk)
                & (RecordPersonRow.row == RecordRow.row),
            )
            .where(UploadRow.upload_id == receipt["upload_id"])
            .order_by(RecordRow.row)
        ).all()
    return [r._asdict() for r in rows]


def person_counts(hub: Hub) -> dict[str, int]:
    with hub.engine.connect() as connection:
        return dict(connection.execute(select(PersonRow.person_id, PersonRow.records)).all())


def table_state(hub: Hub) -> tuple[list[Any], dict[str, int]]:
    with hub.engine.connect() as connection:
        rows = connection.execute(
            select(RecordPersonRow).order_by(RecordPersonRow.upload_pk, RecordPersonRow.row)
        ).all()
    return [tuple(r) for r in rows], person_counts(hub)


def restarted(hub: Hub) -> LinkageService:
    service = LinkageService(
        hub.engine, hub.agreements, bytes.fromhex(TEST_MASTER_SECRET), hub.keyring.key_version
    )
    service.catch_up()
    return service


def police(forename: str, police_id: str, **extra: str) -> dict[str, str]:
    return {"forename": forename, "police_person_id": police_id, "pnc_id": "", **extra}


def withdraw_and_relink(hub: Hub, receipt: dict[str, Any]) -> None:
    hub.ingestor.withdraw(receipt["upload_id"])
    hub.linkage.after_withdrawal(receipt["upload_id"])


def assert_alone_again(hub: Hub, receipt: dict[str, Any], person_id: str) -> None:
    """The upload's one record keeps its person id, now a person of that record alone."""
    (record,) = persons(hub, receipt)
    assert record["person_id"] == person_id and record["link_level"] is None
    assert person_counts(hub) == {person_id: 1}


def assert_join_survives_a_restart_and_a_later_upload(
    hub: Hub, joined: dict[str, Any], person_id: str
) -> None:
    """A join outside the cascade (anchor or Bloom) is restored unchanged at start, and a
    later, unrelated upload does not undo it."""
    before = table_state(hub)
    restarted(hub)
    assert table_state(hub) == before
    upload(hub, POLICE, police("Bola", "P2", surname="Adeyemi", crime_reference="C2"))
    assert persons(hub, joined)[0]["person_id"] == person_id


# ---------------------------------------------------------------- linking and persons


def test_records_of_one_person_across_agencies_share_an_opaque_stable_person(hub: Hub) -> None:
    first = upload(hub, POLICE, police("Amara", "P1"))
    school = upload(hub, SCHOOLS, {})
    (p,) = persons(hub, first)
    (s,) = persons(hub, school)
    assert p["person_id"] == s["person_id"]
    assert len(p["person_id"]) == 32 and "amara" not in p["person_id"].lower()
    assert s["link_level"] == 2 and s["link_key"] == "name_dob_postcode"
    assert person_counts(hub) == {p["person_id"]: 2}
    # stable across a restart: the linker is rebuilt from the tables, nothing is rewritten
    before = table_state(hub)
    restarted(hub)
    assert table_state(hub) == before


def test_rank_within_person_and_dataset_follows_event_date(hub: Hub) -> None:
    receipt = upload(
        hub,
        POLICE,
        police("Amara", "P1", offence_datetime_from="2024-03-05 10:00:00", crime_reference="C1"),
        police("Amara", "P1", offence_datetime_from="2024-03-01 10:00:00", crime_reference="C2"),
        police("Amara", "P1", offence_datetime_from="2024-03-03 10:00:00", crime_reference="C3"),
    )
    rows = persons(hub, receipt)
    assert len({r["person_id"] for r in rows}) == 1
    assert [r["rank_in_dataset"] for r in rows] == [3, 1, 2]
    assert {r["link_level"] for r in rows} == {1}  # the police person id (local_id)


def test_person_ids_are_unrelated_across_domains(hub: Hub) -> None:
    from privacy.linkage.cascade import Linker

    a = Linker(b"k" * 32, "london-vru", 1)
    b = Linker(b"k" * 32, "cardiff", 1)
    c = Linker(b"k" * 32, "london-vru", 2)
    for linker in (a, b, c):
        linker._state.record_ids.append("1:2")  # the same hub record id
    assert len({a.person_id(0), b.person_id(0), c.person_id(0)}) == 3


# ---------------------------------------------------------------- bad input


def test_records_without_any_usable_identifier_are_kept_and_never_linked(hub: Hub) -> None:
    empty = {"nhs_number": "", "date_of_birth": "", "postcode_of_usual_address": ""}
    receipt = upload(hub, AE, empty, {**empty, "attendance_id": "ATT-2"})
    rows = persons(hub, receipt)
    assert len(rows) == 2  # kept
    assert rows[0]["person_id"] != rows[1]["person_id"]
    assert [r["link_level"] for r in rows] == [None, None]
    assert sorted(person_counts(hub).values()) == [1, 1]


def test_an_nhs_number_failing_its_check_digit_links_nothing(hub: Hub) -> None:
    bad = {"nhs_number": BAD_NHS, "postcode_of_usual_address": ""}
    receipt = upload(
        hub,
        AE,
        {**bad, "date_of_birth": "2008-03-14"},
        {**bad, "date_of_birth": "2009-01-02", "age_at_attendance": "15"},
    )
    rows = persons(hub, receipt)
    assert rows[0]["person_id"] != rows[1]["person_id"]
    assert [r["link_level"] for r in rows] == [None, None]


def test_same_nhs_number_with_different_sex_and_dob_links_the_nhs_number_wins(hub: Hub) -> None:
    receipt = upload(
        hub,
        AE,
        {"nhs_number": VALID_NHS, "sex": "female", "date_of_birth": "2008-03-14"},
        {
            "nhs_number": VALID_NHS,
            "sex": "male",
            "date_of_birth": "2009-07-01",
            "age_at_attendance": "14",
        },
    )
    rows = persons(hub, receipt)
    assert rows[0]["person_id"] == rows[1]["person_id"]
    assert [r["link_level"] for r in rows] == [1, 1]


def test_a_household_of_twins_stays_two_persons(hub: Hub) -> None:
    twins = upload(hub, POLICE, police("Amara", "P1"), police("Adaeze", "P2", crime_reference="C2"))
    a, b = persons(hub, twins)
    assert a["person_id"] != b["person_id"]
    # a school record of one twin joins that twin only; the other stays apart
    school = upload(hub, SCHOOLS, {"legal_forename": "Adaeze"})
    (s,) = persons(hub, school)
    assert s["person_id"] == b["person_id"] != a["person_id"]
    # social care knows a twin by surname, DOB and postcode only (no forename): not trusted
    csc = upload(hub, CSC, {"forename": "", "upn": "", "nhs_number": ""})
    (c,) = persons(hub, csc)
    assert c["person_id"] not in (a["person_id"], b["person_id"])


def test_the_same_upload_twice_changes_nothing(hub: Hub) -> None:
    first = upload(hub, POLICE, police("Amara", "P1"), police("Bola", "P2", crime_reference="C2"))
    before = table_state(hub)
    again = upload(hub, POLICE, police("Amara", "P1"), police("Bola", "P2", crime_reference="C2"))
    assert again["upload_id"] == first["upload_id"]
    assert hub.linkage.link_upload(again["upload_id"]) == 0
    assert table_state(hub) == before


def test_withdrawing_an_upload_others_linked_to_relinks_only_its_persons(hub: Hub) -> None:
    bystander = upload(hub, POLICE, police("Bola", "P9", surname="Adeyemi"))
    pol = upload(hub, POLICE, police("Amara", "P1"))
    school = upload(hub, SCHOOLS, {})  # joins police by name, DOB and postcode
    # social care knows her by a new surname and no forename: it joins the school by UPN only
    csc = upload(hub, CSC, {"forename": "", "surname": "Okafor-Smith", "nhs_number": ""})
    ids = {persons(hub, r)[0]["person_id"] for r in (pol, school, csc)}
    assert len(ids) == 1
    (person,) = ids
    assert person_counts(hub)[person] == 3
    untouched = persons(hub, bystander)
    hub.ingestor.withdraw(school["upload_id"])
    hub.linkage.after_withdrawal(school["upload_id"])
    (p,), (c,) = persons(hub, pol), persons(hub, csc)
    # the bridge is gone: police keeps the person id (its record is the oldest), csc is apart
    assert p["person_id"] == person and p["link_level"] is None
    assert c["person_id"] != person and c["link_level"] is None
    assert persons(hub, bystander) == untouched
    with hub.engine.connect() as connection:
        assert (
            connection.execute(select(func.count()).select_from(RecordPersonRow)).scalar_one() == 3
        )
    assert person_counts(hub) == {person: 1, c["person_id"]: 1, untouched[0]["person_id"]: 1}
    # a restart finds the same state
    before = table_state(hub)
    restarted(hub)
    assert table_state(hub) == before


def test_withdrawing_one_of_a_persons_uploads_updates_its_record_count(hub: Hub) -> None:
    pol = upload(hub, POLICE, police("Amara", "P1"))
    school = upload(hub, SCHOOLS, {})
    csc = upload(hub, CSC, {"nhs_number": ""})  # joins both by name, DOB, postcode, UPN
    (person,) = {persons(hub, r)[0]["person_id"] for r in (pol, school, csc)}
    hub.ingestor.withdraw(csc["upload_id"])
    hub.linkage.after_withdrawal(csc["upload_id"])
    assert person_counts(hub) == {person: 2}
    before = table_state(hub)
    restarted(hub)
    assert table_state(hub) == before


def test_a_crash_between_store_and_link_leaves_pending_records_linked_at_start(
    hub: Hub,
) -> None:
    pol = upload(hub, POLICE, police("Amara", "P1"))
    school = upload(hub, SCHOOLS, {}, link=False)  # stored; the process died before linking
    assert persons(hub, school)[0]["person_id"] is None
    restarted(hub)
    assert persons(hub, school)[0]["person_id"] == persons(hub, pol)[0]["person_id"]


def test_a_withdrawal_while_no_linker_ran_is_repaired_at_start(hub: Hub) -> None:
    pol = upload(hub, POLICE, police("Amara", "P1"))
    school = upload(hub, SCHOOLS, {})
    csc = upload(hub, CSC, {"forename": "", "surname": "Okafor-Smith", "nhs_number": ""})
    hub.ingestor.withdraw(school["upload_id"])  # no after_withdrawal: a crash
    restarted(hub)
    assert persons(hub, pol)[0]["person_id"] != persons(hub, csc)[0]["person_id"]
    assert sorted(person_counts(hub).values()) == [1, 1]


# ---------------------------------------------------------------- records without names


def test_an_ae_record_without_nhs_number_joins_the_one_person_with_its_dob_sex_and_postcode(
    hub: Hub,
) -> None:
    pol = upload(hub, POLICE, police("Amara", "P1"))
    # A&E knows no name; this attendance has no NHS number either
    ae = upload(hub, AE, {"nhs_number": ""})
    (p,), (a,) = persons(hub, pol), persons(hub, ae)
    assert a["person_id"] == p["person_id"]
    assert a["link_level"] == 6 and a["link_key"] == "anchor_dob_sex_postcode"
    assert p["link_level"] == 6  # it was alone until the attendance joined it
    assert person_counts(hub) == {p["person_id"]: 2}
    assert_join_survives_a_restart_and_a_later_upload(hub, ae, p["person_id"])


def test_an_ae_record_with_another_dob_or_postcode_is_not_attached(hub: Hub) -> None:
    pol = upload(hub, POLICE, police("Amara", "P1"))
    other_dob = upload(
        hub, AE, {"nhs_number": "", "date_of_birth": "2007-09-30", "age_at_attendance": "16"}
    )
    moved = upload(
        hub, AE, {"nhs_number": "", "postcode_of_usual_address": "E8 1DY", "attendance_id": "ATT-2"}
    )
    person = persons(hub, pol)[0]["person_id"]
    assert persons(hub, other_dob)[0]["person_id"] != person
    assert persons(hub, moved)[0]["person_id"] != person
    assert persons(hub, pol)[0]["link_level"] is None


def test_an_ae_record_matching_twins_is_attached_to_neither(hub: Hub) -> None:
    twins = upload(hub, POLICE, police("Amara", "P1"), police("Adaeze", "P2", crime_reference="C2"))
    ae = upload(hub, AE, {"nhs_number": ""})
    a, b = persons(hub, twins)
    (e,) = persons(hub, ae)
    assert e["person_id"] not in (a["person_id"], b["person_id"])
    assert e["link_level"] is None


def test_an_ae_record_is_never_attached_across_different_nhs_numbers(hub: Hub) -> None:
    csc = upload(hub, CSC, {})  # social care records her NHS number
    ae = upload(hub, AE, {"nhs_number": OTHER_NHS})  # same DOB, sex, postcode; another NHS no.
    assert persons(hub, ae)[0]["person_id"] != persons(hub, csc)[0]["person_id"]


def test_withdrawing_the_named_upload_detaches_the_ae_record(hub: Hub) -> None:
    pol = upload(hub, POLICE, police("Amara", "P1"))
    ae = upload(hub, AE, {"nhs_number": ""})
    assert persons(hub, ae)[0]["person_id"] == persons(hub, pol)[0]["person_id"]
    hub.ingestor.withdraw(pol["upload_id"])
    hub.linkage.after_withdrawal(pol["upload_id"])
    (a,) = persons(hub, ae)
    assert a["link_level"] is None and person_counts(hub) == {a["person_id"]: 1}
    before = table_state(hub)
    restarted(hub)
    assert table_state(hub) == before


def test_withdrawing_the_ae_upload_leaves_the_named_record_alone_again(hub: Hub) -> None:
    pol = upload(hub, POLICE, police("Amara", "P1"))
    ae = upload(hub, AE, {"nhs_number": ""})
    person = persons(hub, pol)[0]["person_id"]
    withdraw_and_relink(hub, ae)
    assert_alone_again(hub, pol, person)


# ---------------------------------------------------------------- misspelt names: Bloom filters


def whitfield(**extra: str) -> dict[str, str]:
    return police("Jonathan", "P1", surname="Whitfield", **extra)


# the keys miss him: both names misspelt (no exact or nickname-resolved name), and he moved
MISSPELT_SCHOOL = {
    "legal_forename": "Johnathan",
    "legal_surname": "Whitfeld",
    "home_postcode": "E8 1DY",
}


def test_a_misspelt_name_at_a_new_address_joins_its_person_through_the_keyed_bloom_filter(
    hub: Hub,
) -> None:
    pol = upload(hub, POLICE, whitfield())
    school = upload(hub, SCHOOLS, MISSPELT_SCHOOL)
    (p,), (s,) = persons(hub, pol), persons(hub, school)
    assert s["person_id"] == p["person_id"]
    assert s["link_level"] == 5 and s["link_key"] == "bloom_name_clk"
    assert p["link_level"] == 5  # it was alone until the school record joined it
    with hub.engine.connect() as connection:
        counts = linkage_counts(connection, AGREEMENT)
    assert counts[SCHOOLS] == {"level_5": 1} and counts[POLICE] == {"level_5": 1}
    assert_join_survives_a_restart_and_a_later_upload(hub, school, p["person_id"])


def test_withdrawing_the_misspelt_upload_leaves_the_first_record_alone_again(hub: Hub) -> None:
    pol = upload(hub, POLICE, whitfield())
    school = upload(hub, SCHOOLS, MISSPELT_SCHOOL)
    person = persons(hub, pol)[0]["person_id"]
    withdraw_and_relink(hub, school)
    assert_alone_again(hub, pol, person)
    # and withdrawing the first upload instead detaches the other record the same way
    again = upload(hub, SCHOOLS, {**MISSPELT_SCHOOL, "upn": "U202211009999"})
    assert persons(hub, again)[0]["person_id"] == person
    hub.ingestor.withdraw(pol["upload_id"])
    hub.linkage.after_withdrawal(pol["upload_id"])
    (s,) = persons(hub, again)
    assert s["link_level"] is None and person_counts(hub) == {s["person_id"]: 1}


def test_similar_names_are_not_joined_inside_one_extract_nor_between_twins(hub: Hub) -> None:
    # one extract, two police person ids: the agency says these are two people
    both = upload(
        hub,
        POLICE,
        whitfield(),
        police("Johnathan", "P2", surname="Whitfeld", crime_reference="C2"),
    )
    a, b = persons(hub, both)
    assert a["person_id"] != b["person_id"]
    # twins (same surname, DOB and address, other forename) in two agencies stay apart
    twin = upload(hub, POLICE, police("Amara", "P3", crime_reference="C3"))
    other_twin = upload(hub, SCHOOLS, {"legal_forename": "Adaeze"})
    assert persons(hub, twin)[0]["person_id"] != persons(hub, other_twin)[0]["person_id"]


def test_a_bloom_join_never_crosses_two_nhs_numbers(hub: Hub) -> None:
    first = upload(hub, CSC, {"forename": "Jonathan", "surname": "Whitfield"})
    second = upload(
        hub,
        CSC,
        {
            "forename": "Johnathan",
            "surname": "Whitfeld",
            "home_postcode": "E8 1DY",
            "nhs_number": OTHER_NHS,
            "la_child_id": "LAC-1",
            "upn": "",
        },
    )
    assert persons(hub, first)[0]["person_id"] != persons(hub, second)[0]["person_id"]


def test_twins_of_opposite_sex_with_near_names_are_never_compared(hub: Hub) -> None:
    # same surname, date of birth and address; Daniel and Danielle score 0.89 on names alone
    pol = upload(hub, POLICE, police("Daniel", "P1", surname="Scottfield", sex="male"))
    school = upload(hub, SCHOOLS, {"legal_forename": "Danielle", "legal_surname": "Scottfield"})
    assert persons(hub, school)[0]["person_id"] != persons(hub, pol)[0]["person_id"]


def test_two_people_of_one_agency_in_two_uploads_are_never_joined(hub: Hub) -> None:
    # a month apart, two police person ids: the police say these are two people
    january = upload(hub, POLICE, police("Harriet", "P1", surname="Pilkington"))
    february = upload(
        hub, POLICE, police("Harriett", "P2", surname="Pilkington", crime_reference="C2")
    )
    assert persons(hub, february)[0]["person_id"] != persons(hub, january)[0]["person_id"]


def misspelt_pieces(
    date_of_birth: str, police_id: str, upn: str, pnc_id: str
) -> list[tuple[str, dict[str, str]]]:
    """One woman in three agencies, at three addresses, her name spelt three ways."""
    born = {"date_of_birth": date_of_birth}
    return [
        (
            POLICE,
            police(
                "Florentyna",
                police_id,
                surname="Wojciechowska",
                home_postcode="E8 1DY",
                crime_reference=f"C-{police_id}",
                **born,
            ),
        ),
        (
            SCHOOLS,
            {
                "legal_forename": "Florentina",
                "legal_surname": "Wojciechowska",
                "home_postcode": "SE15 4QT",
                "upn": upn,
                "former_upn": upn,
                **born,
            },
        ),
        (
            PROBATION,
            {
                "forename": "Florentyna",
                "surname": "Wojciehowska",
                "home_postcode": "N7 8QP",
                "pnc_id": pnc_id,
                "crn": f"X{police_id}",
                **born,
            },
        ),
    ]


def test_three_misspelt_pieces_join_alike_linked_live_or_after_downtime(hub: Hub) -> None:
    pieces = misspelt_pieces("2008-05-01", "P1", "U202211001234", "2019/1234567J")
    live = {persons(hub, upload(hub, dataset, row))[0]["person_id"] for dataset, row in pieces}
    assert len(live) == 1
    # another such woman whose three uploads are linked in one pass, when a linker starts:
    # one pass lets a person take part in one Bloom link, so it is run until it links no more
    pieces = misspelt_pieces("2008-06-02", "P2", "H801200001001", "2020/7654321T")
    late = [upload(hub, dataset, row, link=False) for dataset, row in pieces]
    restarted(hub)
    joined = {persons(hub, receipt)[0]["person_id"] for receipt in late}
    assert len(joined) == 1 and joined != live


def test_records_stored_before_name_clks_were_kept_link_as_before(hub: Hub) -> None:
    pol = upload(hub, POLICE, whitfield())
    school = upload(hub, SCHOOLS, MISSPELT_SCHOOL, link=False)
    # as a hub of 2026-11-25 stored them: anchors, no CLKs
    with hub.engine.begin() as connection:
        connection.execute(update(RecordAnchorBatchRow).values(clks=None))
    restarted(hub)  # links the pending school record: nothing to compare, so apart
    (p,), (s,) = persons(hub, pol), persons(hub, school)
    assert s["person_id"] != p["person_id"] and s["link_level"] is None


def test_with_name_clks_off_a_misspelt_name_stays_apart_and_nothing_is_stored(
    settings: Settings,
) -> None:
    from hub.demo import register_examples

    quiet = build_hub(settings.model_copy(update={"ingest_name_clks": False}))
    register_examples(quiet, settings.data_dir / "signing-keys")
    try:
        pol = upload(quiet, POLICE, whitfield())
        school = upload(quiet, SCHOOLS, MISSPELT_SCHOOL)
        assert persons(quiet, school)[0]["person_id"] != persons(quiet, pol)[0]["person_id"]
        with quiet.engine.connect() as connection:
            stored = connection.execute(select(RecordAnchorBatchRow.clks)).scalars().all()
        assert stored and all(clks is None for clks in stored)
    finally:
        quiet.engine.dispose()


# ---------------------------------------------------------------- what IG leads see


@pytest.fixture
def api(hub: Hub) -> Iterator[TestClient]:
    with TestClient(create_app(hub=hub), base_url="https://testserver") as client:
        yield client


def test_ig_lead_sees_counts_per_level_and_unlinked(
    api: TestClient, hub: Hub, tokens: Tokens
) -> None:
    upload(
        hub,
        POLICE,
        police("Amara", "P1"),
        police("Bola", "P2", crime_reference="C2", surname="Adeyemi"),
    )
    upload(hub, SCHOOLS, {})
    upload(hub, POLICE, police("Chidi", "P3", crime_reference="C3"), link=False)
    response = api.get(
        f"/v1/agreements/{AGREEMENT}/linkage", headers=tokens.headers("ig_lead", "partnership")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    by_dataset = {d["dataset"]: d for d in body["datasets"]}
    assert by_dataset[POLICE]["records"] == 3
    assert by_dataset[POLICE]["linked_by_level"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 0, "6": 0}
    assert by_dataset[POLICE]["unlinked"] == 1
    assert by_dataset[POLICE]["pending"] == 1
    assert by_dataset[SCHOOLS]["linked_by_level"]["2"] == 1
    assert by_dataset[AE]["records"] == 0
    assert "Amara" not in response.text and "person_id" not in response.text
    denied = api.get(
        f"/v1/agreements/{AGREEMENT}/linkage", headers=tokens.headers("analyst", "mopac-vru")
    )
    assert denied.status_code == 403


def test_a_partys_ig_lead_sees_no_linkage_count_that_another_agencys_records_move(
    api: TestClient, hub: Hub, tokens: Tokens
) -> None:
    # A person known only to the schools. If the police could read any exact linkage count,
    # a crafted police upload of that person would move one: the schools' unlinked count, or
    # the level at which its own record linked.
    upload(hub, SCHOOLS, {})
    agreement = hub.agreements.get(AGREEMENT)
    police_provider = agreement.dataset(POLICE).provider

    def seen_by_police() -> dict[str, Any]:
        response = api.get(
            f"/v1/agreements/{AGREEMENT}/linkage",
            headers=tokens.headers("ig_lead", police_provider),
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    before = seen_by_police()
    upload(hub, POLICE, police("Amara", "P1"))  # the schools' Amara: links at level 2
    after = seen_by_police()
    assert [d["dataset"] for d in after["datasets"]] == [POLICE]
    assert after["linkage_visible"] is False
    assert after["datasets"][0]["records"] == before["datasets"][0]["records"] + 1
    assert after["datasets"][0]["linked_by_level"] is None
    assert after["datasets"][0]["unlinked"] is None
    assert {k: v for k, v in after.items() if k != "datasets"} == {
        k: v for k, v in before.items() if k != "datasets"
    }
    partnership = api.get(
        f"/v1/agreements/{AGREEMENT}/linkage", headers=tokens.headers("ig_lead", "partnership")
    ).json()
    assert partnership["linkage_visible"] is True
    police_counts = next(d for d in partnership["datasets"] if d["dataset"] == POLICE)
    assert police_counts["linked_by_level"]["2"] == 1  # the link happened; the police cannot see it
    recipient = next(p.id for p in agreement.recipients() if p.id != police_provider)
    none = api.get(
        f"/v1/agreements/{AGREEMENT}/linkage", headers=tokens.headers("ig_lead", recipient)
    )
    assert none.status_code == 200, none.text
    provided = {d.name for d in agreement.datasets if d.provider == recipient}
    assert {d["dataset"] for d in none.json()["datasets"]} == provided
    assert SCHOOLS not in provided


def test_ig_lead_reads_the_counts_with_the_hub_linkage_command(hub: Hub, tmp_path: Path) -> None:
    bola = police(
        "Bola",
        "P2",
        crime_reference="C2",
        surname="Adeyemi",
        date_of_birth="2001-06-30",
        age_at_offence="22",
    )
    upload(hub, POLICE, police("Amara", "P1"), bola)
    upload(hub, AE, {"nhs_number": ""})  # attaches to Amara by DOB, sex and postcode
    client, secret = ClientStore(hub.engine).create(organisation="partnership", role="ig_lead")
    analyst, analyst_secret = ClientStore(hub.engine).create(
        organisation="mopac-vru", role="analyst"
    )
    server = HubProcess(hub.settings, tmp_path / "hub.log")
    server.start()
    try:
        env = {
            "HUB_URL": server.url,
            "HUB_CLIENT_ID": client.client_id,
            "HUB_CLIENT_SECRET": secret or "",
            "COLUMNS": "200",
        }
        result = CliRunner().invoke(cli_app, env=env, args=["linkage", AGREEMENT])
        assert result.exit_code == 0, result.output
        rows = {
            line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in result.output.splitlines()
            if line.count("│") > 3
        }
        # records, level 1-4, level 6, alone, pending
        assert rows[POLICE] == ["2", "0", "0", "0", "0", "0", "1", "1", "0"]
        assert rows[AE] == ["1", "0", "0", "0", "0", "0", "1", "0", "0"]
        assert "level 6: anchor_dob_sex_postcode" in " ".join(result.output.split())
        unknown = CliRunner().invoke(cli_app, env=env, args=["linkage", "no-such-agreement"])
        # a mistyped agreement: the hub's refusal, naming what to do, is printed
        assert unknown.exit_code == 1 and "agreement_not_found" in unknown.output
        env.update(HUB_CLIENT_ID=analyst.client_id, HUB_CLIENT_SECRET=analyst_secret or "")
        denied = CliRunner().invoke(cli_app, env=env, args=["linkage", AGREEMENT])
        assert denied.exit_code == 1 and "Amara" not in denied.output
    finally:
        server.stop()
