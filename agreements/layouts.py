"""Check an agreement against the extract layouts the adapters read.

The caller (hub, or a test) turns the adapters' schemas into plain ``LayoutField`` values, so this
package never imports ``adapters``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from agreements.load import AgreementError
from agreements.model import Agreement

# Strongest protection first: an agreement may classify a field more strictly than its layout,
# never less.
_STRENGTH = {"direct_identifier": 2, "quasi_identifier": 1, "attribute": 0}


@dataclass(frozen=True)
class LayoutField:
    """What the extract layout says about one field."""

    identifier_class: str
    required: bool
    special_category: bool = False


Layouts = Mapping[str, Mapping[str, LayoutField]]


def layout_problems(
    agreement: Agreement, layouts: Layouts, source: str | None = None
) -> list[AgreementError]:
    """Every mismatch between ``agreement`` and ``layouts``, in document order."""
    where = source or f"agreement {agreement.id}"
    problems: list[AgreementError] = []
    for d_index, dataset in enumerate(agreement.datasets):
        layout = layouts.get(dataset.name)
        if layout is None:
            problems.append(
                AgreementError(
                    where,
                    f"datasets[{d_index}].name",
                    f"no extract layout called {dataset.name!r}; known layouts are "
                    + ", ".join(sorted(layouts)),
                )
            )
            continue
        for f_index, field in enumerate(dataset.fields):
            path = f"datasets[{d_index}].fields[{f_index}]"
            spec = layout.get(field.name)
            if spec is None:
                problems.append(
                    AgreementError(
                        where,
                        f"{path}.name",
                        f"the {dataset.name} layout has no field {field.name!r}",
                    )
                )
                continue
            if spec.identifier_class not in _STRENGTH:
                problems.append(
                    AgreementError(
                        where,
                        f"{path}.classification",
                        f"the layout's class {spec.identifier_class!r} is unknown",
                    )
                )
                continue
            if _STRENGTH[field.classification] < _STRENGTH[spec.identifier_class]:
                problems.append(
                    AgreementError(
                        where,
                        f"{path}.classification",
                        f"{field.name} is a {spec.identifier_class} in the {dataset.name} layout; "
                        f"an agreement cannot downgrade it to {field.classification}",
                    )
                )
            if spec.special_category and not field.special_category:
                problems.append(
                    AgreementError(
                        where,
                        f"{path}.special_category",
                        f"{field.name} is special category data in the {dataset.name} layout; "
                        "set special_category: true",
                    )
                )
        listed = set(dataset.field_names)
        missing = [name for name, spec in layout.items() if spec.required and name not in listed]
        if missing:
            problems.append(
                AgreementError(
                    where,
                    f"datasets[{d_index}].fields",
                    f"required {dataset.name} field{'s' if len(missing) > 1 else ''} not listed: "
                    + ", ".join(missing),
                )
            )
    return problems


def check_against_layouts(
    agreement: Agreement, layouts: Layouts, source: str | None = None
) -> None:
    """Raise the first AgreementError from :func:`layout_problems`, if any."""
    problems = layout_problems(agreement, layouts, source)
    if problems:
        first = problems[0]
        extra = len(problems) - 1
        reason = first.reason + (f" (and {extra} more problem{'s' if extra > 1 else ''})"
                                 if extra else "")
        raise AgreementError(first.source, first.field, reason)
