"""Write one benchmark's section of docs/benchmarks.md, leaving the other sections alone."""

from __future__ import annotations

from pathlib import Path

HEADER = (
    "# Benchmarks\n\n"
    "Figures from `benchmarks/`; each section says when and on what it was measured.\n"
)


def write_section(path: Path, title: str, body: str) -> None:
    text = path.read_text() if path.exists() else HEADER
    heading = f"## {title}\n"
    section = f"{heading}\n{body.strip()}\n"
    if heading in text:
        before, _, rest = text.partition(heading)
        _, sep, after = rest.partition("\n## ")
        text = before + section + ("\n## " + after if sep else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
