"""Column checks and row validation: what is rejected, what is kept with a warning, and that no
message ever repeats the offending value."""

from __future__ import annotations

import datetime as dt
import io

import polars as pl
import pytest

from adapters import get_adapter
from adapters.base import CanonicalBatch, RowIssue, column_label
from adapters.readers import open_table
from tests.adapters.adapter_extracts import extract_csv

POLICE = "police_violence_offences"


def run(dataset: str, *overrides: dict[str, str], drop: tuple[str, ...] = ()) -> CanonicalBatch:
    adapter = get_adapter(dataset)
    table = open_table(io.BytesIO(extract_csv(dataset, *overrides, drop=drop)), "extract.csv")
    batches = [adapter.map_batch(batch, first_row=2) for batch in table.batches]
    assert len(batches) == 1
    return batches[0]


def only(issues: list[RowIssue], **expected: object) -> RowIssue:
    assert len(issues) == 1, issues
    issue = issues[0]
    for key, value in expected.items():
        assert getattr(issue, key) == value, issue
    return issue


def assert_value_absent(value: str, result: CanonicalBatch) -> None:
    assert result.issues
    for issue in result.issues:
        assert value not in issue.message
        assert value.lower() not in issue.message.lower()


# --------------------------------------------------------------------------------- columns


def test_columns_unknown_not_permitted_and_missing() -> None:
    adapter = get_adapter(POLICE)
    layout = list(adapter.schema.names)
    permitted = [name for name in layout if name not in {"home_postcode", "easting"}]
    columns = [name for name in layout if name != "surname"] + ["shoe_size"]
    problems = adapter.check_columns(columns, permitted)
    found = {(problem.column, problem.code) for problem in problems}
    assert found == {
        (column_label(len(columns)), "unknown_column"),
        ("home_postcode", "not_permitted"),
        ("easting", "not_permitted"),
        ("surname", "missing_column"),
    }


@pytest.mark.parametrize(
    ("position", "label"),
    [(1, "column 1 (A)"), (26, "column 26 (Z)"), (27, "column 27 (AA)"), (703, "column 703 (AAA)")],
)
def test_column_labels_are_spreadsheet_letters(position: int, label: str) -> None:
    assert column_label(position) == label


def test_an_unknown_column_is_named_by_position_with_the_closest_layout_name() -> None:
    adapter = get_adapter(POLICE)
    columns = ["forname" if name == "forename" else name for name in adapter.schema.names]
    position = columns.index("forname") + 1
    problems = adapter.check_columns(columns, adapter.schema.names)
    unknown = [p for p in problems if p.code == "unknown_column"]
    assert [p.column for p in unknown] == [column_label(position)]
    assert "did you mean 'forename'?" in unknown[0].message
    assert "forname" not in unknown[0].message.replace("forename", "")


def test_a_first_row_of_data_is_refused_without_repeating_its_values() -> None:
    # a file exported without a header row: its first record is read as the header
    adapter = get_adapter(POLICE)
    first_record = ["1000555/25", "suspect", "mps744024649", "fraser", "novak", "2002-12-07"]
    problems = adapter.check_columns(first_record, adapter.schema.names)
    assert [p.code for p in problems] == ["header_not_recognised"]
    text = problems[0].column + problems[0].message
    assert "header row" in text
    for value in first_record:
        assert value not in text


def test_missing_required_column_not_in_agreement_is_not_reported() -> None:
    adapter = get_adapter(POLICE)
    permitted = [name for name in adapter.schema.names if name != "reported_date"]
    assert adapter.check_columns(permitted, permitted) == []


def test_missing_optional_columns_come_out_as_nulls() -> None:
    result = run(POLICE, drop=("outcome_date", "pnc_id", "home_postcode"))
    assert result.issues == []
    row = result.frame.row(0, named=True)
    assert row["outcome_date"] is None
    assert row["pnc_id"] is None
    assert row["postcode"] is None


# ------------------------------------------------------------------------------- row errors


def test_formula_in_any_cell_rejects_the_row() -> None:
    payload = '=HYPERLINK("http://x","y")'
    result = run(POLICE, {}, {"mps_major_text": payload}, {"forename": "@SUM(A1)"})
    assert result.frame.get_column("row").to_list() == [2]
    codes = {(issue.row, issue.field, issue.code) for issue in result.issues}
    assert (3, "mps_major_text", "formula") in codes
    assert (4, "forename", "formula") in codes
    assert_value_absent("HYPERLINK", result)
    assert_value_absent("SUM(A1)", result)


