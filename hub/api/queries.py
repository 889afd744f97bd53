"""Query routes: differentially-private releases, previews and budgets (issue 5).

The door (``authorize``) reads the query from the body to decide on it; the handlers run it
through ``hub.queries``. Nothing else leaves the hub.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from hub.api.deps import Authorized, Forbidden, authorize, get_hub
from hub.queries import QueryService, parse_request, preview
from hub.services import Hub

router = APIRouter(prefix="/v1", tags=["queries"])
HubDep = Annotated[Hub, Depends(get_hub)]
QueryBody = Annotated[
    dict[str, Any],
    Body(
        description="A query (privacy.dp.budget.Query) plus the purpose it serves, e.g. "
        '{"purpose": "serious-violence-needs-assessment", "agreement_id": '
        '"london-vru-partnership", "dataset": "police_violence_offences", "measure": '
        '"count_persons", "group_by": ["borough", "month"], "epsilon": 0.5}'
    ),
]


def _active(hub: Hub, agreement_id: str) -> Any:
    status = hub.agreements.status(agreement_id)
    if status != "active":
        raise Forbidden(
            "agreement_not_active",
            f"Agreement {agreement_id} is {status}: no query runs under it.",
        )
    return hub.agreements.get(agreement_id)


@router.post("/queries")
def run_query(
    body: QueryBody, hub: HubDep, auth: Annotated[Authorized, Depends(authorize("query.run"))]
) -> dict[str, Any]:
    """Run a query and return its release: every cell of the public key set with its noisy
    value and 95% interval, and the guarantee (epsilon, mechanism, unit of privacy, bound).
    The budget is spent before the release is returned; the same query again returns the
    stored release and spends nothing."""
    _purpose, query = parse_request(body)
    agreement = _active(hub, query.agreement_id)
    return QueryService(hub.engine).run(
        query, agreement, organisation=auth.subject.organisation, actor=auth.audit_actor
    )


@router.post("/queries/preview")
def preview_query(
    body: QueryBody,
    hub: HubDep,
    _auth: Annotated[Authorized, Depends(authorize("query.preview"))],
) -> dict[str, Any]:
    """The accuracy a query would have at its epsilon, or the epsilon its target accuracy
    needs, at each contribution bound. Reads no data; spends nothing."""
    _purpose, query = parse_request(body)
    agreement = _active(hub, query.agreement_id)
    return preview(query, agreement, date.today())


@router.get("/budgets")
def budgets(
    hub: HubDep, auth: Annotated[Authorized, Depends(authorize("budget.read"))]
) -> list[dict[str, Any]]:
    """Epsilon spent and left this period by the caller's organisation, per agreement that
    names it as a recipient."""
    organisation = auth.subject.organisation
    service = QueryService(hub.engine)
    today = date.today()
    out = []
    for summary in hub.agreements.list():
        if not any(
            p["id"] == organisation and "recipient" in p["roles"] for p in summary["parties"]
        ):
            continue
        agreement = hub.agreements.get(summary["id"])
        row = service.budget(organisation, agreement, today).describe()
        out.append({**row, "agreement_status": summary["status"]})
    return out
