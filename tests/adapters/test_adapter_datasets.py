"""Each dataset's adapter maps a small valid extract to the canonical frame; layouts load."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import polars as pl
import pytest

from adapters import ADAPTERS, UnknownDataset, get_adapter
from adapters.base import CANONICAL_COLUMNS, IDENTIFIER_COLUMNS, SEX_VALUES, CanonicalBatch
from adapters.readers import open_table
from adapters.schema import dfe_la_codes, load_schemas, london_boroughs
from tests.adapters.adapter_extracts import NHS, PNC, UPN, extract_csv

SHARED = Path("/work/shared/reference")
PACKAGE = Path(__file__).resolve().parents[2] / "adapters" / "reference"


def run(dataset: str, *overrides: dict[str, str]) -> CanonicalBatch:
    adapter = get_adapter(dataset)
    table = open_table(io.BytesIO(extract_csv(dataset, *overrides)), "extract.csv")
    assert adapter.check_columns(table.columns, table.columns) == []
    (batch,) = list(table.batches)
    return adapter.map_batch(batch, first_row=2)


# ---------------------------------------------------------------------------------- schema


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared reference folder not present")
@pytest.mark.parametrize("name", ["schemas.json", "boroughs.csv"])
def test_package_reference_copies_match_shared(name: str) -> None:
    assert (PACKAGE / name).read_bytes() == (SHARED / name).read_bytes()


def test_layouts_resolve_codes() -> None:
    schemas = load_schemas()
    assert set(schemas) == set(ADAPTERS)
    police = schemas["police_violence_offences"]
    assert police.field("sex").allowed_values == frozenset(SEX_VALUES)  # "ref:sex"
    assert "8N" in (police.field("ho_offence_code").allowed_values or ())  # code → label dict
    assert police.field("pnc_id").required is False
    assert police.field("forename").required is True  # default when omitted
    assert "forename" in police.required_names
    school = schemas["school_exclusions"]
    assert (
        school.field("exclusion_reason_2").allowed_values
        == school.field("exclusion_reason_1").allowed_values
    )
    gravity = schemas["youth_justice"].field("gravity_score")
    assert gravity.allowed_values == frozenset(str(n) for n in range(1, 9))
    assert load_schemas() is schemas  # cached


def test_boroughs_and_dfe_codes() -> None:
    boroughs = london_boroughs()
    assert len(boroughs) == 33
    assert boroughs["E09000007"] == "Camden"
    codes = dfe_la_codes()
    assert len(codes) == 33
    assert set(codes.values()) == set(boroughs)
    assert boroughs[codes["201"]] == "City of London"
    assert boroughs[codes["202"]] == "Camden"
    assert boroughs[codes["213"]] == "Westminster"
    assert boroughs[codes["301"]] == "Barking and Dagenham"
    assert boroughs[codes["320"]] == "Waltham Forest"


def test_get_adapter_unknown_lists_known_names() -> None:
    with pytest.raises(UnknownDataset) as caught:
        get_adapter("dentistry")
    assert "police_violence_offences" in str(caught.value)
    assert caught.value.known == sorted(ADAPTERS)


# -------------------------------------------------------------------------------- adapters

EXPECTED: dict[str, dict[str, object]] = {
    "police_violence_offences": {
        "forename": "Amara",
        "surname": "Okafor",
        "pnc_id": PNC,
        "local_id": "P100234",
        "record_ref": "CR0012345",
        "postcode": "N1 9GU",
        "borough_gss_code": "E09000019",
    },
    "ae_istv_assaults": {
        "nhs_number": NHS,
        "record_ref": "ATT-000917",
        "postcode": "N1 9GU",
        "forename": None,
        "borough_gss_code": "E09000019",
    },
    "school_exclusions": {
        "forename": "Amara",
        "surname": "Okafor",
        "upn": UPN,
        "former_upn": UPN,
        "borough_gss_code": "E09000007",  # la_code_old 202 = Camden
    },
    "youth_justice": {
        "local_id": "YJ-4411",
        "pnc_id": PNC,
        "upn": UPN,
        "borough_gss_code": "E09000019",
    },
    "childrens_social_care": {
        "local_id": "LAC-90210",
        "upn": UPN,
        "nhs_number": NHS,
        "borough_gss_code": "E09000019",
    },
    "probation": {
        "local_id": "X123456",
        "noms_number": "A1234BC",
        "pnc_id": PNC,
        "borough_gss_code": "E09000019",
    },
}


@pytest.mark.parametrize("dataset", sorted(EXPECTED))
def test_adapter_maps_a_valid_extract(dataset: str) -> None:
    adapter = ADAPTERS[dataset]
    result = run(dataset, {}, {})
    assert result.issues == []
    frame = result.frame
    assert frame.columns[: len(CANONICAL_COLUMNS)] == list(CANONICAL_COLUMNS)
    assert frame.get_column("row").to_list() == [2, 3]
    row = frame.row(0, named=True)
    assert row["event_date"] == dt.date(2024, 3, 1)
    assert row["date_of_birth"] == dt.date(2008, 3, 14)
    assert row["sex"] == "female"
    for column, value in EXPECTED[dataset].items():
        assert row[column] == value, column
    # identifiers never travel under their source names; everything else does, typed
    sources = set(adapter.identifier_sources.values())
    rest = [name for name in adapter.schema.names if name not in sources and name != "sex"]
    assert frame.columns[len(CANONICAL_COLUMNS) :] == [
        name for name in rest if name not in CANONICAL_COLUMNS
    ]
    for name in sources - set(IDENTIFIER_COLUMNS):
        assert name not in frame.columns
    expected_types = {
        "date": pl.Date,
        "datetime": pl.Datetime("us"),
        "integer": pl.Int64,
        "number": pl.Float64,
        "boolean": pl.Boolean,
        "array<enum>": pl.List(pl.String),
        "enum": pl.String,
        "string": pl.String,
    }
    for spec in adapter.schema.fields:
        if spec.name in frame.columns and spec.name not in IDENTIFIER_COLUMNS:
            if spec.name == adapter.borough_source or spec.name == "sex":
                continue
            assert frame.schema[spec.name] == expected_types[spec.type], spec.name


@pytest.mark.parametrize(
    ("dataset", "codes"),
    [
        ("police_violence_offences", {"M": "male", "female": "female", "9": "not_specified"}),
        ("school_exclusions", {"M": "male", "f": "female"}),
        (
            "childrens_social_care",
            {"0": "not_known", "1": "male", "2": "female", "9": "not_specified"},
        ),
    ],
)
def test_sex_codes_map_to_canonical(dataset: str, codes: dict[str, str]) -> None:
    result = run(dataset, *({"sex": code} for code in codes))
    assert result.issues == []
    assert result.frame.get_column("sex").to_list() == list(codes.values())


def test_school_outside_london_is_an_error() -> None:
    result = run("school_exclusions", {"la_code_old": "873"})
    assert [(issue.field, issue.code) for issue in result.issues] == [
        ("la_code_old", "invalid_code")
    ]
    assert result.frame.height == 0


def test_every_direct_identifier_is_mapped() -> None:
    for adapter in ADAPTERS.values():
        mapped = set(adapter.identifier_sources.values())
        for spec in adapter.schema.fields:
            if spec.identifier_class == "direct_identifier" or spec.linkage_key:
                assert spec.name in mapped, (adapter.dataset, spec.name)
