"""The authorisation matrix: every endpoint × role × own/other organisation × agreement status.

Expectations are written out here, independently of policies/rules.yaml. An endpoint in the
app without a row here fails the suite: add its row when you add the endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from hub.api.app import create_app
from hub.auth.clients import ClientStore
from hub.models import AgreementRow
from hub.services import Hub
from tests.adapters.adapter_extracts import extract_csv
from tests.conftest import Tokens
from tests.hub.test_agreements_api import signed_example

AGREEMENT = "london-vru-partnership"
POLICE = "police_violence_offences"
EXEMPT = {
    "GET /health",
    "POST /oauth/token",
    "GET /.well-known/jwks.json",
    "GET /.well-known/oauth-authorization-server",
}
# (role, which) -> organisation. "own": the org the rules favour; "other": one that is not.
ORGS = {
    ("data_officer", "own"): "met-police",  # provides police data under London
    ("data_officer", "other"): "gstt",  # a provider, but not under London
    ("analyst", "own"): "mopac-vru",  # London's recipient
    ("analyst", "other"): "lb-lambeth-csp",  # a recipient elsewhere
    ("ig_lead", "own"): "met-police",  # a party (and provider of police data)
    ("ig_lead", "other"): "gstt",  # not a party to London
    ("ig_lead", "partnership"): "partnership",
    ("hub_admin", "own"): "hub-operator",
    ("hub_admin", "other"): "another-operator",
}
Expect = Callable[[str, str, str], int]  # (role, which, status) -> HTTP status


def party_reads(role: str, which: str, status: str) -> int:
    if role == "hub_admin" or which in ("own", "partnership"):
        return 200
    return 403


def upload_readers(role: str, which: str, status: str) -> int:
    if role in ("data_officer", "ig_lead") and which in ("own", "partnership"):
        return 200
    return 403


def upload_create(role: str, which: str, status: str) -> int:
    return 201 if (role, which, status) == ("data_officer", "own", "active") else 403


def admin_only(ok: int) -> Expect:
    return lambda role, which, status: ok if role == "hub_admin" else 403


def suspend(role: str, which: str, status: str) -> int:
    # The admin, or a partnership IG lead (the controller's IG lead too: not in this matrix).
    return 200 if role == "hub_admin" or which == "partnership" else 403


def withdraw(role: str, which: str, status: str) -> int:
    return 200 if (role, which) == ("data_officer", "own") else 403


def audit_events(role: str, which: str, status: str) -> int:
    # met-police's slice of the trail: its own IG lead, or the partnership's.
    return 200 if role == "ig_lead" and which in ("own", "partnership") else 403


def partnership_audit(role: str, which: str, status: str) -> int:
    return 200 if which == "partnership" else 403


def query_run(role: str, which: str, status: str) -> int:
    # London's recipient's analyst, under an active agreement only.
    return 200 if (role, which, status) == ("analyst", "own", "active") else 403


def budget_read(role: str, which: str, status: str) -> int:
    # Any analyst reads their own organisation's budgets (the list is filtered to it).
    return 200 if role == "analyst" else 403


QUERY_BODY = {
    "purpose": "serious-violence-needs-assessment",
    "agreement_id": AGREEMENT,
    "dataset": POLICE,
    "measure": "count_records",
    "group_by": ["sex"],
    "epsilon": 0.1,
}


def linkage_read(role: str, which: str, status: str) -> int:
    # IG leads of a party (met-police) or of the partnership, whatever the agreement's status.
    return 200 if role == "ig_lead" and which in ("own", "partnership") else 403


# Order matters only in that state-changing rows come last.
MATRIX: dict[str, tuple[str, Expect]] = {
    "GET /v1/keys": ("/v1/keys", lambda *_: 200),
    "GET /v1/agreements": ("/v1/agreements", lambda *_: 200),
    "GET /v1/agreements/{agreement_id}": (f"/v1/agreements/{AGREEMENT}", party_reads),
    "GET /v1/agreements/{agreement_id}/document": (
        f"/v1/agreements/{AGREEMENT}/document",
        party_reads,
    ),
    "GET /v1/agreements/{agreement_id}/odrl": (f"/v1/agreements/{AGREEMENT}/odrl", party_reads),
    "GET /v1/agreements/{agreement_id}/datasets/{dataset}/uploads": (
        f"/v1/agreements/{AGREEMENT}/datasets/{POLICE}/uploads",
        upload_readers,
    ),
    "GET /v1/uploads/{upload_id}": ("/v1/uploads/{upload_id}", upload_readers),
    "GET /v1/agreements/{agreement_id}/linkage": (
        f"/v1/agreements/{AGREEMENT}/linkage",
        linkage_read,
    ),
    "GET /v1/audit/events": ("/v1/audit/events?organisation=met-police", audit_events),
    "GET /v1/audit/key": ("/v1/audit/key", partnership_audit),
    "GET /v1/audit/checkpoint": ("/v1/audit/checkpoint", partnership_audit),
    "GET /v1/audit/proof/inclusion": ("/v1/audit/proof/inclusion?index=0", partnership_audit),
    "GET /v1/audit/proof/consistency": (
        "/v1/audit/proof/consistency?first=1",
        partnership_audit,
    ),
    "GET /v1/audit/export": ("/v1/audit/export", partnership_audit),
    "POST /v1/queries/preview": ("/v1/queries/preview", query_run),
    "GET /v1/budgets": ("/v1/budgets", budget_read),
    "GET /v1/clients": ("/v1/clients", admin_only(200)),
    "POST /v1/clients": ("/v1/clients", admin_only(201)),
    "POST /v1/clients/{client_id}/revoke": ("/v1/clients/{client_id}/revoke", admin_only(200)),
    "POST /v1/queries": ("/v1/queries", query_run),
    "POST /v1/agreements": ("/v1/agreements", admin_only(201)),
    "POST /v1/agreements/{agreement_id}/datasets/{dataset}/uploads": (
        f"/v1/agreements/{AGREEMENT}/datasets/{POLICE}/uploads",
        upload_create,
    ),
    "POST /v1/uploads/{upload_id}/withdraw": ("/v1/uploads/{upload_id}/withdraw", withdraw),
    "POST /v1/agreements/{agreement_id}/suspend": (
        f"/v1/agreements/{AGREEMENT}/suspend",
        suspend,
    ),
}


def walk_routes(
    routes: list[Any], prefix: str = "", dependencies: tuple[Any, ...] = ()
) -> Iterator[tuple[str, APIRoute, tuple[Any, ...]]]:
    """Every API route with the dependencies its router was included with (FastAPI wraps
    included routers; their include-level dependencies are not in ``route.dependant``)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route, dependencies
        elif hasattr(route, "original_router"):
            context = route.include_context
            inner = prefix + getattr(context, "prefix", "")
            extra = tuple(getattr(context, "dependencies", ()) or ())
            yield from walk_routes(route.original_router.routes, inner, dependencies + extra)
        elif hasattr(route, "routes"):
            yield from walk_routes(route.routes, prefix + getattr(route, "path", ""), dependencies)