@pytest.mark.parametrize(
    ("field", "type_code"),
    [
        ("reported_date", "invalid_date"),
        ("offence_datetime_from", "invalid_datetime"),
        ("age_at_offence", "invalid_integer"),
        ("knife_injury_flag", "invalid_boolean"),
        ("weapon_type", "invalid_code"),
        ("sex", "invalid_code"),
        ("borough_gss_code", "invalid_code"),
    ],
)
def test_a_formula_in_a_typed_column_is_reported_as_a_formula(field: str, type_code: str) -> None:
    # typed columns look for formulas only where a value fails its type: same report as ever
    result = run(POLICE, {}, {field: '=HYPERLINK("http://evil.example","x")'}, {})
    reported = [(issue.row, issue.field, issue.code) for issue in result.issues]
    assert reported == [(3, field, "formula"), (3, field, type_code)]
    assert result.frame.get_column("row").to_list() == [2, 4]


def test_negative_numbers_are_not_formulas() -> None:
    result = run(POLICE, {"easting": "-12", "mps_minor_text": "- see note"})
    assert result.issues == []


def test_required_field_empty_is_an_error() -> None:
    result = run(POLICE, {"reported_date": ""})
    only(result.issues, row=2, field="reported_date", code="required", severity="error")
    assert result.frame.height == 0


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("reported_date", "31/02/2024", "invalid_date"),
        ("reported_date", "yesterday", "invalid_date"),
        ("offence_datetime_from", "10pm Tuesday", "invalid_datetime"),
        ("age_at_offence", "fifteen", "invalid_integer"),
        ("knife_sharp_instrument_flag", "perhaps", "invalid_boolean"),
        ("person_role", "bystander", "invalid_code"),
        ("ho_offence_code", "8Z", "invalid_code"),
        ("borough_gss_code", "E09000099", "invalid_code"),
        ("ward_code", "W05000001", "invalid_format"),
        ("sex", "Gorilla", "invalid_code"),
    ],
)
def test_invalid_ordinary_values_reject_the_row(field: str, value: str, code: str) -> None:
    result = run(POLICE, {}, {field: value})
    only(result.issues, row=3, field=field, code=code, severity="error")
    assert result.frame.get_column("row").to_list() == [2]
    assert_value_absent(value, result)


def test_case_insensitive_codes_map_to_canonical_spelling() -> None:
    result = run(
        POLICE,
        {"person_role": "VICTIM", "ho_offence_code": "8n", "sex": "F", "domestic_abuse_flag": "Y"},
    )
    assert result.issues == []
    row = result.frame.row(0, named=True)
    assert (row["person_role"], row["ho_offence_code"], row["sex"]) == ("victim", "8N", "female")
    assert row["domestic_abuse_flag"] is True


@pytest.mark.parametrize("other", ["", "false", "N", "TRUE", "maybe"])
def test_yes_no_columns_read_the_same_whether_or_not_the_batch_spells_them_canonically(
    other: str,
) -> None:
    # a batch of only true/false/empty takes a faster path than one with other spellings
    result = run(
        POLICE,
        {"lethal_barrelled_discharge_flag": "true", "gang_related_flag": "false"},
        {"lethal_barrelled_discharge_flag": other, "gang_related_flag": "true"},
    )
    flag = "lethal_barrelled_discharge_flag"
    flags = result.frame.select("row", flag, "gang_related_flag").rows()
    expected_other = {"": None, "false": False, "N": False, "TRUE": True}
    if other == "maybe":
        only(result.issues, row=3, field=flag, code="invalid_boolean")
        assert flags == [(2, True, False)]
    else:
        assert result.issues == []
        assert flags == [(2, True, False), (3, expected_other[other], True)]


def test_array_of_codes() -> None:
    good = run("probation", {"requirements": "unpaid_work; Curfew_Electronic_Monitoring|other"})
    assert good.issues == []
    assert good.frame.get_column("requirements").to_list() == [
        ["unpaid_work", "curfew_electronic_monitoring", "other"]
    ]
    bad = run("probation", {"requirements": "unpaid_work;tap_dancing"})
    only(bad.issues, field="requirements", code="invalid_code", severity="error")
    assert_value_absent("tap_dancing", bad)


