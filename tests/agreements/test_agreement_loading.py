"""Bad agreement files get one clear error naming the file, the field and the reason."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agreements import (
    MAX_AGREEMENT_BYTES,
    Agreement,
    AgreementError,
    load_agreement,
    parse_agreement,
)

SOURCE = "police-ae.yaml"


@pytest.fixture(scope="module")
def base(main_text: str) -> dict[str, Any]:
    document = yaml.safe_load(main_text)
    assert isinstance(document, dict)
    return document


def error_for(document: dict[str, Any]) -> AgreementError:
    with pytest.raises(AgreementError) as info:
        parse_agreement(yaml.safe_dump(document, sort_keys=False), SOURCE, "yaml")
    return info.value


def mutated(base: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = copy.deepcopy(base)
    change(document)
    return document


def field_index(document: dict[str, Any], dataset: int, name: str) -> int:
    names = [f["name"] for f in document["datasets"][dataset]["fields"]]
    return names.index(name)


def test_yaml_and_json_copies_give_the_same_agreement(
    base: dict[str, Any], main_agreement: Agreement, tmp_path: Path
) -> None:
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(base, default=str), encoding="utf-8")
    assert load_agreement(path) == main_agreement


def test_quasi_identifier_without_generalise_names_the_field(base: dict[str, Any]) -> None:
    def change(d: dict[str, Any]) -> None:
        del d["datasets"][0]["fields"][6]["generalise"]

    error = error_for(mutated(base, change))
    assert error.field == "datasets[0].fields[6].generalise"
    assert str(error).startswith(
        "police-ae.yaml: datasets[0].fields[6].generalise: required for a quasi-identifier; "
        "choose one of keep, age_band_at_event, postcode_district"
    )


def test_generalise_on_a_direct_identifier_is_refused(base: dict[str, Any]) -> None:
    error = error_for(
        mutated(base, lambda d: d["datasets"][0]["fields"][0].update(generalise="keep"))
    )
    assert error.field == "datasets[0].fields[0].generalise"
    assert "direct identifier is always dropped" in error.reason


def test_missing_top_level_field(base: dict[str, Any]) -> None:
    error = error_for(mutated(base, lambda d: d.pop("lawful_basis")))
    assert str(error) == "police-ae.yaml: lawful_basis: required but missing"


def test_wrong_type_is_not_coerced(base: dict[str, Any]) -> None:
    error = error_for(mutated(base, lambda d: d.update(version="1")))
    assert error.field == "version"
    assert "integer" in error.reason


def test_misspelt_key_is_an_error(base: dict[str, Any]) -> None:
    def change(d: dict[str, Any]) -> None:
        d["datasets"][1]["fields"][2]["clasification"] = "attribute"

    error = error_for(mutated(base, change))
    assert error.field == "datasets[1].fields[2].clasification"
    assert "unknown key" in error.reason


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"valid_until": "2025-06-30"}, "valid_until", "must be after valid_from"),
        ({"review_date": "2028-06-30"}, "review_date", "between valid_from and valid_until"),
        ({"valid_from": "2026-02-30"}, "valid_from", "date"),
    ],
)
def test_bad_dates(base: dict[str, Any], changes: dict[str, str], field: str, reason: str) -> None:
    error = error_for(mutated(base, lambda d: d.update(changes)))
    assert error.field == field
    assert reason in error.reason


def test_unknown_party_as_provider(base: dict[str, Any]) -> None:
    error = error_for(mutated(base, lambda d: d["datasets"][2].update(provider="lb-hackney")))
    assert error.field == "datasets[2].provider"
    assert "'lb-hackney' is not a party" in error.reason


def test_provider_without_the_provider_role(base: dict[str, Any]) -> None:
    error = error_for(mutated(base, lambda d: d["datasets"][2].update(provider="mopac-vru")))
    assert str(error) == (
        "police-ae.yaml: datasets[2].provider: party 'mopac-vru' does not have the provider "
        "role; add 'provider' to its roles or name another party"
    )


def test_duplicate_field_in_a_dataset(base: dict[str, Any]) -> None:
    def change(d: dict[str, Any]) -> None:
        fields = d["datasets"][0]["fields"]
        fields.append(dict(fields[1]))

    error = error_for(mutated(base, change))
    assert error.field == f"datasets[0].fields[{len(base['datasets'][0]['fields'])}].name"
    assert "'person_role' is listed twice" in error.reason


def test_duplicate_dataset_and_party(base: dict[str, Any]) -> None:
    def add_dataset(d: dict[str, Any]) -> None:
        d["datasets"].append(copy.deepcopy(d["datasets"][0]))

    def add_party(d: dict[str, Any]) -> None:
        d["parties"].append(copy.deepcopy(d["parties"][1]))

    error = error_for(mutated(base, add_dataset))
    assert error.field == "datasets[6].name"
    error = error_for(mutated(base, add_party))
    assert error.field == "parties[6].id"


def test_no_controller(base: dict[str, Any]) -> None:
    error = error_for(mutated(base, lambda d: d["parties"][0].update(roles=["recipient"])))
    assert error.field == "parties"
    assert "controller" in error.reason


def test_bad_ico_registration(base: dict[str, Any]) -> None:
    error = error_for(mutated(base, lambda d: d["parties"][1].update(ico_registration="12345")))
    assert error.field == "parties[1].ico_registration"
    assert "Z1234567" in error.reason


def test_special_category_needs_article_9(base: dict[str, Any]) -> None:
    error = error_for(mutated(base, lambda d: d["lawful_basis"].pop("article_9")))
    assert error.field.startswith("datasets[0].fields[")
    assert error.field.endswith("].special_category")
    assert "Art 9 condition" in error.reason


def test_criminal_offence_data_needs_article_10(base: dict[str, Any]) -> None:
    error = error_for(mutated(base, lambda d: d["lawful_basis"].pop("article_10")))
    assert error.field == "datasets[0].criminal_offence_data"
    assert "Art 10 condition" in error.reason


def test_article_9_g_needs_a_schedule_1_condition(base: dict[str, Any]) -> None:
    error = error_for(mutated(base, lambda d: d["lawful_basis"].update(dpa2018_schedule_1=[])))
    assert error.field == "lawful_basis.dpa2018_schedule_1"


def test_retention_must_be_an_iso_duration(base: dict[str, Any]) -> None:
    error = error_for(mutated(base, lambda d: d.update(retention="7 years")))
    assert error.field == "retention"
    assert "ISO 8601 duration" in error.reason


def test_retention_in_days_is_accepted(base: dict[str, Any]) -> None:
    document = mutated(base, lambda d: d.update(retention=730))
    agreement = parse_agreement(yaml.safe_dump(document), SOURCE)
    assert agreement.retention == "P730D"


def test_budget_and_dimensions(base: dict[str, Any]) -> None:
    error = error_for(
        mutated(base, lambda d: d["outputs"]["budget"].update(epsilon_per_period=0.1))
    )
    assert error.field == "outputs.budget.epsilon_per_period"
    error = error_for(
        mutated(base, lambda d: d["outputs"]["dimensions"][1]["values"].append("2028-01"))
    )
    assert error.field == "outputs.dimensions[1].values[24]"
    assert "outside the agreement's validity window" in error.reason
    error = error_for(
        mutated(base, lambda d: d["outputs"]["dimensions"][0]["values"].__setitem__(0, "E09000034"))
    )
    assert error.field == "outputs.dimensions[0].values[0]"


def test_numeric_attribute_must_be_a_stored_field(base: dict[str, Any]) -> None:
    def change(d: dict[str, Any]) -> None:
        d["outputs"]["numeric_attributes"][0]["field"] = "easting"

    error = error_for(mutated(base, change))
    assert error.field == "outputs.numeric_attributes[0].field"
    assert "not stored" in error.reason


def test_python_object_tags_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("id: !!python/object/apply:os.system ['echo pwned']\n", encoding="utf-8")
    with pytest.raises(AgreementError) as info:
        load_agreement(path)
    assert str(info.value).startswith("evil.yaml: not valid YAML at line 1")
    assert "!!python/object" in str(info.value)


def test_duplicate_yaml_keys_are_refused(main_text: str) -> None:
    with pytest.raises(AgreementError, match=r"line 2.*duplicate key 'id'"):
        parse_agreement("id: one\nid: two\n", SOURCE)
    with pytest.raises(AgreementError, match="duplicate key 'version'"):
        parse_agreement(main_text.replace("version: 1\n", "version: 1\nversion: 2\n"), SOURCE)


def test_duplicate_json_keys_are_refused() -> None:
    with pytest.raises(AgreementError, match="duplicate key 'id'"):
        parse_agreement('{"id": "a", "id": "b"}', "x.json", "json")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "", "42\n"])
def test_non_mapping_top_level(text: str) -> None:
    with pytest.raises(AgreementError, match="the top level must be a mapping"):
        parse_agreement(text, SOURCE)


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"#" * (MAX_AGREEMENT_BYTES + 1))
    with pytest.raises(AgreementError, match=r"^huge.yaml: larger than 1,000,000 bytes"):
        load_agreement(path)
    with pytest.raises(AgreementError, match="larger than"):
        parse_agreement(b"a" * (MAX_AGREEMENT_BYTES + 1), SOURCE)


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AgreementError, match="unknown file type"):
        load_agreement(tmp_path / "agreement.txt")
    with pytest.raises(AgreementError, match=r"^absent\.yaml: cannot read the file"):
        load_agreement(tmp_path / "absent.yaml")


def test_invalid_json_and_utf8() -> None:
    with pytest.raises(AgreementError, match=r"^x.json: not valid JSON at line 1"):
        parse_agreement("{", "x.json", "json")
    with pytest.raises(AgreementError, match="not UTF-8"):
        parse_agreement(b"id: \xff\n", SOURCE)


def test_yaml_aliases_are_refused() -> None:
    bomb = 'a: &a ["x", "x"]\nb: &b [*a, *a]\nc: [*b, *b]\n'
    with pytest.raises(AgreementError, match="aliases"):
        parse_agreement(bomb, SOURCE)


def test_infinite_bounds_are_refused(base: dict[str, Any]) -> None:
    def change(d: dict[str, Any]) -> None:
        d["outputs"]["numeric_attributes"][0]["upper"] = float("inf")

    error = error_for(mutated(base, change))
    assert error.field == "outputs.numeric_attributes[0].upper"


def test_non_string_keys_give_an_agreement_error(main_text: str) -> None:
    with pytest.raises(AgreementError) as info:
        parse_agreement(main_text + "1: one\n", SOURCE)
    assert info.value.source == SOURCE


@pytest.mark.parametrize(
    ("text", "format"),
    [
        ("[" * 100_000 + "]" * 100_000, "json"),
        ('{"a": ' * 50_000 + "1" + "}" * 50_000, "json"),
        ("[" * 100_000 + "]" * 100_000, "yaml"),
    ],
)
def test_a_document_nested_absurdly_deep_is_refused_with_a_reason(text: str, format: str) -> None:
    with pytest.raises(AgreementError) as raised:
        parse_agreement(text.encode(), SOURCE, format)  # type: ignore[arg-type]
    assert "nested" in str(raised.value)
