"""The generic adapter: validate an all-string batch against a layout and map it to canonical form.

Each agency's adapter is a small declaration (which source column holds which identifier, the
event date, sex and borough) on top of this class, so adding an agency is one module.

Validation is vectorised: every check is a polars expression evaluated over the whole batch, and
Python only loops over the rows that failed, to build their ``RowIssue``. Rules:

* a cell starting like a spreadsheet formula (``=``, or ``+ - @`` then a letter) is an error,
  whatever the field (CSV injection);
* an invalid value in an ordinary field, or an empty required field, is an error: the row is
  rejected (left out of ``CanonicalBatch.frame``);
* an invalid identifier (direct identifiers, date of birth, postcodes) is a warning: the value
  becomes null and the row is kept, since the record still counts even if it cannot be linked;
* an impossible age (< 0, > 120, or more than a year away from the age implied by date of birth
  and event date) is an error.

Messages name the field and the problem, never the value: a careless export may have put a name
in the wrong column, and issues are shown to users and stored in upload receipts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from adapters.dates import (
    fill_slow_dates,
    iso_date_expr,
    iso_datetime_expr,
    only_plausible_dates,
)
from adapters.schema import ExtractSchema, FieldSpec, load_schemas
from adapters.tables import column_position
from privacy import normalise
from privacy.freetext import IDENTIFIER_REGEX

Severity = Literal["error", "warning"]

# Identifier columns every canonical frame carries (null where a dataset has no such field).
# ``noms_number`` (HMPPS prison number) is a national person identifier of its own kind, so it
# gets its own column rather than being folded into ``local_id`` or ``pnc_id``.
IDENTIFIER_COLUMNS: tuple[str, ...] = (
    "forename",
    "surname",
    "nhs_number",
    "upn",
    "former_upn",
    "pnc_id",
    "noms_number",
    "local_id",
    "record_ref",
    "postcode",
    "date_of_birth",
)
CANONICAL_COLUMNS: tuple[str, ...] = (
    "row",
    *IDENTIFIER_COLUMNS,
    "event_date",
    "sex",
    "borough_gss_code",
)
SEX_VALUES = ("male", "female", "not_known", "not_specified")

# Accepted spellings (lower case) → canonical sex, covering the shared enum, M/F and the
# 0/1/2/9 codes (ISO/IEC 5218, used by the DfE CIN census and NHS person stated gender).
SEX_CODES: Mapping[str, str] = {
    "male": "male",
    "m": "male",
    "1": "male",
    "female": "female",
    "f": "female",
    "2": "female",
    "not_known": "not_known",
    "not known": "not_known",
    "unknown": "not_known",
    "u": "not_known",
    "0": "not_known",
    "not_specified": "not_specified",
    "not specified": "not_specified",
    "9": "not_specified",
    "x": "not_specified",
}
_BOOLEANS: Mapping[str, bool] = {
    "true": True,
    "false": False,
    "yes": True,
    "no": False,
    "y": True,
    "n": False,
    "1": True,
    "0": False,
}
_FORMULA = r"^(?:=|[+\-@][A-Za-z])"
_MAX_AGE = 120


@dataclass(frozen=True, slots=True)
class RowIssue:
    """A problem with one cell. ``row`` is the spreadsheet row (header = 1, first data row = 2)."""

    row: int
    field: str
    code: str
    message: str
    severity: Severity


def column_label(position: int) -> str:
    """A 1-based column position as users see it in a spreadsheet: ``column 3 (C)``."""
    return f"column {column_position(position)}"


@dataclass(frozen=True, slots=True)
class ColumnProblem:
    """A problem with the file's columns as a whole; any one refuses the upload."""

    column: str
    code: str
    message: str


@dataclass(slots=True)
class CanonicalBatch:
    """The rows without errors in canonical form, and every issue found in the batch."""

    frame: pl.DataFrame
    issues: list[RowIssue]


