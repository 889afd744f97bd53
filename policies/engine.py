"""The policy decision engine: ``decide(subject, action, resource, context) -> Decision``.

The rules are data (``rules.yaml`` beside this module). This module only evaluates them:
deny by default, allow when one rule for the subject's role has every condition true and the
subject's token carries the action's scope. Every decision carries a reason in plain words,
which the hub records in its audit trail. This package never imports ``hub``: the hub turns
its rows into the plain facts below.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

RULES_FILE = Path(__file__).with_name("rules.yaml")
PARTNERSHIP = "partnership"
ROLES = ("data_officer", "analyst", "ig_lead", "hub_admin")


@dataclass(frozen=True)
class Subject:
    """Who is asking: a client (or an external user) with one role in one organisation."""

    id: str
    role: str
    organisation: str
    scopes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AgreementFacts:
    """What the engine needs to know about one agreement, as of now."""

    id: str
    status: str  # active | suspended | expired | draft | pending | ...
    parties: frozenset[str] = frozenset()
    recipients: frozenset[str] = frozenset()
    controllers: frozenset[str] = frozenset()
    providers: Mapping[str, str] = field(default_factory=dict)  # dataset -> providing party
    purposes: frozenset[str] = frozenset()
    dimensions: frozenset[str] = frozenset()
    epsilon_per_query: float | None = None


@dataclass(frozen=True)
class Resource:
    kind: str  # agreement | dataset | upload | audit | client | key | ...
    id: str | None = None
    agreement: AgreementFacts | None = None
    dataset: str | None = None
    organisation: str | None = None  # the organisation the resource belongs to, if any

    def describe(self) -> str:
        if self.agreement and self.dataset and self.kind == "dataset":
            return f"agreements/{self.agreement.id}/datasets/{self.dataset}"
        if self.kind == "agreement" and self.agreement:
            return f"agreements/{self.agreement.id}"
        return f"{self.kind}s/{self.id}" if self.id else f"{self.kind}s"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class Condition:
    """A named test; ``holds`` returns (true?, what was found, in words)."""

    description: str
    holds: Callable[[Subject, Resource, Mapping[str, Any]], tuple[bool, str]]


def _agreement_active(s: Subject, r: Resource, c: Mapping[str, Any]) -> tuple[bool, str]:
    if r.agreement is None:
        return False, "no agreement was named"
    ok = r.agreement.status == "active"
    return ok, f"agreement {r.agreement.id} is {r.agreement.status}"


def _dataset_in_agreement(s: Subject, r: Resource, c: Mapping[str, Any]) -> tuple[bool, str]:
    if r.agreement is None or r.dataset is None:
        return False, "no agreement and dataset were named"
    ok = r.dataset in r.agreement.providers
    verb = "covers" if ok else "does not cover"
    return ok, f"agreement {r.agreement.id} {verb} dataset {r.dataset}"


def _provides_dataset(s: Subject, r: Resource, c: Mapping[str, Any]) -> tuple[bool, str]:
    provider = r.organisation
    if r.agreement is not None and r.dataset is not None:
        provider = r.agreement.providers.get(r.dataset, provider)
    if provider is None:
        return False, "the resource has no providing organisation"
    ok = provider == s.organisation
    where = f" under {r.agreement.id}" if r.agreement else ""
    return ok, f"{r.dataset or 'the dataset'} is provided by {provider}{where}"


def _party_to_agreement(s: Subject, r: Resource, c: Mapping[str, Any]) -> tuple[bool, str]:
    if r.agreement is None:
        return False, "no agreement was named"
    ok = s.organisation in r.agreement.parties
    return ok, f"{s.organisation} is {'' if ok else 'not '}a party to {r.agreement.id}"


def _recipient(s: Subject, r: Resource, c: Mapping[str, Any]) -> tuple[bool, str]:
    if r.agreement is None:
        return False, "no agreement was named"
    ok = s.organisation in r.agreement.recipients
    return ok, f"{s.organisation} is {'' if ok else 'not '}a recipient under {r.agreement.id}"


def _controller(s: Subject, r: Resource, c: Mapping[str, Any]) -> tuple[bool, str]:
    if r.agreement is None:
        return False, "no agreement was named"
    ok = s.organisation in r.agreement.controllers
    return ok, f"{s.organisation} is {'' if ok else 'not '}a controller of {r.agreement.id}"


def _partnership_wide(s: Subject, r: Resource, c: Mapping[str, Any]) -> tuple[bool, str]:
    ok = s.organisation == PARTNERSHIP
    return ok, f"{s.organisation} is {'' if ok else 'not '}the whole partnership"


def _own_organisation(s: Subject, r: Resource, c: Mapping[str, Any]) -> tuple[bool, str]:
    ok = r.organisation is not None and r.organisation == s.organisation
    return ok, f"the resource belongs to {r.organisation or 'no organisation'}"


def _purpose(s: Subject, r: Resource, c: Mapping[str, Any]) -> tuple[bool, str]:
    purpose = c.get("purpose")
    if r.agreement is None or not purpose:
        return False, "no purpose was given"
    ok = purpose in r.agreement.purposes
    return ok, f"purpose {purpose} is {'' if ok else 'not '}a purpose of {r.agreement.id}"


def _dimensions(s: Subject, r: Resource, c: Mapping[str, Any]) -> tuple[bool, str]:
    if r.agreement is None:
        return False, "no agreement was named"
    asked = set(c.get("dimensions") or ())
    extra = sorted(asked - r.agreement.dimensions)
    if extra:
        return False, f"dimensions {', '.join(extra)} are not permitted by {r.agreement.id}"
    return True, f"every dimension is permitted by {r.agreement.id}"


def _budget(s: Subject, r: Resource, c: Mapping[str, Any]) -> tuple[bool, str]:
    if r.agreement is None or r.agreement.epsilon_per_query is None:
        return False, "the agreement sets no query budget"
    epsilon = c.get("epsilon")
    if not isinstance(epsilon, int | float) or epsilon <= 0:
        return False, "no positive epsilon was given"
    cap = r.agreement.epsilon_per_query
    ok = epsilon <= cap
    half_width = c.get("target_half_width")
    if half_width is not None and not ok:
        # the caller asked for an accuracy, not an epsilon: answer in its terms
        needs = (
            "cannot be reached at any epsilon"
            if math.isinf(epsilon)
            else (f"needs epsilon {epsilon:.3g} even at the smallest contribution bound")
        )
        return False, (
            f"a 95% half-width of {half_width:g} {needs}, above the {cap} per query: ask for "
            "a wider half-width (POST /v1/queries/preview shows the half-width each epsilon "
            "gives)"
        )
    hint = "" if ok else f" (ask for at most {cap}, or give a wider target_half_width)"
    return ok, f"epsilon {epsilon} against {cap} per query{hint}"


CONDITIONS: dict[str, Condition] = {
    "agreement_active": Condition("the agreement is active today", _agreement_active),
    "dataset_in_agreement": Condition("the agreement covers the dataset", _dataset_in_agreement),
    "provides_dataset": Condition(
        "the subject's organisation provides the dataset under the agreement", _provides_dataset
    ),
    "party_to_agreement": Condition(
        "the subject's organisation is a party to the agreement", _party_to_agreement
    ),
    "recipient_of_agreement": Condition(
        "the subject's organisation is a recipient under the agreement", _recipient
    ),
    "controller_of_agreement": Condition(
        "the subject's organisation is a controller of the agreement", _controller
    ),
    "partnership_wide": Condition(
        'the subject acts for the whole partnership (organisation "partnership")',
        _partnership_wide,
    ),
    "own_organisation": Condition(
        "the resource belongs to the subject's organisation", _own_organisation
    ),
    "purpose_in_agreement": Condition(
        "the query's purpose is one of the agreement's purposes", _purpose
    ),
    "dimensions_in_agreement": Condition(
        "the query uses only dimensions the agreement permits", _dimensions
    ),
    "within_query_budget": Condition(
        "the query's epsilon is within the agreement's per-query budget", _budget
    ),
}


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str]
    when: tuple[str, ...]


@dataclass(frozen=True)
class ActionPolicy:
    name: str
    description: str
    scope: str | None
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Policy:
    role_scopes: Mapping[str, frozenset[str]]
    actions: Mapping[str, ActionPolicy]

    def decide(
        self,
        subject: Subject,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        context = context or {}
        who = f"{subject.role} of {subject.organisation}"
        what = f"{action} on {resource.describe()}"
        policy = self.actions.get(action)
        if policy is None:
            return Decision(False, f"denied: no rule defines {action!r} (deny by default)")
        if subject.role not in self.role_scopes:
            return Decision(False, f"denied: {subject.role!r} is not a role this hub knows")
        if policy.scope is not None and policy.scope not in subject.scopes:
            return Decision(
                False, f"denied: {who} may not {what}: the token lacks scope {policy.scope}"
            )
        failures: list[str] = []
        for rule in policy.rules:
            if subject.role not in rule.roles:
                continue
            found: list[str] = []
            failed: str | None = None
            for name in rule.when:
                ok, detail = CONDITIONS[name].holds(subject, resource, context)
                if not ok:
                    failed = detail
                    break
                found.append(detail)
            if failed is None:
                because = f": {'; '.join(found)}" if found else ""
                return Decision(True, f"allowed: {who} may {what}{because}")
            failures.append(failed)
        if not failures:
            return Decision(False, f"denied: the {subject.role} role may not {action}")
        return Decision(False, f"denied: {who} may not {what}: {'; '.join(failures)}")


def _parse(document: Any) -> Policy:
    if not isinstance(document, dict):
        raise ValueError(f"{RULES_FILE}: expected a mapping with 'roles' and 'actions'")
    role_scopes = {
        name: frozenset(spec.get("scopes") or ()) for name, spec in document["roles"].items()
    }
    actions: dict[str, ActionPolicy] = {}
    for name, spec in document["actions"].items():
        rules = []
        for entry in spec.get("allow") or ():
            unknown_roles = set(entry["roles"]) - set(role_scopes)
            unknown_conditions = set(entry.get("when") or ()) - set(CONDITIONS)
            if unknown_roles or unknown_conditions:
                raise ValueError(
                    f"{RULES_FILE}: action {name} names unknown roles {sorted(unknown_roles)} "
                    f"or conditions {sorted(unknown_conditions)}"
                )
            rules.append(Rule(frozenset(entry["roles"]), tuple(entry.get("when") or ())))
        actions[name] = ActionPolicy(
            name, spec.get("description", ""), spec.get("scope"), tuple(rules)
        )
    return Policy(role_scopes, actions)


@cache
def load_policy(path: Path = RULES_FILE) -> Policy:
    return _parse(yaml.safe_load(path.read_text(encoding="utf-8")))


def decide(
    subject: Subject,
    action: str,
    resource: Resource,
    context: Mapping[str, Any] | None = None,
) -> Decision:
    """Allow or deny ``action`` by ``subject`` on ``resource``, with the reason."""
    return load_policy().decide(subject, action, resource, context)


def scopes_for_role(role: str) -> frozenset[str]:
    return load_policy().role_scopes.get(role, frozenset())


def actions() -> list[str]:
    return sorted(load_policy().actions)
