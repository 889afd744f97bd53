"""Small fake extracts for the adapter tests, built from the layouts.

Every value is invented. Identifiers are syntactically valid: NHS number 9434765919 passes the
modulus 11 check, UPN U202211001234 and PNC 2019/1234567J carry correct check letters.
"""

from __future__ import annotations

import csv
import io

from adapters.schema import FieldSpec, load_schemas

NHS = "9434765919"
UPN = "U202211001234"
PNC = "2019/1234567J"

_BY_NAME: dict[str, str] = {
    "forename": "Amara",
    "surname": "Okafor",
    "legal_forename": "Amara",
    "legal_surname": "Okafor",
    "date_of_birth": "2008-03-14",
    "home_postcode": "N1 9GU",
    "postcode_of_usual_address": "N1 9GU",
    "nhs_number": NHS,
    "upn": UPN,
    "former_upn": UPN,
    "pnc_id": PNC,
    "crn": "X123456",
    "noms_number": "A1234BC",
    "police_person_id": "P100234",
    "crime_reference": "CR0012345",
    "attendance_id": "ATT-000917",
    "yjs_child_id": "YJ-4411",
    "la_child_id": "LAC-90210",
    "age_at_offence": "15",
    "age_at_attendance": "15",
    "la_code_old": "202",
    "laestab": "2024001",
    "academic_year": "2023/24",
    "ward_code": "E05000123",
    "lsoa_code": "E01000123",
    "incident_lsoa_code": "E01000123",
    "sex": "female",
}
_BY_DATASET: dict[str, dict[str, str]] = {
    "school_exclusions": {"sex": "F"},
    "childrens_social_care": {"sex": "2"},
}


def sample_value(dataset: str, spec: FieldSpec) -> str:
    """A valid value for ``spec``: dates fall in March 2024, after the sample date of birth."""
    override = _BY_DATASET.get(dataset, {}).get(spec.name)
    if override is not None:
        return override
    if spec.name in _BY_NAME:
        return _BY_NAME[spec.name]
    if spec.name.endswith("gss_code"):
        return "E09000019"
    if spec.type == "date":
        return "2024-03-01"
    if spec.type == "datetime":
        return "2024-03-01 14:30:00"
    if spec.type == "integer":
        return min(spec.allowed_values, key=int) if spec.allowed_values else "3"
    if spec.type == "number":
        return "51.5"
    if spec.type == "boolean":
        return "yes"
    if spec.type == "array<enum>":
        return ";".join(sorted(spec.allowed_values or {"a"})[:2])
    if spec.allowed_values:
        return sorted(spec.allowed_values)[0]
    return "ABC123"


def extract_rows(dataset: str, *overrides: dict[str, str]) -> list[dict[str, str]]:
    """One row per ``overrides`` dict (a valid row with those cells replaced)."""
    schema = load_schemas()[dataset]
    rows = []
    for change in overrides or ({},):
        row = {spec.name: sample_value(dataset, spec) for spec in schema.fields}
        row.update(change)
        rows.append(row)
    return rows


def extract_csv(dataset: str, *overrides: dict[str, str], drop: tuple[str, ...] = ()) -> bytes:
    """A CSV extract (UTF-8) of ``dataset`` with every layout column except ``drop``."""
    rows = extract_rows(dataset, *overrides)
    names = [name for name in rows[0] if name not in drop]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([row[name] for name in names])
    return out.getvalue().encode("utf-8")


class ReadOnlyStream:
    """A source with nothing but ``read()``, like a pipe fed from an HTTP request body."""

    def __init__(self, data: bytes, chunk: int = 7_919) -> None:
        self._data = data
        self._position = 0
        self._chunk = chunk  # never hand back more than this per call, like a socket

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = len(self._data)
        size = min(size, self._chunk)
        piece = self._data[self._position : self._position + size]
        self._position += len(piece)
        return piece
