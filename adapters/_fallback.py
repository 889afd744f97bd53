"""Stand-ins for ``privacy.normalise`` parsers, used only while that module is being written.

TODO(adapters): switch to ``privacy.normalise.date_expr`` / ``datetime_expr`` once it exists
(see ``adapters/validate.py``, which prefers it when importable). Kept deliberately small: the
date formats agencies actually export, as vectorised polars expressions.
"""

from __future__ import annotations

import polars as pl

_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%Y%m%d")
_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
)
# a trailing time, fractional seconds and zone, removed before parsing a plain date
_TIME_SUFFIX = r"[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"
_FRACTION_AND_ZONE = r"(:\d{2})\.\d+|Z$|[+-]\d{2}:?\d{2}$"


def date_expr(expr: pl.Expr) -> pl.Expr:
    """Text → Date; null where no accepted format matches."""
    text = expr.str.strip_chars().str.replace(_TIME_SUFFIX, "")
    return pl.coalesce([text.str.to_date(fmt, strict=False) for fmt in _DATE_FORMATS])


def datetime_expr(expr: pl.Expr) -> pl.Expr:
    """Text → naive Datetime(us); a plain date means midnight; null where nothing matches."""
    text = expr.str.strip_chars().str.replace_all(_FRACTION_AND_ZONE, "$1")
    parsed = [text.str.to_datetime(fmt, strict=False, time_unit="us") for fmt in _DATETIME_FORMATS]
    return pl.coalesce([*parsed, date_expr(text).cast(pl.Datetime("us"))])


def _compact(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_uppercase().str.replace_all(r"[\s\-]", "")


def nhs_number_valid_expr(expr: pl.Expr) -> pl.Expr:
    """True where the text is a 10-digit NHS number passing the modulus 11 check."""
    digits = expr.str.replace_all(r"[\s\-]", "")
    total = pl.sum_horizontal(
        digits.str.slice(i, 1).cast(pl.Int64, strict=False) * (10 - i) for i in range(9)
    )
    check = 11 - total % 11
    check = pl.when(check == 11).then(0).otherwise(check)
    repeated = [str(d) * 10 for d in range(10)]  # pass mod 11 but are never issued
    return (
        digits.str.contains(r"^\d{10}$")
        & (check != 10)
        & (check == digits.str.slice(9, 1).cast(pl.Int64, strict=False))
        & ~digits.is_in(repeated)
    ).fill_null(False)


def postcode_valid_expr(expr: pl.Expr) -> pl.Expr:
    """True where the text is a well-formed UK postcode (any spacing/case)."""
    return (
        _compact(expr)
        .str.contains(r"^(?:[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][ABD-HJLNP-UW-Z]{2}|GIR0AA)$")
        .fill_null(False)
    )


def upn_valid_expr(expr: pl.Expr) -> pl.Expr:
    """True where the text has the shape of a (permanent or temporary) UPN."""
    return _compact(expr).str.contains(r"^[A-HJ-NP-RT-Z]\d{11}[0-9A-HJ-NP-RT-Z]$").fill_null(False)


def pnc_valid_expr(expr: pl.Expr) -> pl.Expr:
    """True where the text has the shape of a PNC id (YY/NNNNNNNL or YYYY/NNNNNNNL)."""
    return (
        expr.str.to_uppercase()
        .str.replace_all(r"\s", "")
        .str.contains(r"^(?:\d{2}|\d{4})/\d{1,7}[A-Z]$")
        .fill_null(False)
    )
