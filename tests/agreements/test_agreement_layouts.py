"""An agreement must match the adapters' extract layouts and never weaken a classification."""

from __future__ import annotations

import pytest

from agreements import (
    Agreement,
    AgreementError,
    FieldTerms,
    LayoutField,
    check_against_layouts,
    layout_problems,
)

Layouts = dict[str, dict[str, LayoutField]]


def with_fields(agreement: Agreement, dataset: int, fields: list[FieldTerms]) -> Agreement:
    datasets = list(agreement.datasets)
    datasets[dataset] = datasets[dataset].model_copy(update={"fields": fields})
    return agreement.model_copy(update={"datasets": datasets})


def test_unknown_dataset(main_agreement: Agreement, layouts: Layouts) -> None:
    partial = {k: v for k, v in layouts.items() if k != "probation"}
    with pytest.raises(AgreementError) as info:
        check_against_layouts(main_agreement, partial, source="london.yaml")
    assert info.value.field == "datasets[5].name"
    assert str(info.value).startswith("london.yaml: datasets[5].name: no extract layout")


def test_unknown_field(main_agreement: Agreement, layouts: Layouts) -> None:
    extra = FieldTerms(name="shoe_size", classification="attribute")
    fields = [*main_agreement.datasets[0].fields, extra]
    with pytest.raises(AgreementError) as info:
        check_against_layouts(with_fields(main_agreement, 0, fields), layouts)
    assert info.value.field == f"datasets[0].fields[{len(fields) - 1}].name"
    assert "police_violence_offences layout has no field 'shoe_size'" in info.value.reason


def test_required_field_not_listed(main_agreement: Agreement, layouts: Layouts) -> None:
    fields = [f for f in main_agreement.datasets[5].fields if f.name not in ("crn", "sex")]
    with pytest.raises(AgreementError) as info:
        check_against_layouts(with_fields(main_agreement, 5, fields), layouts)
    assert info.value.field == "datasets[5].fields"
    assert info.value.reason == "required probation fields not listed: crn, sex"


def test_optional_field_may_be_left_out(main_agreement: Agreement, layouts: Layouts) -> None:
    fields = [f for f in main_agreement.datasets[5].fields if f.name != "noms_number"]
    check_against_layouts(with_fields(main_agreement, 5, fields), layouts)


def test_downgrade_is_refused(main_agreement: Agreement, layouts: Layouts) -> None:
    fields = list(main_agreement.datasets[0].fields)
    fields[0] = FieldTerms(name="crime_reference", classification="attribute")
    with pytest.raises(AgreementError) as info:
        check_against_layouts(with_fields(main_agreement, 0, fields), layouts)
    assert info.value.field == "datasets[0].fields[0].classification"
    assert "crime_reference is a direct_identifier" in info.value.reason
    assert "cannot downgrade it to attribute" in info.value.reason


def test_upgrade_is_allowed(main_agreement: Agreement, layouts: Layouts) -> None:
    fields = list(main_agreement.datasets[0].fields)
    fields[1] = FieldTerms(name="person_role", classification="direct_identifier")
    check_against_layouts(with_fields(main_agreement, 0, fields), layouts)


def test_special_category_flag_cannot_be_dropped(
    main_agreement: Agreement, layouts: Layouts
) -> None:
    fields = [
        f.model_copy(update={"special_category": False}) if f.name == "domestic_abuse_flag" else f
        for f in main_agreement.datasets[0].fields
    ]
    problems = layout_problems(with_fields(main_agreement, 0, fields), layouts)
    assert [p.field.rsplit(".", 1)[1] for p in problems] == ["special_category"]


def test_all_problems_are_reported(main_agreement: Agreement, layouts: Layouts) -> None:
    fields = [FieldTerms(name="crn", classification="attribute")]
    problems = layout_problems(with_fields(main_agreement, 5, fields), layouts)
    assert len(problems) == 2
    with pytest.raises(AgreementError, match=r"\(and 1 more problem\)"):
        check_against_layouts(with_fields(main_agreement, 5, fields), layouts)