# --------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    ("dataset", "field", "value", "code"),
    [
        ("ae_istv_assaults", "nhs_number", "9434765918", "invalid_identifier"),
        ("ae_istv_assaults", "postcode_of_usual_address", "NOT A PC", "invalid_identifier"),
        ("school_exclusions", "upn", "A202211001234", "invalid_identifier"),
        ("police_violence_offences", "pnc_id", "2019/1234567A", "invalid_identifier"),
        ("probation", "crn", "12345", "invalid_identifier"),
        ("police_violence_offences", "date_of_birth", "14th of March", "invalid_date"),
        ("police_violence_offences", "date_of_birth", "2099-01-01", "future_date"),
        ("police_violence_offences", "date_of_birth", "2024-03-02", "after_event"),
        ("youth_justice", "date_of_birth", "1890-01-01", "implausible_age"),
    ],
)
def test_invalid_identifiers_are_warnings_and_become_null(
    dataset: str, field: str, value: str, code: str
) -> None:
    overrides: dict[str, str] = {field: value}
    if dataset == POLICE and field == "date_of_birth":
        overrides["age_at_offence"] = "15"  # with no usable DOB the age is not cross-checked
    result = run(dataset, overrides)
    adapter = get_adapter(dataset)
    canonical = {v: k for k, v in adapter.identifier_sources.items()}[field]
    warnings = [issue for issue in result.issues if issue.severity == "warning"]
    only(warnings, row=2, field=field, code=code)
    assert "treated as missing" in warnings[0].message
    assert result.frame.height == 1
    assert result.frame.get_column(canonical).to_list() == [None]
    assert_value_absent(value, result)


def test_warning_message_for_unparseable_date_of_birth() -> None:
    result = run(POLICE, {"date_of_birth": "Jonathan"})
    issue = next(issue for issue in result.issues if issue.field == "date_of_birth")
    assert issue.message == (
        "date_of_birth: not a date in a recognised format (use YYYY-MM-DD or DD/MM/YYYY); "
        "treated as missing"
    )


def test_required_identifier_missing_is_an_error() -> None:
    result = run(POLICE, {"surname": ""})
    only(result.issues, field="surname", code="required", severity="error")
    assert result.frame.height == 0


def test_name_in_the_wrong_column_never_reaches_a_message() -> None:
    name = "Bartholomew Quince-Smythe"
    fields = [
        "date_of_birth",
        "home_postcode",
        "pnc_id",
        "age_at_offence",
        "reported_date",
        "sex",
        "borough_gss_code",
        "knife_injury_flag",
        "ho_offence_group",
    ]
    rows = [{field: name} for field in fields]
    result = run(POLICE, *rows)
    assert len({issue.field for issue in result.issues}) == len(fields)
    assert_value_absent(name, result)
    assert_value_absent("Quince", result)


# ------------------------------------------------------------------------------------ ages


@pytest.mark.parametrize("age", ["-1", "121", "500"])
def test_impossible_ages_are_errors(age: str) -> None:
    result = run(POLICE, {"age_at_offence": age})
    codes = {issue.code for issue in result.issues if issue.severity == "error"}
    assert codes == {"impossible_age"}
    assert result.frame.height == 0
    assert_value_absent(age, result)


def test_age_inconsistent_with_date_of_birth_is_an_error() -> None:
    # born 2008-03-14, offence 2024-03-01: aged 15
    ok = run(POLICE, {"age_at_offence": "15"}, {"age_at_offence": "16"}, {"age_at_offence": "14"})
    assert ok.issues == []
    bad = run(POLICE, {"age_at_offence": "18"})
    only(bad.issues, field="age_at_offence", code="age_mismatch", severity="error")
    ae = run("ae_istv_assaults", {"age_at_attendance": "40"})
    only(ae.issues, field="age_at_attendance", code="age_mismatch")


def test_row_numbers_follow_first_row() -> None:
    adapter = get_adapter(POLICE)
    table = open_table(io.BytesIO(extract_csv(POLICE, {}, {"reported_date": "x"})), "e.csv")
    batch = next(table.batches)
    result = adapter.map_batch(batch, first_row=65_538)
    assert result.frame.get_column("row").to_list() == [65_538]
    only(result.issues, row=65_539)


