"""The machine-readable data-sharing agreement.

An agreement is the hub's only source of permission: which parties share which fields, for which
purposes, under which lawful basis, how identifiers are handled and what may be released. The
models are strict (no silent coercion of ``"1"`` to ``1``) and forbid unknown keys, so a misspelt
key in a YAML file is an error rather than a silently ignored permission.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{2,63}$"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
# ICO data protection register numbers are eight characters: "Z" followed by seven digits for
# older registrations (e.g. Z1234567) or "Z" + a letter + six digits for newer ones (ZA123456).
ICO_REGISTRATION_PATTERN = r"^Z[A-Z0-9]\d{6}$"
DPV_TERM_PATTERN = r"^dpv:[A-Z][A-Za-z0-9]+$"
SCHEDULE_1_PATTERN = r"^Sch1 Pt[1-3] para \d{1,2}[A-Z]?( .+)?$"
BASE64_PATTERN = r"^[A-Za-z0-9+/]+={0,2}$"

Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
FieldName = Annotated[str, Field(pattern=NAME_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
# Dates come as YAML dates or ISO strings (JSON); accept both, but nothing else.
IsoDate = Annotated[date, Strict(False)]
IsoDateTime = Annotated[datetime, Strict(False)]

Status = Literal["draft", "active", "suspended", "expired"]
EffectiveStatus = Literal["draft", "active", "suspended", "expired", "pending"]
Role = Literal["provider", "recipient", "controller"]
Classification = Literal["direct_identifier", "quasi_identifier", "attribute"]
Generalisation = Literal[
    "keep", "age_band_at_event", "postcode_district", "month", "year", "date", "drop"
]
GENERALISATIONS: tuple[str, ...] = (
    "keep", "age_band_at_event", "postcode_district", "month", "year", "date", "drop"
)
Art6Basis = Literal["6(1)(a)", "6(1)(b)", "6(1)(c)", "6(1)(d)", "6(1)(e)", "6(1)(f)"]
Art9Condition = Literal[
    "9(2)(a)", "9(2)(b)", "9(2)(c)", "9(2)(d)", "9(2)(e)",
    "9(2)(f)", "9(2)(g)", "9(2)(h)", "9(2)(i)", "9(2)(j)",
]
# Under DPA 2018 s10(2)-(3) these Art 9 conditions only apply with a Schedule 1 condition.
ART9_NEEDING_SCHEDULE_1: frozenset[str] = frozenset(
    {"9(2)(b)", "9(2)(g)", "9(2)(h)", "9(2)(i)", "9(2)(j)"}
)
Measure = Literal["count_records", "count_persons", "sum", "mean", "quantile"]
Period = Literal["month", "quarter", "year"]

_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_GSS_BOROUGH = re.compile(r"^E090000(0[1-9]|[12][0-9]|3[0-3])$")


class LocatedError(ValueError):
    """A validation problem that belongs to a field below the model raising it.

    Pydantic reports a model validator's error at the model's own location; carrying the
    sub-path lets the loader name the exact key (``datasets[0].fields[3].generalise``).
    """

    def __init__(self, path: tuple[str | int, ...], reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass(frozen=True)
class Retention:
    """A parsed ISO 8601 retention period."""

    years: int
    months: int
    days: int

    def end_after(self, start: date) -> date:
        """The last day data received on ``start`` may be kept."""
        month_index = start.month - 1 + self.months + 12 * self.years
        year, month = start.year + month_index // 12, month_index % 12 + 1
        day = min(start.day, _days_in_month(year, month))
        return date(year, month, day) + timedelta(days=self.days)

    @property
    def approx_days(self) -> int:
        return self.years * 365 + self.months * 30 + self.days


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - date(year, month, 1)).days


def parse_retention(text: str) -> Retention:
    """Parse ``P7Y``, ``P24M``, ``P2Y6M``, ``P90D`` or ``P4W``; raise ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None or text == "P":
        raise ValueError(
            f"{text!r} is not an ISO 8601 duration; write e.g. P7Y, P24M, P2Y6M or P90D"
        )
    years, months, weeks, days = (int(g) if g else 0 for g in match.groups())
    retention = Retention(years, months, days + 7 * weeks)
    if retention.approx_days == 0:
        raise ValueError("retention must be longer than zero days")
    return retention