@dataclass(frozen=True, slots=True)
class _Check:
    field: str
    code: str
    severity: Severity
    message: str
    mask: pl.Expr  # True where the issue applies
    # When set, ``mask`` is evaluated only in a batch where ``gate`` applies to some row, and
    # only applies where ``gate`` does (see Adapter._field: the formula check of a typed field).
    gate: _Check | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    """The expressions ``map_batch`` runs, for one set of empty and already-canonical columns."""

    typed: tuple[pl.Expr, ...]  # over the raw columns: typed value per field
    slow_dates: tuple[tuple[str, str, str], ...]  # for fill_slow_dates
    # dates other than the date of birth, whose checks (an implausible age) say more
    year_checked: tuple[tuple[str, str, str], ...]  # for only_plausible_dates
    event: pl.Expr  # __event_date, over the typed columns
    outputs: tuple[pl.Expr, ...]  # canonical columns, over the typed stage
    masks: tuple[pl.Expr, ...]  # field and identifier checks, over the typed stage
    age_masks: tuple[pl.Expr, ...]  # age checks, over the canonical columns
    checks: tuple[_Check, ...]  # in report order: field and identifier checks, then age checks
    mask_names: tuple[str | None, ...]  # per check, its mask column; None for a gated check
    gated: tuple[tuple[int, int], ...]  # (check, its gate) by index in checks


# Plans kept per adapter; more than this many column patterns in one process starts afresh.
_MAX_PLANS = 32


def _typed_name(name: str) -> str:
    return f"__typed__{name}"


def _lookup(values: frozenset[str]) -> dict[str, str]:
    """Case-insensitive lookup: lower-cased spelling → canonical spelling."""
    return {value.lower(): value for value in sorted(values)}


