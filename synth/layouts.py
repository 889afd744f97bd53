"""Read the extract layouts (adapters/reference/schemas.json) without importing adapters code.

The generator must write files a strict validator accepts, so it takes field names, required
flags, code lists and format regexes straight from the layout document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

DATASETS: tuple[str, ...] = (
    "police_violence_offences",
    "ae_istv_assaults",
    "school_exclusions",
    "youth_justice",
    "childrens_social_care",
    "probation",
)


@dataclass(frozen=True)
class LayoutField:
    """One column of an extract layout, with its code list resolved."""

    name: str
    type: str
    required: bool
    codes: tuple[str, ...] | None
    pattern: str | None


@dataclass(frozen=True)
class Layout:
    dataset: str
    fields: tuple[LayoutField, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> LayoutField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"layout {self.dataset!r} has no field {name!r}")


def _schema_text() -> str:
    try:
        return resources.files("adapters").joinpath("reference/schemas.json").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - source checkout only
        path = Path(__file__).resolve().parent.parent / "adapters" / "reference" / "schemas.json"
        return path.read_text("utf-8")


def _resolve(
    raw: Any, enums: dict[str, list[str]], siblings: dict[str, Any]
) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw.startswith("ref:"):
            return tuple(str(v) for v in enums[raw[4:]])
        if raw.startswith("same as "):
            return _resolve(siblings[raw[len("same as ") :]], enums, siblings)
        raise ValueError(f"unrecognised code-list reference {raw!r} in schemas.json")
    if isinstance(raw, dict):
        return tuple(str(k) for k in raw)
    return tuple(str(v) for v in raw)


@cache
def load_layouts() -> dict[str, Layout]:
    """All six extract layouts keyed by dataset id."""
    doc = json.loads(_schema_text())
    enums: dict[str, list[str]] = doc["shared_enums"]
    out: dict[str, Layout] = {}
    for ds in doc["datasets"]:
        siblings = {f["name"]: f.get("allowed_values") for f in ds["fields"]}
        fields = tuple(
            LayoutField(
                name=f["name"],
                type=f["type"],
                required=bool(f.get("required", True)),
                codes=_resolve(f.get("allowed_values"), enums, siblings),
                pattern=f.get("format"),
            )
            for f in ds["fields"]
        )
        out[ds["id"]] = Layout(ds["id"], fields)
    return out