class Party(_Strict):
    id: Slug
    name: Text
    roles: list[Role] = Field(min_length=1)
    ico_registration: Annotated[str, Field(pattern=ICO_REGISTRATION_PATTERN)]

    @field_validator("roles")
    @classmethod
    def _unique_roles(cls, roles: list[str]) -> list[str]:
        if len(set(roles)) != len(roles):
            raise ValueError("a role is listed twice")
        return roles

    def has_role(self, role: Role) -> bool:
        return role in self.roles


class Purpose(_Strict):
    id: Slug
    description: Text
    dpv: Annotated[str, Field(pattern=DPV_TERM_PATTERN)]


class LawfulBasis(_Strict):
    article_6: Art6Basis
    article_9: Art9Condition | None = None
    article_10: Text | None = None
    dpa2018_schedule_1: list[Annotated[str, Field(pattern=SCHEDULE_1_PATTERN)]] = Field(
        default_factory=list
    )
    statutory_gateways: list[Text] = Field(default_factory=list)

    @model_validator(mode="after")
    def _schedule_1_where_needed(self) -> LawfulBasis:
        if self.article_9 in ART9_NEEDING_SCHEDULE_1 and not self.dpa2018_schedule_1:
            raise LocatedError(
                ("dpa2018_schedule_1",),
                f"Art {self.article_9} needs a DPA 2018 Schedule 1 condition (s10); "
                "add e.g. 'Sch1 Pt2 para 6 statutory and government purposes'",
            )
        if self.article_10 is not None and not self.dpa2018_schedule_1:
            raise LocatedError(
                ("dpa2018_schedule_1",),
                "an Art 10 condition needs a DPA 2018 Schedule 1 condition (s10(5)); add e.g. "
                "'Sch1 Pt2 para 10 preventing or detecting unlawful acts'",
            )
        return self


class FieldTerms(_Strict):
    name: FieldName
    classification: Classification
    linkage: bool = False
    generalise: Generalisation | None = None
    special_category: bool = False

    @model_validator(mode="after")
    def _handling_fits_classification(self) -> FieldTerms:
        if self.classification == "quasi_identifier" and self.generalise is None:
            raise LocatedError(
                ("generalise",),
                "required for a quasi-identifier; choose one of " + ", ".join(GENERALISATIONS),
            )
        if self.classification != "quasi_identifier" and self.generalise is not None:
            what = (
                "a direct identifier is always dropped after linkage"
                if self.classification == "direct_identifier"
                else "attributes are stored as they are"
            )
            raise LocatedError(
                ("generalise",),
                f"only allowed for a quasi-identifier ({what}); remove it, or classify the "
                "field as quasi_identifier",
            )
        if self.linkage and self.classification == "attribute":
            raise LocatedError(
                ("linkage",),
                "only identifier or quasi-identifier fields can be used for linkage",
            )
        return self

    @property
    def stored(self) -> bool:
        """Whether the field's (generalised) value is kept in the hub's store."""
        if self.classification == "direct_identifier":
            return False
        return self.generalise != "drop"


class DatasetTerms(_Strict):
    name: FieldName
    provider: Slug
    criminal_offence_data: bool = False
    fields: list[FieldTerms] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _unique_field_names(cls, fields: list[FieldTerms]) -> list[FieldTerms]:
        seen: set[str] = set()
        for index, field in enumerate(fields):
            if field.name in seen:
                raise LocatedError(
                    (index, "name"), f"field {field.name!r} is listed twice in this dataset"
                )
            seen.add(field.name)
        return fields

    def field(self, name: str) -> FieldTerms:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(f"dataset {self.name!r} has no field {name!r}")

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def linkage_fields(self) -> list[str]:
        return [f.name for f in self.fields if f.linkage]

    @property
    def has_special_category(self) -> bool:
        return any(f.special_category for f in self.fields)


class NumericAttribute(_Strict):
    dataset: FieldName
    field: FieldName
    lower: float
    upper: float

    @model_validator(mode="after")
    def _ordered(self) -> NumericAttribute:
        if not self.lower < self.upper:
            raise LocatedError(("upper",), "must be greater than lower")
        return self