def test_every_endpoint_has_a_row_and_asks_the_policy_engine(hub: Hub) -> None:
    app = create_app(hub=hub)
    endpoints: dict[str, tuple[APIRoute, tuple[Any, ...]]] = {}
    for path, route, included_with in walk_routes(app.routes):
        for method in route.methods:
            endpoints[f"{method} {path}"] = (route, included_with)
    missing = sorted(set(endpoints) - EXEMPT - set(MATRIX))
    assert not missing, f"add authorisation matrix rows for {missing}"
    assert not sorted(set(MATRIX) - set(endpoints)), "rows for endpoints that do not exist"
    for name, (route, included_with) in endpoints.items():
        if name in EXEMPT:
            continue
        calls = [dependency.call for dependency in route.dependant.dependencies]
        calls += [getattr(depends, "dependency", None) for depends in included_with]
        actions = [getattr(call, "action", None) for call in calls if hasattr(call, "action")]
        assert len(actions) == 1, f"{name} must use exactly one authorize(...) dependency"


@pytest.fixture(params=["active", "suspended", "expired"])
def status(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def api(hub: Hub) -> Iterator[TestClient]:
    with TestClient(create_app(hub=hub), base_url="https://testserver") as client:
        yield client


def set_status(hub: Hub, status: str) -> None:
    if status == "suspended":
        hub.agreements.suspend(AGREEMENT, "matrix test")
    elif status == "expired":
        # An agreement whose validity has ended (its stored terms, as the registry reads them).
        with hub.engine.begin() as connection:
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
    assert hub.agreements.status(AGREEMENT, date.today()) == status


def test_authorisation_matrix(api: TestClient, hub: Hub, tokens: Tokens, status: str) -> None:
    agreement = hub.agreements.get(AGREEMENT)
    receipt = hub.ingestor.ingest(
        __import__("io").BytesIO(extract_csv(POLICE, {"police_person_id": "P1"})),
        filename="police.csv",
        agreement=agreement,
        dataset=POLICE,
    )
    set_status(hub, status)
    register_body = json.dumps(signed_example(hub, "cardiff-model-ae-police"))
    failures = []
    for name, (path, expect) in MATRIX.items():
        method = name.split(" ")[0]
        for (role, which), organisation in ORGS.items():
            target, _ = ClientStore(hub.engine).create(organisation="gstt", role="analyst")
            url = path.format(upload_id=receipt["upload_id"], client_id=target.client_id)
            headers = tokens.headers(role, organisation)
            kwargs: dict[str, object] = {"headers": headers}
            if name == "POST /v1/clients":
                kwargs["json"] = {"organisation": "gstt", "role": "analyst"}
            elif name == "POST /v1/agreements":
                kwargs["content"] = register_body
                headers["content-type"] = "application/json"
            elif name.endswith("/uploads") and method == "POST":
                kwargs["files"] = {"file": ("police.csv", extract_csv(POLICE))}
            elif name.startswith("POST /v1/queries"):
                kwargs["json"] = QUERY_BODY
            elif name.endswith("/suspend") or name.endswith("/withdraw"):
                kwargs["json"] = {"reason": "matrix test"}
            response = api.request(method, url, **kwargs)  # type: ignore[arg-type]
            expected = expect(role, which, status)
            if response.status_code != expected:
                failures.append(
                    f"{name} as {role} of {organisation} ({which}), agreement {status}: "
                    f"{response.status_code} != {expected}: {response.text[:200]}"
                )
    assert not failures, "\n".join(failures)
