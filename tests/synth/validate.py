"""A strict, independent validator of extract files against the layouts (test helper)."""

from __future__ import annotations

import csv
import re
from datetime import date, datetime
from pathlib import Path

from synth.identifiers import is_valid_nhs_number, is_valid_upn
from synth.layouts import Layout


def problems_in(path: Path, layout: Layout, limit_rows: int | None = None) -> list[str]:
    found: list[str] = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if header != layout.names:
            return [f"header {header} != layout {layout.names}"]
        patterns = {f.name: re.compile(f.pattern) for f in layout.fields if f.pattern}
        for rowno, row in enumerate(reader, start=2):
            if limit_rows is not None and rowno > limit_rows + 1:
                break
            if len(row) != len(header):
                found.append(f"row {rowno}: {len(row)} cells")
                continue
            for spec, raw in zip(layout.fields, row, strict=True):
                value = raw.strip()
                where = f"row {rowno} {spec.name}"
                if value == "":
                    if spec.required:
                        found.append(f"{where}: required but empty")
                    continue
                kind = spec.type
                try:
                    if kind == "date":
                        date.fromisoformat(value)
                        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                            raise ValueError(value)
                    elif kind == "datetime":
                        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")
                    elif kind == "integer":
                        int(value)
                    elif kind == "number":
                        float(value)
                    elif kind == "boolean" and value not in ("true", "false"):
                        raise ValueError(value)
                except ValueError:
                    found.append(f"{where}: not a valid {kind}: {value!r}")
                if spec.codes is not None and "..." not in spec.codes:
                    items = value.split(";") if kind.startswith("array") else [value]
                    bad = [v for v in items if v not in spec.codes]
                    if bad:
                        found.append(f"{where}: {bad} not in code list")
                if spec.name in patterns and not patterns[spec.name].fullmatch(value):
                    found.append(f"{where}: {value!r} does not match {spec.pattern}")
                if spec.name == "nhs_number" and not is_valid_nhs_number(value):
                    found.append(f"{where}: bad NHS check digit {value!r}")
                if spec.name == "upn" and not is_valid_upn(value):
                    found.append(f"{where}: bad UPN check letter {value!r}")
            if len(found) > 50:
                break
    return found