@dataclass(frozen=True)
class Adapter:
    """Generic adapter for one dataset; subclass or configure per agency.

    ``identifier_sources`` maps canonical identifier columns to the layout's source columns.
    Every direct identifier and every linkage key of the layout must be mapped, so no raw
    identifier ever travels under its source name.
    ``borough_codes`` translates the borough source when it does not already hold GSS codes.
    """

    dataset: str
    identifier_sources: Mapping[str, str]
    event_date_source: str
    borough_source: str | None = None
    borough_codes: Mapping[str, str] | None = None
    sex_source: str | None = "sex"
    sex_codes: Mapping[str, str] = field(default_factory=lambda: dict(SEX_CODES))
    age_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        schema = self.schema
        names = set(schema.names)
        for canonical, source in self.identifier_sources.items():
            if canonical not in IDENTIFIER_COLUMNS:
                raise ValueError(f"{self.dataset}: {canonical!r} is not an identifier column")
            if source not in names:
                raise ValueError(f"{self.dataset}: layout has no field {source!r}")
        mapped = set(self.identifier_sources.values())
        for spec in schema.fields:
            is_linkage_quasi = spec.linkage_key and spec.identifier_class == "quasi_identifier"
            if (spec.identifier_class == "direct_identifier" or is_linkage_quasi) and (
                spec.name not in mapped
            ):
                raise ValueError(f"{self.dataset}: identifier {spec.name!r} is not mapped")
        sources = (self.event_date_source, self.borough_source, self.sex_source, *self.age_fields)
        for other in sources:
            if other is not None and other not in names:
                raise ValueError(f"{self.dataset}: layout has no field {other!r}")
        if schema.field(self.event_date_source).type not in ("date", "datetime"):
            raise ValueError(f"{self.dataset}: event date source must be a date or datetime")
        for age_field in self.age_fields:
            # age checks read the field's canonical output column, which carries its own name
            if age_field in mapped or age_field in CANONICAL_COLUMNS:
                raise ValueError(
                    f"{self.dataset}: age field {age_field!r} must be an ordinary field"
                )

    def _canonical_of(self, source: str) -> str:
        return next(canon for canon, src in self.identifier_sources.items() if src == source)

    @property
    def schema(self) -> ExtractSchema:
        return load_schemas()[self.dataset]

    # ------------------------------------------------------------------------------ columns

    def check_columns(
        self, columns: Sequence[str], permitted: Sequence[str]
    ) -> list[ColumnProblem]:
        """Problems with the file's header against the layout and the agreement's fields.

        A header cell the layout does not know is named by its position, never by its text:
        when a file has no header row its first data row is read as the header, and its
        cells are identifiers.
        """
        layout = set(self.schema.names)
        allowed = set(permitted)
        present = set(columns)
        unknown = [(i, column) for i, column in enumerate(columns, start=1) if column not in layout]
        if columns and len(unknown) * 2 > len(columns):
            return [self._header_not_recognised(len(unknown), len(columns))]
        problems = [self._unknown_column(position, column) for position, column in unknown]
        for column in columns:
            if column in layout and column not in allowed:
                problems.append(
                    ColumnProblem(
                        column,
                        "not_permitted",
                        f"column {column!r} is not shared under the agreement; "
                        "remove it from the extract",
                    )
                )
        for spec in self.schema.fields:
            if spec.required and spec.name in allowed and spec.name not in present:
                problems.append(
                    ColumnProblem(
                        spec.name,
                        "missing_column",
                        f"required column {spec.name!r} is missing; "
                        "add it (it may be empty only where the layout allows)",
                    )
                )
        return problems

    def _header_not_recognised(self, unknown: int, width: int) -> ColumnProblem:
        return ColumnProblem(
            "header",
            "header_not_recognised",
            f"the first row does not look like the {self.dataset} header: {unknown} of its "
            f"{width} cells are not column names of the layout. The first row must name the "
            f"columns ({', '.join(self.schema.names[:3])}, ...); if the file was exported "
            "without a header row, export it again with one",
        )

    def _unknown_column(self, position: int, column: str) -> ColumnProblem:
        label = column_label(position)
        close = difflib.get_close_matches(column.strip().lower(), self.schema.names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return ColumnProblem(
            label,
            "unknown_column",
            f"{label} is not in the {self.dataset} extract layout; "
            f"rename it to the layout name{hint} or remove it",
        )

    # ------------------------------------------------------------------------------ mapping

    def map_batch(self, batch: pl.DataFrame, first_row: int) -> CanonicalBatch:
        """Validate ``batch`` (all String) and return its valid rows in canonical form."""
        schema = self.schema
        height = batch.height
        present = set(batch.columns)
        raw = pl.DataFrame(
            [
                pl.int_range(first_row, first_row + height, dtype=pl.Int64, eager=True).alias(
                    "row"
                ),
                *(
                    batch.get_column(spec.name).cast(pl.String)
                    if spec.name in present
                    else pl.repeat(None, height, dtype=pl.String, eager=True).alias(spec.name)
                    for spec in schema.fields
                ),
            ]
        )
        # empty columns (absent optional fields, mostly) need no parsing: null_count is O(1)
        empty = frozenset(
            spec.name for spec in schema.fields if raw.get_column(spec.name).null_count() == height
        )
        plan = self._plan(empty, self._already_canonical(raw, empty))

        stage = raw.lazy().with_columns(plan.typed).collect()
        stage = only_plausible_dates(fill_slow_dates(stage, plan.slow_dates), plan.year_checked)
        stage = (
            stage.lazy()
            .with_columns(plan.event)
            .select(*plan.outputs, *plan.masks)
            .with_columns(plan.age_masks)
            .collect()
        )

        # Series.any() and | on whole columns: an expression over dozens of mask columns costs
        # more to plan than the columns cost to scan.
        masks = [None if name is None else stage.get_column(name) for name in plan.mask_names]
        flagged = [mask is not None and mask.any() for mask in masks]
        for index, gate in plan.gated:
            gate_mask = masks[gate]
            if flagged[gate] and gate_mask is not None:
                # the gated check's mask is over the raw columns, which are row for row the stage's
                expr = plan.checks[index].mask.fill_null(False) & pl.lit(gate_mask)
                gated_mask = raw.select(expr).to_series()
                masks[index], flagged[index] = gated_mask, gated_mask.any()
        row_numbers = stage.get_column("row")
        issues: list[RowIssue] = []
        errors: list[pl.Series] = []
        for check, mask, hit in zip(plan.checks, masks, flagged, strict=True):
            if not hit or mask is None:
                continue
            issues.extend(
                RowIssue(row, check.field, check.code, check.message, check.severity)
                for row in row_numbers.filter(mask).to_list()
            )
            if check.severity == "error":
                errors.append(mask)
        issues.sort(key=lambda issue: issue.row)
        frame = stage.drop(name for name in plan.mask_names if name is not None)
        if errors:
            frame = frame.filter(~functools.reduce(operator.or_, errors))
        return CanonicalBatch(frame=frame, issues=issues)

    @functools.cached_property
    def _plans(self) -> dict[tuple[frozenset[str], frozenset[str], dt.date], _Plan]:
        return {}

    @functools.cached_property
    def _canonical_checks(self) -> dict[str, pl.Expr]:
        """Per code or yes/no column: True when every value is spelt as in the layout
        (``true``/``false`` for yes/no), or null."""
        return {
            spec.name: (pl.col(spec.name).is_in(values) | pl.col(spec.name).is_null())
            .all()
            .alias(spec.name)
            for spec in self.schema.fields
            if (values := _canonical_spellings(spec)) is not None
        }

    def _already_canonical(self, frame: pl.DataFrame, skip: frozenset[str]) -> frozenset[str]:
        """Code and yes/no columns whose every value is already spelt as in the layout (one
        cheap pass).

        Most extracts use the layout's exact codes and ``true``/``false``, so the
        case-insensitive remapping can be skipped for those columns; it is only needed where
        some value differs.
        """
        checks = [expr for name, expr in self._canonical_checks.items() if name not in skip]
        if not checks:
            return frozenset()
        flags = frame.select(checks).row(0, named=True)
        return frozenset(name for name, ok in flags.items() if ok)

    def _plan(self, empty: frozenset[str], canonical: frozenset[str]) -> _Plan:
        """The expressions for batches with these empty and already-canonical columns.

        Built once and reused: building them costs about as much as running them on a few
        thousand rows. Today's date is part of the key (date of birth and PNC checks use it).
        """
        key = (empty, canonical, dt.date.today())
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= _MAX_PLANS:  # a bound for extracts whose empty columns vary
                self._plans.clear()
            plan = self._plans[key] = self._build_plan(empty, canonical)
        return plan

    def _build_plan(self, empty: frozenset[str], canonical: frozenset[str]) -> _Plan:
        schema = self.schema
        checks: list[_Check] = []
        typed: list[pl.Expr] = []
        for spec in schema.fields:
            if spec.name in empty:
                typed.append(pl.lit(None, dtype=_DTYPES[spec.type]).alias(_typed_name(spec.name)))
                if spec.required:
                    checks.append(_required(spec.name, pl.col(spec.name)))
                continue
            expr, field_checks = self._field(spec, spec.name in canonical)
            typed.append(expr.alias(_typed_name(spec.name)))
            checks.extend(field_checks)
        slow_dates = tuple(
            (spec.name, _typed_name(spec.name), spec.type)
            for spec in schema.fields
            if spec.type in ("date", "datetime")
        )
        event = pl.col(_typed_name(self.event_date_source))
        if schema.field(self.event_date_source).type == "datetime":
            event = event.dt.date()
        outputs, output_checks = self._outputs(schema)
        stage_checks = (*checks, *output_checks)
        all_checks = (*stage_checks, *self._age_checks())
        mask_names = tuple(
            None if check.gate is not None else f"__m{i}" for i, check in enumerate(all_checks)
        )
        split = len(stage_checks)
        masks = _mask_columns(stage_checks, mask_names[:split])
        age_masks = _mask_columns(all_checks[split:], mask_names[split:])
        position = {id(check): i for i, check in enumerate(all_checks)}
        gated = tuple(
            (i, position[id(check.gate)])
            for i, check in enumerate(all_checks)
            if check.gate is not None
        )
        return _Plan(
            typed=tuple(typed),
            slow_dates=slow_dates,
            year_checked=tuple(
                field for field in slow_dates if field[0] not in self.identifier_sources.values()
            ),
            event=event.alias("__event_date"),
            outputs=tuple(outputs),
            masks=tuple(masks),
            age_masks=tuple(age_masks),
            checks=all_checks,
            mask_names=mask_names,
            gated=gated,
        )

    # ------------------------------------------------------------------------------ internals

    def _field(self, spec: FieldSpec, canonical: bool) -> tuple[pl.Expr, list[_Check]]:
        """The typed expression for a source field and its checks (formula, required, type)."""
        expr, checks = self._field_checks(spec, canonical)
        formula = _Check(
            spec.name,
            "formula",
            "error",
            f"{spec.name}: starts like a spreadsheet formula (=, +, - or @); "
            "export values rather than formulas",
            pl.col(spec.name).str.contains(_FORMULA),
        )
        # A field typed as a code, a yes/no, a whole number or a date keeps its typed value,
        # never the text, so a formula there can only be a cell that fails its type check:
        # look for formulas only in the batches where that check fails (most have none, and
        # a regex over every cell of every column is a large share of validating).
        type_check = next((c for c in checks if c.code in _TYPE_CHECK_CODES), None)
        if type_check is not None and _keeps_typed_value(spec):
            formula = dataclasses.replace(formula, gate=type_check)
        return expr, [formula, *checks]

    def _field_checks(self, spec: FieldSpec, canonical: bool) -> tuple[pl.Expr, list[_Check]]:
        """The typed expression for a source field and its required and type checks."""
        name = spec.name
        col = pl.col(name)
        checks: list[_Check] = []
        is_identifier = name in self.identifier_sources.values()
        if spec.required:
            checks.append(_required(name, col))
        if is_identifier and spec.type in ("string", "date"):
            # identifier validity is handled with the canonical column (a warning, not an error)
            if spec.type == "date":
                return iso_date_expr(col), checks
            valid = _identifier_valid(self._canonical_of(name), spec)
            return (col if valid is None else pl.when(valid).then(col)), checks
        if name == self.sex_source:
            codes = {key.lower(): value for key, value in self.sex_codes.items()}
            expr = col.str.to_lowercase().replace_strict(
                codes, default=None, return_dtype=pl.String
            )
            checks.append(_invalid(name, "invalid_code", _CODE_HELP, col, expr))
            return expr, checks
        if name == self.borough_source and self.borough_codes is not None:
            expr = col.replace_strict(
                dict(self.borough_codes), default=None, return_dtype=pl.String
            )
            checks.append(
                _invalid(
                    name,
                    "invalid_code",
                    "not the code of a London local authority",
                    col,
                    expr,
                )
            )
            return expr, checks
        if _is_free_text(spec):
            # Free text is kept as an attribute: a typed date, number or postcode in it would
            # put an identifier on disk. The cell is dropped (the record is kept), with a warning.
            holds_identifier = col.str.contains(IDENTIFIER_REGEX)
            checks.append(
                _Check(
                    name,
                    "identifier_in_text",
                    "warning",
                    f"{name}: looks like it holds an identifier (a date, a long number, a UPN, "
                    "a PNC id or a postcode), so the cell was not stored; free text must not "
                    "identify anyone",
                    holds_identifier,
                )
            )
            return pl.when(~holds_identifier).then(col), checks
        expr, help_text, code = _typed(spec, canonical)
        if help_text:
            checks.append(_invalid(name, code, help_text, col, expr))
        if spec.type == "integer" and spec.allowed_values is not None:
            allowed = sorted(int(value) for value in spec.allowed_values)
            checks.append(
                _Check(
                    name,
                    "invalid_code",
                    "error",
                    f"{name}: {_CODE_HELP}",
                    pl.col(_typed_name(name)).is_not_null()
                    & ~pl.col(_typed_name(name)).is_in(allowed),
                )
            )
        if spec.type == "string" and spec.pattern and spec.allowed_values is None:
            checks.append(
                _Check(
                    name,
                    "invalid_format",
                    "error",
                    f"{name}: does not have the format the extract layout requires",
                    col.is_not_null() & ~col.str.contains(spec.pattern),
                )
            )
        return expr, checks

    def _outputs(self, schema: ExtractSchema) -> tuple[list[pl.Expr], list[_Check]]:
        """Canonical output columns (over the typed stage) and the identifier checks."""
        checks: list[_Check] = []
        event = pl.col("__event_date")
        outputs: list[pl.Expr] = [pl.col("row")]
        for canonical in IDENTIFIER_COLUMNS:
            source = self.identifier_sources.get(canonical)
            if source is None:
                dtype = pl.Date if canonical == "date_of_birth" else pl.String
                outputs.append(pl.lit(None, dtype=dtype).alias(canonical))
                continue
            spec = schema.field(source)
            if canonical == "date_of_birth":
                dob, dob_checks = _date_of_birth(
                    source, pl.col(source), pl.col(_typed_name(source)), event
                )
                checks.extend(dob_checks)
                outputs.append(dob.alias(canonical))
                continue
            # the typed column already holds the value where valid and null where not
            value = pl.col(_typed_name(source))
            if _identifier_valid(canonical, spec) is None:
                outputs.append(value.alias(canonical))
                continue
            checks.append(
                _Check(
                    source,
                    "invalid_identifier",
                    "warning",
                    f"{source}: {_IDENTIFIER_HELP.get(canonical, 'not in the expected format')}; "
                    "treated as missing",
                    pl.col(source).is_not_null() & value.is_null(),
                )
            )
            outputs.append(value.alias(canonical))
        outputs.append(event.alias("event_date"))
        if self.sex_source is not None:
            outputs.append(pl.col(_typed_name(self.sex_source)).alias("sex"))
        else:
            outputs.append(pl.lit(None, dtype=pl.String).alias("sex"))
        if self.borough_source is not None:
            outputs.append(pl.col(_typed_name(self.borough_source)).alias("borough_gss_code"))
        else:
            outputs.append(pl.lit(None, dtype=pl.String).alias("borough_gss_code"))

        identifier_sources = set(self.identifier_sources.values())
        for spec in schema.fields:
            if spec.name in identifier_sources or spec.name in CANONICAL_COLUMNS:
                continue
            if spec.name == self.borough_source and self.borough_codes is not None:
                outputs.append(pl.col(spec.name))  # the source code, as sent
                continue
            outputs.append(pl.col(_typed_name(spec.name)).alias(spec.name))

        return outputs, checks

    def _age_checks(self) -> list[_Check]:
        """Age checks, over the canonical output columns (date of birth already cleaned)."""
        checks: list[_Check] = []
        dob, event = pl.col("date_of_birth"), pl.col("event_date")
        for age_field in self.age_fields:
            age = pl.col(age_field)
            implied = _age_in_years(dob, event)
            checks.append(
                _Check(
                    age_field,
                    "impossible_age",
                    "error",
                    f"{age_field}: must be between 0 and {_MAX_AGE}",
                    (age < 0) | (age > _MAX_AGE),
                )
            )
            checks.append(
                _Check(
                    age_field,
                    "age_mismatch",
                    "error",
                    f"{age_field}: differs by more than a year from the age implied by "
                    "date_of_birth and the event date",
                    (age >= 0) & (age <= _MAX_AGE) & ((age - implied).abs() > 1),
                )
            )
        return checks


_CODE_HELP = "not one of the codes allowed by the extract layout"
_IDENTIFIER_HELP = {
    "nhs_number": "not a valid NHS number (10 digits passing the check digit)",
    "upn": "not a valid UPN (check letter, 11 digits, final digit or letter)",
    "former_upn": "not a valid UPN (check letter, 11 digits, final digit or letter)",
    "pnc_id": "not a valid PNC id (YY/NNNNNNNL or YYYY/NNNNNNNL with its check letter)",
    "postcode": "not a valid UK postcode",
}


_DTYPES: Mapping[str, pl.DataType] = {
    "string": pl.String(),
    "enum": pl.String(),
    "array<enum>": pl.List(pl.String),
    "date": pl.Date(),
    "datetime": pl.Datetime("us"),
    "integer": pl.Int64(),
    "number": pl.Float64(),
    "boolean": pl.Boolean(),
}


def _mask_columns(checks: Sequence[_Check], names: Sequence[str | None]) -> list[pl.Expr]:
    """The mask column of each check that has one (gated checks have none)."""
    return [
        check.mask.fill_null(False).alias(name)
        for check, name in zip(checks, names, strict=True)
        if name is not None
    ]


def _required(name: str, raw: pl.Expr) -> _Check:
    return _Check(name, "required", "error", f"{name}: required but empty", raw.is_null())


def _invalid(name: str, code: str, help_text: str, raw: pl.Expr, _typed_expr: pl.Expr) -> _Check:
    # evaluated after the typed column has been materialised, so refer to it by name
    typed = pl.col(_typed_name(name))
    return _Check(name, code, "error", f"{name}: {help_text}", raw.is_not_null() & typed.is_null())


# The codes of the checks that a field's value could not be typed (Adapter._field_checks).
_TYPE_CHECK_CODES = frozenset(
    {"invalid_code", "invalid_boolean", "invalid_integer", "invalid_date", "invalid_datetime"}
)


def _keeps_typed_value(spec: FieldSpec) -> bool:
    """True where only a cell that fails the field's type check can look like a formula: the
    field is a date, a time, a whole number, a yes/no or one of the layout's codes (none of
    which looks like one)."""
    if spec.type in ("date", "datetime", "integer", "boolean"):
        return True
    codes = spec.allowed_values
    return (
        spec.type in ("enum", "string")
        and codes is not None
        and not any(re.match(_FORMULA, code) for code in codes)
    )


def _canonical_spellings(spec: FieldSpec) -> list[str] | None:
    """The values a column may hold for its typing to skip remapping: a code column's codes as
    the layout spells them, ``true`` and ``false`` for a yes/no column; None for others."""
    if spec.type == "boolean":
        return ["false", "true"]
    if spec.type in ("enum", "string") and spec.allowed_values is not None:
        return sorted(spec.allowed_values)
    return None


def _typed(spec: FieldSpec, canonical: bool = False) -> tuple[pl.Expr, str, str]:
    """(typed expression, help text for an invalid value or "", issue code) for a field.

    ``canonical``: every value of a code or yes/no column is known to be spelt exactly as in
    the layout (``true``/``false`` for yes/no).
    """
    col = pl.col(spec.name)
    if spec.type == "date":
        return (
            iso_date_expr(col),
            "not a date in a recognised format (use YYYY-MM-DD or DD/MM/YYYY)",
            "invalid_date",
        )
    if spec.type == "datetime":
        return (
            iso_datetime_expr(col),
            "not a date and time in a recognised format (use YYYY-MM-DD HH:MM:SS)",
            "invalid_datetime",
        )
    if spec.type == "integer":
        # "12.0" is how spreadsheets often write whole numbers
        expr = col.str.replace(r"\.0+$", "").str.replace(r"^\+", "").cast(pl.Int64, strict=False)
        return expr, "not a whole number", "invalid_integer"
    if spec.type == "number":
        return col.cast(pl.Float64, strict=False), "not a number", "invalid_number"
    if spec.type == "boolean":
        if canonical:
            expr = col == "true"  # every value is "true" or "false" (or null, which stays null)
        else:
            expr = col.str.to_lowercase().replace_strict(
                dict(_BOOLEANS), default=None, return_dtype=pl.Boolean
            )
        return expr, "not a yes/no value (use true/false, yes/no, y/n or 1/0)", "invalid_boolean"
    if spec.type == "array<enum>":
        items = (
            col.str.replace_all("|", ";", literal=True)
            .str.split(";")
            .list.eval(pl.element().str.strip_chars())
            .list.eval(pl.element().filter(pl.element().str.len_bytes() > 0))
        )
        if spec.allowed_values is None:
            return items, "", "invalid_code"
        lookup = _lookup(spec.allowed_values)
        mapped = items.list.eval(
            pl.element()
            .str.to_lowercase()
            .replace_strict(lookup, default=None, return_dtype=pl.String)
        )
        # a list with any unknown code becomes null, which the invalid check reports
        has_unknown = mapped.list.eval(pl.element().is_null()).list.any()
        expr = pl.when(has_unknown).then(None).otherwise(mapped)
        return expr, f"{_CODE_HELP} (separate several codes with ; or |)", "invalid_code"
    if spec.allowed_values is not None and spec.type in ("enum", "string"):
        if canonical:
            return col, _CODE_HELP, "invalid_code"
        lookup = _lookup(spec.allowed_values)
        expr = col.str.to_lowercase().replace_strict(lookup, default=None, return_dtype=pl.String)
        return expr, _CODE_HELP, "invalid_code"
    return col, "", "invalid_code"


# Layout fields that hold typed descriptions rather than codes (by their names: no layout marks
# them): screened for identifiers by ``_field_checks``.
_FREE_TEXT_SUFFIXES = ("_description", "_text", "_reason")


def _is_free_text(spec: FieldSpec) -> bool:
    return (
        spec.type == "string"
        and spec.allowed_values is None
        and not spec.pattern
        and spec.name.endswith(_FREE_TEXT_SUFFIXES)
    )


def _identifier_valid(canonical: str, spec: FieldSpec) -> pl.Expr | None:
    """True where an identifier value is usable; None when any text is accepted."""
    col = pl.col(spec.name)
    # privacy.normalise returns null for anything it cannot normalise (shape or check character)
    if canonical == "nhs_number":
        return normalise.nhs_number_expr(col).is_not_null()
    if canonical in ("upn", "former_upn"):
        return normalise.upn_expr(col).is_not_null()
    if canonical == "pnc_id":
        return normalise.pnc_valid_expr(col)
    if canonical == "postcode":
        return normalise.postcode_valid_expr(col)
    if spec.pattern:
        return col.str.to_uppercase().str.replace_all(r"\s", "").str.contains(spec.pattern)
    return None


def _age_in_years(dob: pl.Expr, on: pl.Expr) -> pl.Expr:
    before_birthday = (on.dt.month() * 100 + on.dt.day()) < (dob.dt.month() * 100 + dob.dt.day())
    return (on.dt.year() - dob.dt.year()).cast(pl.Int64) - before_birthday.cast(pl.Int64)


def _date_of_birth(
    name: str, raw: pl.Expr, parsed: pl.Expr, event: pl.Expr
) -> tuple[pl.Expr, list[_Check]]:
    today = dt.date.today()
    reference = pl.coalesce(event, pl.lit(today))
    problems = [
        (
            "invalid_date",
            "not a date in a recognised format (use YYYY-MM-DD or DD/MM/YYYY)",
            raw.is_not_null() & parsed.is_null(),
        ),
        ("future_date", "in the future", parsed > pl.lit(today)),
        (
            "after_event",
            "later than the event date",
            (parsed <= pl.lit(today)) & (parsed > event),
        ),
        (
            "implausible_age",
            f"implies an age over {_MAX_AGE} at the event",
            (parsed <= pl.lit(today)) & (_age_in_years(parsed, reference) > _MAX_AGE),
        ),
    ]
    checks = [
        _Check(name, code, "warning", f"{name}: {text}; treated as missing", mask)
        for code, text, mask in problems
    ]
    bad = pl.any_horizontal([mask.fill_null(False) for _, _, mask in problems])
    return pl.when(bad).then(None).otherwise(parsed), checks
