"""Who may do what: rules as data (``rules.yaml``) and a deny-by-default decision engine."""

from policies.engine import (
    PARTNERSHIP,
    ROLES,
    AgreementFacts,
    Decision,
    Resource,
    Subject,
    actions,
    decide,
    load_policy,
    scopes_for_role,
)

__all__ = [
    "PARTNERSHIP",
    "ROLES",
    "AgreementFacts",
    "Decision",
    "Resource",
    "Subject",
    "actions",
    "decide",
    "load_policy",
    "scopes_for_role",
]
