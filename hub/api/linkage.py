"""Linkage routes: what an information-governance lead sees of linkage (counts only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from hub.api.deps import Authorized, authorize, get_hub
from hub.linkage import ANCHOR_KEYS, BLOOM_KEYS, linkage_counts
from hub.linkage import LEVELS as KEY_LEVELS
from hub.services import Hub
from policies.engine import PARTNERSHIP
from privacy.linkage.cascade import DEFAULT_KEYS

router = APIRouter(prefix="/v1/agreements", tags=["linkage"])
HubDep = Annotated[Hub, Depends(get_hub)]
ReadAuth = Annotated[Authorized, Depends(authorize("linkage.read"))]
LEVELS = sorted(set(KEY_LEVELS.values()))
# the keys the hub links on (two cascade keys exist but are not trusted: docs/linkage.md)
_IN_USE = {*DEFAULT_KEYS, *BLOOM_KEYS, *ANCHOR_KEYS.values()}


@router.get("/{agreement_id}/linkage")
def agreement_linkage(agreement_id: str, hub: HubDep, auth: ReadAuth) -> dict[str, Any]:
    """For each dataset of the agreement: how many stored records were linked to another
    record at each level (1-4: the match key that first linked them; 5: a keyed Bloom-filter
    comparison of names that joined a misspelt name; 6: a keyed anchor that attached a record
    without a name, e.g. from A&E), how many remain unlinked, and how many
    are still waiting for the linker. Counts only.

    The partnership's IG lead sees all of it. A party's IG lead sees, for the datasets its own
    organisation provides, only how many records are stored and how many wait for the linker:
    any exact linkage count would tell a party whether a person it uploads (say, a crafted
    record) is known to another agency, by the count that moves (``unlinked`` of another
    agency's dataset, or a level of its own)."""
    agreement = hub.agreements.get(agreement_id)
    organisation = auth.subject.organisation
    sees_linkage = organisation == PARTNERSHIP
    with hub.engine.connect() as connection:
        counts = linkage_counts(connection, agreement_id)
    datasets = []
    for dataset in agreement.datasets:
        if not sees_linkage and dataset.provider != organisation:
            continue
        found = counts.get(dataset.name, {})
        row: dict[str, Any] = {
            "dataset": dataset.name,
            "records": sum(found.values()),
            "linked_by_level": None,
            "unlinked": None,
            "pending": found.get("pending", 0),
        }
        if sees_linkage:
            row["linked_by_level"] = {
                str(level): found.get(f"level_{level}", 0) for level in LEVELS
            }
            row["unlinked"] = found.get("unlinked", 0)
        datasets.append(row)
    return {
        "agreement_id": agreement_id,
        "linkage_domain": agreement.linkage_domain,
        "levels": {
            str(level): [key for key, at in KEY_LEVELS.items() if at == level and key in _IN_USE]
            for level in LEVELS
        },
        "datasets": datasets,
        "linkage_visible": sees_linkage,
    }
