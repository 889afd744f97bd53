"""The agency extract layouts, loaded from the shared reference copy shipped inside the package.

Adapters validate uploads against these layouts, and agreements are checked against them, so
both must read the same file: ``adapters/reference/schemas.json`` is a copy of
``shared/reference/schemas.json`` (a test keeps them equal). It is read with
``importlib.resources`` so it works from a wheel as well as from a checkout.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

FIELD_TYPES = frozenset(
    {"string", "enum", "array<enum>", "date", "datetime", "integer", "number", "boolean"}
)
_REFERENCE = "adapters.reference"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of an extract layout.

    ``allowed_values`` holds the permitted codes (for a code → label table, the codes), or
    ``None`` when any value is accepted (no list, or an open list containing ``"..."``).
    """

    name: str
    type: str
    identifier_class: str
    required: bool = True
    linkage_key: bool = False
    allowed_values: frozenset[str] | None = None
    pattern: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class ExtractSchema:
    """The layout of one dataset's extract: its fields in file order."""

    dataset: str
    fields: tuple[FieldSpec, ...]

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.dataset} has no field {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.fields)

    @property
    def required_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.fields if spec.required)


class SchemaError(ValueError):
    """The reference layouts file is malformed (a packaging or editing mistake, not user input)."""


def _read_reference(name: str) -> str:
    return resources.files(_REFERENCE).joinpath(name).read_text(encoding="utf-8")


def _resolve_values(
    raw: Any,
    *,
    field: str,
    enums: dict[str, Any],
    siblings: dict[str, Any],
) -> frozenset[str] | None:
    """Turn a layout's ``allowed_values`` into the set of accepted codes (None = open)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw.startswith("ref:"):
            key = raw[4:]
            if key not in enums:
                raise SchemaError(f"{field}: unknown shared enum {key!r}")
            return _resolve_values(enums[key], field=field, enums=enums, siblings=siblings)
        if raw.startswith("same as "):
            # e.g. exclusion_reason_2: "same as exclusion_reason_1"
            other = raw[len("same as ") :].strip()
            if other not in siblings:
                raise SchemaError(f"{field}: refers to unknown field {other!r}")
            return _resolve_values(siblings[other], field=other, enums=enums, siblings=siblings)
        raise SchemaError(f"{field}: cannot interpret allowed_values {raw!r}")
    if isinstance(raw, dict):
        codes = [str(key) for key in raw]
    elif isinstance(raw, list):
        codes = [str(value) for value in raw]
    else:
        raise SchemaError(f"{field}: allowed_values must be a list, a mapping or a reference")
    if "..." in codes:
        return None
    return frozenset(codes)


def _parse_dataset(data: dict[str, Any], enums: dict[str, Any]) -> ExtractSchema:
    dataset = str(data["id"])
    siblings = {f["name"]: f.get("allowed_values") for f in data["fields"]}
    specs = []
    for raw in data["fields"]:
        name = str(raw["name"])
        ftype = str(raw["type"])
        if ftype not in FIELD_TYPES:
            raise SchemaError(f"{dataset}.{name}: unknown type {ftype!r}")
        specs.append(
            FieldSpec(
                name=name,
                type=ftype,
                identifier_class=str(raw["identifier_class"]),
                required=bool(raw.get("required", True)),
                linkage_key=bool(raw.get("linkage_key", False)),
                allowed_values=_resolve_values(
                    raw.get("allowed_values"),
                    field=f"{dataset}.{name}",
                    enums=enums,
                    siblings=siblings,
                ),
                pattern=raw.get("format"),
                description=str(raw.get("description", "")),
            )
        )
    return ExtractSchema(dataset=dataset, fields=tuple(specs))


@cache
def load_schemas() -> dict[str, ExtractSchema]:
    """All extract layouts by dataset id (parsed once per process)."""
    document = json.loads(_read_reference("schemas.json"))
    enums = document.get("shared_enums", {})
    return {
        schema.dataset: schema
        for schema in (_parse_dataset(data, enums) for data in document["datasets"])
    }


@cache
def london_boroughs() -> dict[str, str]:
    """The 33 London local authorities: GSS code (E09...) → name."""
    reader = csv.DictReader(io.StringIO(_read_reference("boroughs.csv")))
    return {row["gss_code"].strip(): row["name"].strip() for row in reader}


@cache
def dfe_la_codes() -> dict[str, str]:
    """DfE 3-digit ("old") LA codes of the 33 London authorities → GSS code."""
    reader = csv.DictReader(io.StringIO(_read_reference("dfe_la_codes.csv")))
    return {row["dfe_la_code"].strip(): row["gss_code"].strip() for row in reader}
