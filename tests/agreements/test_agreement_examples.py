"""The shipped example agreements load, fit the extract layouts and behave as documented."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from agreements import (
    Agreement,
    LayoutField,
    check_against_layouts,
    example_paths,
    load_agreement,
)

TODAY = date(2026, 11, 25)


def test_three_examples_ship_with_the_package() -> None:
    ids = {load_agreement(p).id for p in example_paths()}
    assert ids == {"london-vru-partnership", "cardiff-model-ae-police", "southwark-yjs-exclusions"}


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.name)
def test_example_loads_fits_layouts_and_is_named_after_its_id(
    path: Path, layouts: dict[str, dict[str, LayoutField]]
) -> None:
    agreement = load_agreement(path)
    check_against_layouts(agreement, layouts, source=path.name)
    assert path.name == f"{agreement.id}.yaml"
    assert agreement.signatures == []  # stored unsigned


def test_main_agreement_covers_every_field_of_all_six_layouts(
    main_agreement: Agreement, layouts: dict[str, dict[str, LayoutField]]
) -> None:
    assert {d.name for d in main_agreement.datasets} == set(layouts)
    for dataset in main_agreement.datasets:
        assert dataset.field_names == list(layouts[dataset.name])
    assert main_agreement.linkage_domain == "london-vru"


def test_free_text_fields_are_never_stored(main_agreement: Agreement) -> None:
    ae = main_agreement.dataset("ae_istv_assaults")
    for name in ("assault_location_description", "assault_method_other_description"):
        assert not ae.field(name).stored


def test_direct_identifiers_are_never_stored(main_agreement: Agreement) -> None:
    for dataset in main_agreement.datasets:
        for field in dataset.fields:
            if field.classification == "direct_identifier":
                assert not field.stored


def test_status_on_the_reference_day() -> None:
    by_id = {a.id: a for a in map(load_agreement, example_paths())}
    assert by_id["london-vru-partnership"].is_active(TODAY)
    assert by_id["cardiff-model-ae-police"].is_active(TODAY)
    assert by_id["southwark-yjs-exclusions"].effective_status(TODAY) == "draft"
    assert not by_id["southwark-yjs-exclusions"].is_active(TODAY)


def test_effective_status_expires_after_valid_until(main_agreement: Agreement) -> None:
    assert main_agreement.effective_status(date(2027, 12, 31)) == "active"
    assert main_agreement.effective_status(date(2028, 1, 1)) == "expired"
    assert main_agreement.effective_status(date(2025, 12, 31)) == "pending"
    suspended = main_agreement.model_copy(update={"status": "suspended"})
    assert suspended.effective_status(TODAY) == "suspended"
    assert not suspended.is_active(TODAY)


def test_helpers(main_agreement: Agreement) -> None:
    assert [p.id for p in main_agreement.providers_of("probation")] == ["hmpps-probation-london"]
    assert main_agreement.providers_of("no_such_dataset") == []
    assert [p.id for p in main_agreement.recipients()] == ["mopac-vru"]
    assert main_agreement.party("met-police").name == "Metropolitan Police Service"
    with pytest.raises(KeyError, match="no party 'nobody'"):
        main_agreement.party("nobody")
    with pytest.raises(KeyError, match="does not cover dataset"):
        main_agreement.dataset("nope")
    assert main_agreement.retention_period.years == 3
    assert main_agreement.retention_period.end_after(date(2026, 2, 28)) == date(2029, 2, 28)


def test_json_form_validates_back_to_the_same_agreement(main_agreement: Agreement) -> None:
    # The hub stores model_dump(mode="json") and validates it again when reading.
    assert Agreement.model_validate(main_agreement.model_dump(mode="json")) == main_agreement