class Dimension(_Strict):
    name: FieldName
    values: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(min_length=1)

    @field_validator("values")
    @classmethod
    def _unique_values(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("a value is listed twice")
        return values


class Budget(_Strict):
    epsilon_per_query: float = Field(gt=0)
    epsilon_per_period: float = Field(gt=0)
    period: Period
    delta: float = Field(default=0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _period_covers_query(self) -> Budget:
        if self.epsilon_per_period < self.epsilon_per_query:
            raise LocatedError(
                ("epsilon_per_period",),
                "must be at least epsilon_per_query, or no query could ever be answered",
            )
        return self


class OutputTerms(_Strict):
    measures: list[Measure] = Field(min_length=1)
    numeric_attributes: list[NumericAttribute] = Field(default_factory=list)
    dimensions: list[Dimension] = Field(default_factory=list)
    budget: Budget
    rounding_base: int = Field(ge=1)
    suppression_threshold: int = Field(ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> OutputTerms:
        if len(set(self.measures)) != len(self.measures):
            raise LocatedError(("measures",), "a measure is listed twice")
        numeric = {"sum", "mean", "quantile"} & set(self.measures)
        if numeric and not self.numeric_attributes:
            raise LocatedError(
                ("numeric_attributes",),
                f"measures {', '.join(sorted(numeric))} need at least one numeric attribute "
                "with clamping bounds",
            )
        names = [d.name for d in self.dimensions]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise LocatedError(("dimensions", index, "name"), f"dimension {name!r} twice")
        return self


class Signature(_Strict):
    signer: Slug
    key_id: Annotated[str, Field(min_length=1, max_length=200)]
    algorithm: Literal["Ed25519"] = "Ed25519"
    signed_at: IsoDateTime
    signature: Annotated[str, Field(pattern=BASE64_PATTERN)]


class Agreement(_Strict):
    id: Slug
    version: int = Field(ge=1)
    status: Status
    title: Text
    description: Text | None = None
    parties: list[Party] = Field(min_length=2)
    purposes: list[Purpose] = Field(min_length=1)
    lawful_basis: LawfulBasis
    valid_from: IsoDate
    valid_until: IsoDate
    review_date: IsoDate
    linkage_domain: Slug
    retention: str
    datasets: list[DatasetTerms] = Field(min_length=1)
    outputs: OutputTerms
    signatures: list[Signature] = Field(default_factory=list)

    @field_validator("retention", mode="before")
    @classmethod
    def _retention(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = f"P{value}D"  # a bare number of days
        if isinstance(value, str):
            parse_retention(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Agreement:
        self._check_parties()
        self._check_dates()
        self._check_purposes()
        self._check_datasets()
        self._check_outputs()
        for index, signature in enumerate(self.signatures):
            if signature.signer not in self._party_ids():
                raise LocatedError(
                    ("signatures", index, "signer"),
                    f"{signature.signer!r} is not a party to this agreement",
                )
        return self

    # -- validation helpers -------------------------------------------------------------------

    def _party_ids(self) -> list[str]:
        return [p.id for p in self.parties]

    def _check_parties(self) -> None:
        ids = self._party_ids()
        for index, party_id in enumerate(ids):
            if party_id in ids[:index]:
                raise LocatedError(("parties", index, "id"), f"party {party_id!r} listed twice")
        if not any(p.has_role("controller") for p in self.parties):
            raise LocatedError(("parties",), "at least one party must have the controller role")
        if not any(p.has_role("recipient") for p in self.parties):
            raise LocatedError(("parties",), "at least one party must have the recipient role")

    def _check_dates(self) -> None:
        if not self.valid_from < self.valid_until:
            raise LocatedError(("valid_until",), "must be after valid_from")
        if not self.valid_from <= self.review_date <= self.valid_until:
            raise LocatedError(
                ("review_date",), "must fall between valid_from and valid_until (inclusive)"
            )

    def _check_purposes(self) -> None:
        ids = [p.id for p in self.purposes]
        for index, purpose_id in enumerate(ids):
            if purpose_id in ids[:index]:
                raise LocatedError(
                    ("purposes", index, "id"), f"purpose {purpose_id!r} listed twice"
                )

    def _check_datasets(self) -> None:
        names = [d.name for d in self.datasets]
        for index, dataset in enumerate(self.datasets):
            if dataset.name in names[:index]:
                raise LocatedError(
                    ("datasets", index, "name"), f"dataset {dataset.name!r} listed twice"
                )
            parties = {p.id: p for p in self.parties}
            provider = parties.get(dataset.provider)
            if provider is None:
                raise LocatedError(
                    ("datasets", index, "provider"),
                    f"{dataset.provider!r} is not a party to this agreement; "
                    f"parties are {', '.join(parties)}",
                )
            if not provider.has_role("provider"):
                raise LocatedError(
                    ("datasets", index, "provider"),
                    f"party {provider.id!r} does not have the provider role; add 'provider' to "
                    "its roles or name another party",
                )
            for f_index, field in enumerate(dataset.fields):
                if field.special_category and self.lawful_basis.article_9 is None:
                    raise LocatedError(
                        ("datasets", index, "fields", f_index, "special_category"),
                        "special category data needs an Art 9 condition; set "
                        "lawful_basis.article_9 (usually 9(2)(g) with a Schedule 1 condition)",
                    )
            if dataset.criminal_offence_data and self.lawful_basis.article_10 is None:
                raise LocatedError(
                    ("datasets", index, "criminal_offence_data"),
                    "criminal offence data needs an Art 10 condition; set "
                    "lawful_basis.article_10",
                )

    def _check_outputs(self) -> None:
        for index, numeric in enumerate(self.outputs.numeric_attributes):
            path: tuple[str | int, ...] = ("outputs", "numeric_attributes", index)
            try:
                field = self.dataset(numeric.dataset).field(numeric.field)
            except KeyError as exc:
                raise LocatedError(path, str(exc.args[0])) from None
            if not field.stored or field.classification == "direct_identifier":
                raise LocatedError(
                    (*path, "field"), f"{numeric.field!r} is not stored, so it cannot be summed"
                )
        for index, dimension in enumerate(self.outputs.dimensions):
            for v_index, value in enumerate(dimension.values):
                problem = self._dimension_value_problem(dimension.name, value)
                if problem:
                    raise LocatedError(
                        ("outputs", "dimensions", index, "values", v_index), problem
                    )

    def _dimension_value_problem(self, dimension: str, value: str) -> str | None:
        if dimension == "borough" and not _GSS_BOROUGH.match(value):
            return f"{value!r} is not a London borough GSS code (E09000001 to E09000033)"
        if dimension == "month":
            match = _MONTH.match(value)
            if match is None:
                return f"{value!r} is not a month; write YYYY-MM"
            year, month = int(match.group(1)), int(match.group(2))
            first, last = self.valid_from.replace(day=1), self.valid_until.replace(day=1)
            if not first <= date(year, month, 1) <= last:
                return f"month {value} is outside the agreement's validity window"
        return None

    # -- public helpers -----------------------------------------------------------------------

    def party(self, party_id: str) -> Party:
        for party in self.parties:
            if party.id == party_id:
                return party
        raise KeyError(f"agreement {self.id!r} has no party {party_id!r}")

    def dataset(self, name: str) -> DatasetTerms:
        for dataset in self.datasets:
            if dataset.name == name:
                return dataset
        raise KeyError(f"agreement {self.id!r} does not cover dataset {name!r}")

    def providers_of(self, dataset: str) -> list[Party]:
        """Parties allowed to upload ``dataset`` (empty when the dataset is not covered)."""
        return [self.party(d.provider) for d in self.datasets if d.name == dataset]

    def recipients(self) -> list[Party]:
        return [p for p in self.parties if p.has_role("recipient")]

    def controllers(self) -> list[Party]:
        return [p for p in self.parties if p.has_role("controller")]

    def parties_with_role(self, role: Role) -> list[Party]:
        return [p for p in self.parties if p.has_role(role)]

    @property
    def retention_period(self) -> Retention:
        return parse_retention(self.retention)

    def effective_status(self, today: date) -> EffectiveStatus:
        """The status that governs ``today``.

        ``expired`` once past ``valid_until`` whatever the stated status; ``pending`` for an
        active agreement that has not started yet; otherwise the stated status.
        """
        if today > self.valid_until or self.status == "expired":
            return "expired"
        if self.status == "active" and today < self.valid_from:
            return "pending"
        return self.status

    def is_active(self, today: date) -> bool:
        return self.effective_status(today) == "active"

    def covers(self, dataset: str, fields: Sequence[str]) -> bool:
        """Whether every name in ``fields`` is a listed field of ``dataset``."""
        try:
            terms = self.dataset(dataset)
        except KeyError:
            return False
        return set(fields) <= set(terms.field_names)
