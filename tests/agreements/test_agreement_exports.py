"""ODRL export and the committed JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agreements import Agreement, agreement_json_schema, example_paths, load_agreement, to_odrl
from agreements.schema_export import schema_text

ROOT = Path(__file__).resolve().parents[2]


def test_odrl_structure(main_agreement: Agreement) -> None:
    policy = to_odrl(main_agreement)
    json.loads(json.dumps(policy))  # plain JSON all the way down
    context = policy["@context"]
    assert context[0] == "http://www.w3.org/ns/odrl.jsonld"
    assert context[1]["dpv"] == "https://w3id.org/dpv#"
    assert policy["@type"] == "Agreement"
    assert policy["uid"].endswith("/london-vru-partnership/v1")
    assert [p["vru:name"] for p in policy["assignee"]] == [
        "Mayor's Office for Policing and Crime (London Violence Reduction Unit)"
    ]
    assert {p["uid"].rsplit("/", 1)[1] for p in policy["assigner"]} == {
        "mopac-vru", "met-police", "nhs-england-london", "lb-lambeth", "lambeth-yjs",
        "hmpps-probation-london",
    }
    assert [b["@id"] for b in policy["dpv:hasLegalBasis"]] == [
        "eu-gdpr:A6-1-e", "eu-gdpr:A9-2-g", "eu-gdpr:A10",
    ]
    uses = [p for p in policy["permission"] if p["action"] == "use"]
    assert len(uses) == 6
    police = uses[0]
    assert police["target"].endswith("/datasets/police_violence_offences")
    operators = {(c["leftOperand"], c["operator"]) for c in police["constraint"]}
    assert operators == {("purpose", "isAnyOf"), ("dateTime", "gteq"), ("dateTime", "lteq")}
    purposes = next(c for c in police["constraint"] if c["leftOperand"] == "purpose")
    assert {"@id": "dpv:PublicBenefit"} in purposes["rightOperand"]
    duties = {d["action"]: d for d in police["duty"]}
    assert "forename" in duties["dpv:Pseudonymise"]["vru:fields"]
    assert duties["anonymize"]["vru:generalise"]["date_of_birth"] == "age_band_at_event"
    assert duties["delete"]["constraint"][0]["rightOperand"]["@value"] == "P3Y"
    aggregate = next(p for p in policy["permission"] if p["action"] == "aggregate")
    assert aggregate["duty"][0]["vru:epsilonPerQuery"] == 0.5
    prohibited = {p["action"] for p in policy["prohibition"]}
    assert prohibited == {"read", "distribute", "vru:identify"}


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.name)
def test_every_prefixed_term_is_declared(path: Path) -> None:
    policy = to_odrl(load_agreement(path))
    prefixes = set(policy["@context"][1])

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if ":" in key and not key.startswith("@"):
                    assert key.split(":", 1)[0] in prefixes, key
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str) and ":" in node and " " not in node and "://" not in node:
            assert node.split(":", 1)[0] in prefixes, node

    walk(policy)


def test_committed_json_schema_is_current() -> None:
    committed = (ROOT / "docs" / "agreement.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(), (
        "docs/agreement.schema.json is stale; run "
        "python -m agreements.schema_export docs/agreement.schema.json"
    )


def test_json_schema_forbids_unknown_keys() -> None:
    schema = agreement_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["FieldTerms"]["additionalProperties"] is False
    assert "datasets" in schema["required"]
