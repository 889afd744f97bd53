"""Analysts' queries through the API: a release with its guarantee, the same query again for
free, previews that spend nothing, budgets, and every kind of bad input refused."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from hub.models import AgreementRow, AuditEventRow, BudgetSpendRow, ReleaseRow
from hub.services import Hub
from privacy.dp.budget import MIN_EPSILON
from tests.conftest import Tokens
from tests.queries.conftest import AGREEMENT, RECIPIENT, body, withdraw_dataset


def spends(hub: Hub) -> list[tuple[float, str | None]]:
    with hub.engine.connect() as connection:
        rows = connection.execute(select(BudgetSpendRow.epsilon, BudgetSpendRow.release_id))
        return [(float(e), r) for e, r in rows]


def test_a_release_has_every_cell_its_guarantee_and_is_audited_with_the_spend(
    api: TestClient, analyst: dict[str, str], demo_hub: Hub
) -> None:
    response = api.post("/v1/queries", json=body(), headers=analyst)
    assert response.status_code == 200, response.text
    release = response.json()
    assert len(release["cells"]) == 33 * 24  # the full public key set, empty cells included
    cell = release["cells"][0]
    assert set(cell) >= {"borough", "month", "value", "lower", "upper", "half_width", "suppressed"}
    assert release["epsilon"] == pytest.approx(0.5)
    assert release["unit_of_privacy"] == "one person in the linkage domain"
    assert release["mechanism"] == "discrete_laplace"
    bound = release["contribution_bound"]
    assert 1 <= bound["rows_per_person"] <= 10
    # the bound came from the population's rows-per-person histogram, released first (at
    # 0.02 x the 0.5 per-query cap) and paid by this first query on the population
    assert bound["histogram_epsilon"] == pytest.approx(0.01)
    histogram = bound["histogram_release_id"]
    assert release["post_processing"]["round_to_base"] == 5
    assert release["post_processing"]["suppress_below"] == 10
    assert release["budget"]["epsilon_spent"] == pytest.approx(0.51)
    assert release["budget"]["epsilon_remaining"] == pytest.approx(7.49)
    assert release["repeated"] is False
    assert sorted(spends(demo_hub)) == [
        (pytest.approx(0.01), histogram),
        (pytest.approx(0.5), release["release_id"]),
    ]
    # a second query on the same population chooses its bound from the same histogram
    other = api.post("/v1/queries", json=body(group_by=["sex"]), headers=analyst).json()
    assert other["contribution_bound"]["histogram_release_id"] == histogram
    assert other["budget"]["epsilon_spent"] == pytest.approx(1.01)
    with demo_hub.engine.connect() as connection:
        assert (
            connection.execute(
                select(func.count()).where(AuditEventRow.action == "query.release")
            ).scalar_one()
            == 3
        )
        event = connection.execute(
            select(AuditEventRow).where(AuditEventRow.release_id == release["release_id"])
        ).one()
    assert event.release_id == release["release_id"]
    assert event.query_hash == release["query_hash"]
    assert event.epsilon_spent == pytest.approx(0.5)
    assert event.organisation == RECIPIENT


def test_the_same_query_again_returns_the_stored_release_and_spends_nothing(
    api: TestClient, analyst: dict[str, str], demo_hub: Hub
) -> None:
    first = api.post("/v1/queries", json=body(), headers=analyst).json()
    # the same query in another order is the same canonical query
    again = api.post(
        "/v1/queries", json=body(group_by=["month", "borough"]), headers=analyst
    ).json()
    assert again["release_id"] == first["release_id"]
    assert again["cells"] == first["cells"]
    assert again["repeated"] is True
    assert len(spends(demo_hub)) == 2  # the release and the histogram its bound came from


def test_preview_spends_nothing_and_budgets_show_what_is_left(
    api: TestClient, analyst: dict[str, str], demo_hub: Hub
) -> None:
    preview = api.post("/v1/queries/preview", json=body(), headers=analyst)
    assert preview.status_code == 200, preview.text
    rows = preview.json()["by_bound"]
    assert [r["bound"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["half_width"] < rows[4]["half_width"]
    target = api.post(
        "/v1/queries/preview", json=body(epsilon=None, target_half_width=30), headers=analyst
    ).json()
    assert all(r["half_width"] == 30 for r in target["by_bound"])
    assert target["by_bound"][0]["epsilon"] < target["by_bound"][4]["epsilon"]
    assert spends(demo_hub) == []
    api.post("/v1/queries", json=body(epsilon=0.25), headers=analyst)
    budgets = api.get("/v1/budgets", headers=analyst)
    assert budgets.status_code == 200
    london = [b for b in budgets.json() if b["agreement_id"] == AGREEMENT]
    assert london[0]["epsilon_spent"] == pytest.approx(0.26)  # and its histogram's 0.01
    assert london[0]["epsilon_remaining"] == pytest.approx(7.74)


def test_every_measure_and_a_linkage_condition_release(
    api: TestClient, analyst: dict[str, str]
) -> None:
    for changes in [
        {"measure": "count_records", "group_by": ["sex"]},
        {"measure": "sum", "attribute": "age_at_offence", "group_by": ["sex"]},
        {"measure": "mean", "attribute": "age_at_offence", "group_by": ["age_band"]},
        {"measure": "quantile", "attribute": "age_at_offence", "quantile": 0.5, "group_by": []},
        {"group_by": ["weapon"], "filters": [{"dimension": "sex", "values": ["male"]}]},
        {
            "dataset": "ae_istv_assaults",
            "group_by": ["borough"],
            "linkage": [{"dataset": "school_exclusions", "days_before": 730}],
        },
        {"epsilon": None, "target_half_width": 400},
    ]:
        response = api.post("/v1/queries", json=body(**changes), headers=analyst)
        assert response.status_code == 200, (changes, response.text)
        release = response.json()
        assert release["cells"], changes
        assert release["epsilon"] <= 0.5 + 1e-9


def test_a_half_width_too_wide_to_cost_anything_pays_the_least_epsilon(
    api: TestClient, analyst: dict[str, str], demo_hub: Hub
) -> None:
    query = body(epsilon=None, target_half_width=1e8)
    preview = api.post("/v1/queries/preview", json=query, headers=analyst)
    assert preview.status_code == 200, preview.text
    assert {row["epsilon"] for row in preview.json()["by_bound"]} == {MIN_EPSILON}
    response = api.post("/v1/queries", json=query, headers=analyst)
    assert response.status_code == 200, response.text
    assert response.json()["epsilon"] == MIN_EPSILON
    # the spent total moves by exactly what was paid: the histogram, then the release
    assert sorted(epsilon for epsilon, _ in spends(demo_hub))[0] == MIN_EPSILON


def send(api: TestClient, headers: dict[str, str], query: Any) -> Any:
    content = query if isinstance(query, str) else json.dumps(query)
    return api.post(
        "/v1/queries", content=content, headers={**headers, "content-type": "application/json"}
    )


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        (body(group_by=["ethnicity"]), 403, "dimensions ethnicity are not permitted"),
        (
            body(filters=[{"dimension": "postcode", "values": ["SE1"]}]),
            403,
            "dimensions postcode are not permitted",
        ),
        (
            body(filters=[{"dimension": "borough", "values": ["E09000099"]}]),
            422,
            "not in the public value set",
        ),
        (body(group_by=["offence_group"], dataset="ae_istv_assaults"), 422, "has no field"),
        (body(epsilon=0), 422, "The query is not valid"),
        (body(epsilon=-1), 422, "The query is not valid"),
        (json.dumps(body(epsilon=1)).replace("1}", "NaN}"), 422, "The query is not valid"),
        (json.dumps(body(epsilon=1)).replace("1}", "Infinity}"), 422, "The query is not valid"),
        (body(epsilon=0.9), 403, "epsilon 0.9 against 0.5 per query"),
        # so small it would not even change a spent total: refused, never a 500
        (body(epsilon=1e-16), 422, "The query is not valid"),
        (body(epsilon=None, target_half_width=1e20), 422, "The query is not valid"),
        # an accuracy the cap cannot buy is answered in its own terms, not as "epsilon inf"
        (body(epsilon=None, target_half_width=0.5), 403, "half-width of 0.5 cannot be reached"),
        (body(epsilon=None, target_half_width=3), 403, "half-width of 3 needs epsilon"),
        ("{bad", 422, "The request body is not JSON"),
        ("[" * 100_000 + "]" * 100_000, 422, "The request body is not JSON"),
        (
            body(linkage=[{"dataset": "gang_matrix", "days_before": 30}]),
            403,
            "linkage condition names dataset 'gang_matrix'",
        ),
        (body(dataset="gang_matrix"), 403, "does not cover dataset 'gang_matrix'"),
        (body(purpose="marketing"), 403, "purpose marketing is not a purpose"),
        # a purpose is a short id: a long text would only be copied into the permanent log
        (body(purpose="x" * 100_000), 422, "purpose must be a purpose id"),
        # numbers as numbers: lax parsing would read "0.1" and true as 0.1 and 1
        (body(epsilon="0.1"), 422, "The query is not valid"),
        (body(epsilon=True), 422, "The query is not valid"),
        (json.dumps(body(epsilon=1)).replace("1}", "9" * 5_000 + "}"), 422, "a number too long"),
        (body(measure="median"), 422, "The query is not valid"),
        (body(agreement_id="no-such-agreement"), 404, "no agreement"),
    ],
)
def test_bad_input_is_refused_with_a_reason_and_spends_nothing(
    api: TestClient,
    analyst: dict[str, str],
    demo_hub: Hub,
    query: Any,
    status: int,
    says: str,
) -> None:
    response = send(api, analyst, query)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"], response.text
    assert len(response.content) < 10_000  # no request text echoed back
    assert spends(demo_hub) == []
    # a refusal is an audited access decision
    with demo_hub.engine.connect() as connection:
        denied = connection.execute(
            select(func.count()).where(
                AuditEventRow.action == "query.run", AuditEventRow.decision == "deny"
            )
        ).scalar_one()
    # the door refused it: a request it could not read as a query, or a policy refusal
    door = (
        says
        in (
            "The query is not valid",
            "The request body is not JSON",
            "purpose must be a purpose id",
            "a number too long",
        )
        or status != 422
    )
    if door and "gang_matrix" not in says:
        assert denied >= 1


def test_an_analyst_of_a_non_recipient_organisation_is_refused(
    api: TestClient, tokens: Tokens, demo_hub: Hub
) -> None:
    for organisation in ["lb-lambeth-csp", "met-police"]:
        response = api.post(
            "/v1/queries", json=body(), headers=tokens.headers("analyst", organisation)
        )
        assert response.status_code == 403
        assert f"{organisation} is not a recipient" in response.json()["error"]["message"]
    response = api.post(
        "/v1/queries", json=body(), headers=tokens.headers("ig_lead", "partnership")
    )
    assert response.status_code == 403
    assert spends(demo_hub) == []


@pytest.mark.parametrize("status", ["suspended", "expired"])
def test_no_query_under_a_suspended_or_expired_agreement(
    api: TestClient, analyst: dict[str, str], demo_hub: Hub, status: str
) -> None:
    if status == "suspended":
        demo_hub.agreements.suspend(AGREEMENT, "test")
    else:
        with demo_hub.engine.begin() as connection:
            document = dict(
                connection.execute(
                    select(AgreementRow.document).where(AgreementRow.agreement_id == AGREEMENT)
                ).scalar_one()
            )
            document["status"] = "expired"
            connection.execute(
                update(AgreementRow)
                .where(AgreementRow.agreement_id == AGREEMENT)
                .values(document=document)
            )
    assert demo_hub.agreements.status(AGREEMENT, date.today()) == status
    for path in ["/v1/queries", "/v1/queries/preview"]:
        response = api.post(path, json=body(), headers=analyst)
        assert response.status_code == 403
        assert f"is {status}" in response.json()["error"]["message"]
    assert spends(demo_hub) == []


def test_an_exhausted_budget_is_refused_saying_what_is_left(
    api: TestClient, analyst: dict[str, str], demo_hub: Hub
) -> None:
    # 8.0 per quarter: 15 queries at 0.5 on one population (every pair of dimensions) and
    # its histogram (0.01) leave 0.49; a 0.3 leaves 0.19
    dimensions = ["borough", "month", "sex", "age_band", "offence_group", "weapon"]
    pairs = [[a, b] for i, a in enumerate(dimensions) for b in dimensions[i + 1 :]]
    assert len(pairs) == 15
    for pair in pairs:
        response = api.post("/v1/queries", json=body(group_by=pair), headers=analyst)
        assert response.status_code == 200, response.text
    assert api.post("/v1/queries", json=body(epsilon=0.3), headers=analyst).status_code == 200
    response = api.post("/v1/queries", json=body(group_by=["sex"]), headers=analyst)
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "budget_exhausted"
    assert error["message"].startswith("The query needs epsilon 0.5 but only epsilon 0.19 of 8")
    assert "histogram" not in error["message"]  # this population's histogram is paid for
    assert error["details"]["epsilon_remaining"] == pytest.approx(0.19)
    # a new population needs its histogram too: 0.18 + 0.01 fits exactly, then nothing does
    male = {"filters": [{"dimension": "sex", "values": ["male"]}]}
    response = api.post("/v1/queries", json=body(epsilon=0.185, **male), headers=analyst)
    assert response.status_code == 409 and "0.195" in response.json()["error"]["message"]
    assert "includes 0.01 for the rows-per-person histogram" in response.json()["error"]["message"]
    assert (
        api.post("/v1/queries", json=body(epsilon=0.18, **male), headers=analyst).status_code == 200
    )
    # the stored release is still free
    assert api.post("/v1/queries", json=body(epsilon=0.3), headers=analyst).json()["repeated"]
    total = sum(e for e, _ in spends(demo_hub))
    assert total == pytest.approx(8.0)
    with demo_hub.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ReleaseRow)).scalar_one() == 19


def test_a_changed_upload_set_gets_a_new_histogram(
    api: TestClient, analyst: dict[str, str], demo_hub: Hub
) -> None:
    first = api.post("/v1/queries", json=body(epsilon=0.1), headers=analyst).json()
    same = api.post("/v1/queries", json=body(epsilon=0.2), headers=analyst).json()
    histogram = first["contribution_bound"]["histogram_release_id"]
    assert same["contribution_bound"]["histogram_release_id"] == histogram
    withdraw_dataset(demo_hub, "police_violence_offences")
    after = api.post("/v1/queries", json=body(epsilon=0.3), headers=analyst).json()
    assert after["contribution_bound"]["histogram_release_id"] != histogram
    assert after["budget"]["epsilon_spent"] == pytest.approx(0.1 + 0.2 + 0.3 + 2 * 0.01)
