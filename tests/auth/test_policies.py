"""The decision engine on its own: deny by default, agreement-scoped, reasons in words."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from policies import AgreementFacts, Resource, Subject, decide, load_policy, scopes_for_role

LONDON = AgreementFacts(
    id="london-vru-partnership",
    status="active",
    parties=frozenset({"mopac-vru", "met-police", "nhs-england-london"}),
    recipients=frozenset({"mopac-vru"}),
    controllers=frozenset({"mopac-vru"}),
    providers={"police_violence_offences": "met-police", "ae_istv_assaults": "nhs-england-london"},
    purposes=frozenset({"serious-violence-needs-assessment"}),
    dimensions=frozenset({"borough", "month", "age_band"}),
    epsilon_per_query=0.5,
)
QUERY = {"purpose": "serious-violence-needs-assessment", "dimensions": ["borough"], "epsilon": 0.5}


def subject(role: str, organisation: str) -> Subject:
    return Subject(f"{organisation}.{role}", role, organisation, scopes_for_role(role))


def query(agreement: AgreementFacts) -> Resource:
    return Resource(kind="agreement", id=agreement.id, agreement=agreement)


def test_an_analyst_queries_under_an_active_agreement_naming_their_organisation() -> None:
    decision = decide(subject("analyst", "mopac-vru"), "query.run", query(LONDON), QUERY)
    assert decision.allowed, decision.reason
    assert "mopac-vru is a recipient" in decision.reason


@pytest.mark.parametrize(
    ("organisation", "agreement", "context", "why"),
    [
        ("lb-lambeth-csp", LONDON, QUERY, "lb-lambeth-csp is not a recipient"),
        ("met-police", LONDON, QUERY, "met-police is not a recipient"),
        (
            "mopac-vru",
            AgreementFacts(**{**LONDON.__dict__, "status": "suspended"}),
            QUERY,
            "is suspended",
        ),
        (
            "mopac-vru",
            AgreementFacts(**{**LONDON.__dict__, "status": "expired"}),
            QUERY,
            "is expired",
        ),
        ("mopac-vru", LONDON, {**QUERY, "purpose": "marketing"}, "purpose marketing is not"),
        ("mopac-vru", LONDON, {**QUERY, "dimensions": ["postcode"]}, "dimensions postcode"),
        ("mopac-vru", LONDON, {**QUERY, "epsilon": 5.0}, "epsilon 5.0 against 0.5"),
    ],
)
def test_an_analyst_query_outside_the_agreement_is_denied(
    organisation: str, agreement: AgreementFacts, context: dict[str, object], why: str
) -> None:
    decision = decide(subject("analyst", organisation), "query.run", query(agreement), context)
    assert not decision.allowed
    assert why in decision.reason, decision.reason


def test_nobody_else_runs_queries_and_the_admin_reads_no_data() -> None:
    for role, org in [
        ("data_officer", "met-police"),
        ("ig_lead", "partnership"),
        ("hub_admin", "hub-operator"),
    ]:
        decision = decide(subject(role, org), "query.run", query(LONDON), QUERY)
        assert not decision.allowed and "may not query.run" in decision.reason
    upload = Resource(
        kind="upload",
        id="upl_1",
        agreement=LONDON,
        dataset="police_violence_offences",
        organisation="met-police",
    )
    assert not decide(subject("hub_admin", "hub-operator"), "upload.read", upload).allowed
    assert decide(subject("data_officer", "met-police"), "upload.read", upload).allowed
    assert not decide(subject("data_officer", "nhs-england-london"), "upload.read", upload)


def test_deny_by_default_and_scopes_are_required() -> None:
    assert not decide(subject("hub_admin", "x"), "records.dump", Resource(kind="record")).allowed
    assert not decide(Subject("s", "superuser", "x"), "keys.read", Resource(kind="key")).allowed
    no_scope = Subject("s", "analyst", "mopac-vru", frozenset({"agreements:read"}))
    decision = decide(no_scope, "query.run", query(LONDON), QUERY)
    assert not decision.allowed and "lacks scope queries:run" in decision.reason


def test_ig_leads_see_their_own_or_the_whole_partnership() -> None:
    audit_own = Resource(kind="audit", organisation="met-police")
    assert decide(subject("ig_lead", "met-police"), "audit.read", audit_own).allowed
    assert not decide(subject("ig_lead", "gstt"), "audit.read", audit_own).allowed
    assert decide(subject("ig_lead", "partnership"), "audit.read", Resource(kind="audit"))
    assert decide(subject("ig_lead", "partnership"), "agreement.read", query(LONDON))
    assert not decide(subject("ig_lead", "gstt"), "agreement.read", query(LONDON))


def test_every_action_names_known_roles_and_the_package_never_imports_hub() -> None:
    policy = load_policy()
    assert {"upload.create", "query.run", "audit.read", "client.create"} <= set(policy.actions)
    for path in Path("policies").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("hub"), path
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("hub") for a in node.names), path
