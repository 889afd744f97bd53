"""Linkage routes: what an information-governance lead sees of linkage (counts only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from hub.api.deps import Authorized, authorize, get_hub
from hub.linkage import ANCHOR_KEYS, linkage_counts
from hub.linkage import LEVELS as KEY_LEVELS
from hub.services import Hub
from policies.engine import PARTNERSHIP
from privacy.linkage.cascade import DEFAULT_KEYS

router = APIRouter(prefix="/v1/agreements", tags=["linkage"])
HubDep = Annotated[Hub, Depends(get_hub)]
ReadAuth = Annotated[Authorized, Depends(authorize("linkage.read"))]
LEVELS = sorted(set(KEY_LEVELS.values()))
# the keys the hub links on (two cascade keys exist but are not trusted: docs/linkage.md)
_IN_USE = {*DEFAULT_KEYS, *ANCHOR_KEYS.values()}


@router.get("/{agreement_id}/linkage")
def agreement_linkage(agreement_id: str, hub: HubDep, auth: ReadAuth) -> dict[str, Any]:
    """For each dataset of the agreement: how many stored records were linked to another
    record at each level (1-4: the match key that first linked them; 6: a keyed anchor that
    attached a record without a name, e.g. from A&E), how many remain unlinked, and how many
    are still waiting for the linker. Counts only.

    The partnership's IG lead sees every dataset; a party's IG lead sees only the datasets
    its own organisation provides. Exact counts of another agency's dataset would tell a
    party whether a person it uploaded (say, a crafted record) is known to that agency: its
    unlinked count would drop by one."""
    agreement = hub.agreements.get(agreement_id)
    organisation = auth.subject.organisation
    with hub.engine.connect() as connection:
        counts = linkage_counts(connection, agreement_id)
    datasets = []
    for dataset in agreement.datasets:
        if organisation != PARTNERSHIP and dataset.provider != organisation:
            continue
        found = counts.get(dataset.name, {})
        by_level = {str(level): found.get(f"level_{level}", 0) for level in LEVELS}
        datasets.append(
            {
                "dataset": dataset.name,
                "records": sum(found.values()),
                "linked_by_level": by_level,
                "unlinked": found.get("unlinked", 0),
                "pending": found.get("pending", 0),
            }
        )
    return {
        "agreement_id": agreement_id,
        "linkage_domain": agreement.linkage_domain,
        "levels": {
            str(level): [key for key, at in KEY_LEVELS.items() if at == level and key in _IN_USE]
            for level in LEVELS
        },
        "datasets": datasets,
    }
