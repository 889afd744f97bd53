"""The agreement format as JSON Schema, committed as docs/agreement.schema.json.

Regenerate with ``python -m agreements.schema_export docs/agreement.schema.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from agreements.model import Agreement

SCHEMA_ID = "https://w3id.org/vru-hub/agreement.schema.json"


def agreement_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of an agreement document as it is written (input form)."""
    schema = Agreement.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


def schema_text() -> str:
    return json.dumps(agreement_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m agreements.schema_export <path>", file=sys.stderr)
        return 2
    Path(args[0]).write_text(schema_text(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
