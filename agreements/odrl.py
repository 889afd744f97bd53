"""Export an agreement as a W3C ODRL 2.2 policy (JSON-LD) annotated with DPV terms.

The export is for publication and for other policy tools; the hub enforces the agreement model
itself. Every term is either an ODRL term from the ODRL context or a prefixed name (``dpv:``,
``eu-gdpr:``, ``vru:``) declared in the inline context, so the document expands cleanly.
"""

from __future__ import annotations

from typing import Any

from agreements.model import Agreement, DatasetTerms

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
NAMESPACES: dict[str, str] = {
    "dpv": "https://w3id.org/dpv#",
    "eu-gdpr": "https://w3id.org/dpv/legal/eu/gdpr#",
    "dct": "http://purl.org/dc/terms/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "vru": "https://w3id.org/vru-hub/terms#",
}
BASE_IRI = "https://w3id.org/vru-hub/agreements/"


def _gdpr_term(code: str) -> str:
    """``6(1)(e)`` → ``eu-gdpr:A6-1-e``; ``9(2)(g)`` → ``eu-gdpr:A9-2-g``."""
    article, paragraph, point = code.replace(")", "").split("(")
    return f"eu-gdpr:A{article}-{paragraph}-{point}"


def _party_iri(agreement: Agreement, party_id: str) -> str:
    return f"{BASE_IRI}{agreement.id}/parties/{party_id}"


def _asset_iri(agreement: Agreement, dataset: str) -> str:
    return f"{BASE_IRI}{agreement.id}/v{agreement.version}/datasets/{dataset}"


def _party(agreement: Agreement, party_id: str) -> dict[str, Any]:
    party = agreement.party(party_id)
    return {
        "@type": "Party",
        "uid": _party_iri(agreement, party.id),
        "vru:name": party.name,
        "vru:icoRegistration": party.ico_registration,
        "vru:roles": list(party.roles),
    }


def _window_and_purpose(agreement: Agreement) -> list[dict[str, Any]]:
    purposes = [p.dpv for p in agreement.purposes]
    return [
        {
            "leftOperand": "purpose",
            "operator": "isAnyOf",
            "rightOperand": [{"@id": term} for term in purposes],
        },
        {
            "leftOperand": "dateTime",
            "operator": "gteq",
            "rightOperand": {"@value": agreement.valid_from.isoformat(), "@type": "xsd:date"},
        },
        {
            "leftOperand": "dateTime",
            "operator": "lteq",
            "rightOperand": {"@value": agreement.valid_until.isoformat(), "@type": "xsd:date"},
        },
    ]


def _duties(agreement: Agreement, dataset: DatasetTerms) -> list[dict[str, Any]]:
    duties: list[dict[str, Any]] = []
    direct = [f.name for f in dataset.fields if f.classification == "direct_identifier"]
    if direct:
        duties.append(
            {
                "action": "dpv:Pseudonymise",
                "vru:fields": direct,
                "vru:note": "keyed-hash for linkage at ingest, then drop; never stored",
            }
        )
    quasi = {
        f.name: f.generalise for f in dataset.fields if f.classification == "quasi_identifier"
    }
    if quasi:
        duties.append({"action": "anonymize", "vru:generalise": quasi})
    duties.append(
        {
            "action": "delete",
            "constraint": [
                {
                    "leftOperand": "elapsedTime",
                    "operator": "lteq",
                    "rightOperand": {"@value": agreement.retention, "@type": "xsd:duration"},
                }
            ],
        }
    )
    return duties


def _permissions(agreement: Agreement) -> list[dict[str, Any]]:
    permissions: list[dict[str, Any]] = []
    for dataset in agreement.datasets:
        permissions.append(
            {
                "target": _asset_iri(agreement, dataset.name),
                "assigner": _party_iri(agreement, dataset.provider),
                "action": "use",
                "constraint": _window_and_purpose(agreement),
                "duty": _duties(agreement, dataset),
            }
        )
    outputs = agreement.outputs
    for recipient in agreement.recipients():
        permissions.append(
            {
                "target": [_asset_iri(agreement, d.name) for d in agreement.datasets],
                "assignee": _party_iri(agreement, recipient.id),
                "action": "aggregate",
                "constraint": _window_and_purpose(agreement),
                "duty": [
                    {
                        "action": "anonymize",
                        "vru:method": "differential privacy",
                        "vru:measures": list(outputs.measures),
                        "vru:dimensions": [d.name for d in outputs.dimensions],
                        "vru:epsilonPerQuery": outputs.budget.epsilon_per_query,
                        "vru:epsilonPerPeriod": outputs.budget.epsilon_per_period,
                        "vru:budgetPeriod": outputs.budget.period,
                        "vru:delta": outputs.budget.delta,
                        "vru:roundingBase": outputs.rounding_base,
                        "vru:suppressionThreshold": outputs.suppression_threshold,
                    }
                ],
            }
        )
    return permissions


def _prohibitions(agreement: Agreement) -> list[dict[str, Any]]:
    targets = [_asset_iri(agreement, d.name) for d in agreement.datasets]
    prohibitions: list[dict[str, Any]] = []
    for recipient in agreement.recipients():
        assignee = _party_iri(agreement, recipient.id)
        for action in ("read", "distribute"):
            prohibitions.append(
                {
                    "target": targets,
                    "assignee": assignee,
                    "action": action,
                    "vru:note": "record-level data never leaves the hub",
                }
            )
        prohibitions.append({"target": targets, "assignee": assignee, "action": "vru:identify"})
    return prohibitions


def to_odrl(agreement: Agreement) -> dict[str, Any]:
    """The agreement as an ODRL 2.2 ``Agreement`` policy in compact JSON-LD."""
    basis = agreement.lawful_basis
    legal_bases = [_gdpr_term(basis.article_6)]
    if basis.article_9 is not None:
        legal_bases.append(_gdpr_term(basis.article_9))
    if basis.article_10 is not None:
        legal_bases.append("eu-gdpr:A10")
    assigners = sorted(
        {p.id for p in agreement.controllers()} | {d.provider for d in agreement.datasets},
        key=[p.id for p in agreement.parties].index,
    )
    policy: dict[str, Any] = {
        "@context": [ODRL_CONTEXT, dict(NAMESPACES)],
        "@type": "Agreement",
        "uid": f"{BASE_IRI}{agreement.id}/v{agreement.version}",
        "profile": "https://w3id.org/vru-hub/odrl-profile",
        "dct:title": agreement.title,
        "dct:identifier": agreement.id,
        "vru:version": agreement.version,
        "vru:status": agreement.status,
        "vru:linkageDomain": agreement.linkage_domain,
        "vru:reviewDate": {"@value": agreement.review_date.isoformat(), "@type": "xsd:date"},
        "dpv:hasLegalBasis": [{"@id": term} for term in legal_bases],
        "vru:dpa2018Schedule1": list(basis.dpa2018_schedule_1),
        "vru:statutoryGateways": list(basis.statutory_gateways),
        "dpv:hasPurpose": [
            {"@id": p.dpv, "dct:identifier": p.id, "dct:description": p.description}
            for p in agreement.purposes
        ],
        "assigner": [_party(agreement, party_id) for party_id in assigners],
        "assignee": [_party(agreement, p.id) for p in agreement.recipients()],
        "permission": _permissions(agreement),
        "prohibition": _prohibitions(agreement),
    }
    if agreement.description is not None:
        policy["dct:description"] = agreement.description
    return policy