def test_a_batch_is_judged_on_its_own_columns_whatever_came_before() -> None:
    # map_batch reuses its expressions between batches with the same empty and already-canonical
    # columns; a batch must still be validated on what it holds, not on an earlier batch's shape.
    adapter = get_adapter(POLICE)

    def batch(**values: str) -> pl.DataFrame:
        data = extract_csv(POLICE, values)
        return next(open_table(io.BytesIO(data), "e.csv").batches)

    empty_flag = adapter.map_batch(batch(gang_related_flag="", weapon_type="bite"), 2)
    bad_flag = adapter.map_batch(batch(gang_related_flag="perhaps", weapon_type="bite"), 2)
    upper_code = adapter.map_batch(batch(gang_related_flag="", weapon_type="BITE"), 2)
    again = adapter.map_batch(batch(gang_related_flag="", weapon_type="bite"), 2)
    assert empty_flag.issues == [] and empty_flag.frame.height == 1
    only(bad_flag.issues, row=2, field="gang_related_flag", code="invalid_boolean")
    assert bad_flag.frame.height == 0
    assert upper_code.issues == [] and upper_code.frame.get_column("weapon_type")[0] == "bite"
    assert again.issues == [] and again.frame.equals(empty_flag.frame)


def test_event_date_and_typed_columns() -> None:
    result = run(POLICE, {"offence_datetime_from": "10/02/2024 21:15", "easting": "531000"})
    row = result.frame.row(0, named=True)
    assert row["event_date"] == dt.date(2024, 2, 10)
    assert row["offence_datetime_from"] == dt.datetime(2024, 2, 10, 21, 15)
    assert row["easting"] == 531_000
    assert result.frame.schema["row"] == pl.Int64


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("offence_datetime_from", "0000-06-01T10:00:00"),  # polars reads year 0
        ("offence_datetime_from", "1850-06-01T10:00:00"),
        ("reported_date", "9999-12-31"),
        ("reported_date", "01/01/0001"),
    ],
)
def test_a_date_in_an_impossible_year_is_refused_like_any_impossible_date(
    field: str, value: str
) -> None:
    # Year 0 reached the store once and stopped linkage for every agency (Python dates
    # cannot hold it): a row with such a date must be refused before it is stored.
    result = run(POLICE, {field: value}, {})
    issue = next(i for i in result.issues if i.row == 2 and i.field == field)
    assert issue.severity == "error" and value not in issue.message
    assert result.frame.get_column("row").to_list() == [3]
    assert all(d.year >= 1900 for d in result.frame.get_column("event_date").to_list())


@pytest.mark.parametrize(
    ("dataset", "field", "text"),
    [
        (POLICE, "mps_minor_text", "Qwertzleak Plughleak 1987-11-23 N1 9GU"),
        ("probation", "termination_reason", "died, NHS 943 476 5919"),
        ("ae_istv_assaults", "assault_location_description", "outside 12 Hill St, SE15 4QF"),
    ],
)
def test_free_text_holding_an_identifier_is_not_kept_and_the_row_is(
    dataset: str, field: str, text: str
) -> None:
    result = run(dataset, {field: text}, {field: "Violence without Injury"})
    issue = only(
        [i for i in result.issues if i.field == field],
        row=2,
        code="identifier_in_text",
        severity="warning",
    )
    assert text not in issue.message
    kept = result.frame.get_column(field).to_list()
    assert kept == [None, "Violence without Injury"]  # both rows kept; the first cell dropped
    assert_value_absent(text, result)


def test_formula_in_a_workbook_cell_is_rejected_end_to_end() -> None:
    import openpyxl

    from tests.adapters.adapter_extracts import extract_rows

    rows = extract_rows(POLICE, {}, {"mps_major_text": '=HYPERLINK("http://x","y")'})
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(rows[0]))
    for row in rows:
        sheet.append(list(row.values()))
    buffer = io.BytesIO()
    workbook.save(buffer)
    buffer.seek(0)
    adapter = get_adapter(POLICE)
    table = open_table(buffer, "police.xlsx")
    assert adapter.check_columns(table.columns, table.columns) == []
    result = adapter.map_batch(next(table.batches), first_row=2)
    only(result.issues, row=3, field="mps_major_text", code="formula", severity="error")
    assert result.frame.get_column("row").to_list() == [2]
    assert_value_absent("HYPERLINK", result)
