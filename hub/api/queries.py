"""Query routes: differentially-private releases, previews and budgets (issue 5).

The door (``authorize``) reads the query from the body to decide on it; the handlers run it
through ``hub.queries``. Nothing else leaves the hub.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from hub.api.deps import Authorized, Forbidden, authorize, get_hub
from hub.queries import QueryService, parse_request, preview
from hub.services import Hub
from privacy.dp.budget import Query

router = APIRouter(prefix="/v1", tags=["queries"])
HubDep = Annotated[Hub, Depends(get_hub)]
# The body is read raw by the door (``authorize``), which decides on it and audits the decision
# even when it is not JSON; the routes parse the same bytes. So no FastAPI body parameter: it
# would refuse a malformed body before the door saw it. The schema is documented here instead.
QUERY_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "example": {
                    "purpose": "serious-violence-needs-assessment",
                    "agreement_id": "london-vru-partnership",
                    "dataset": "police_violence_offences",
                    "measure": "count_persons",
                    "group_by": ["borough", "month"],
                    "epsilon": 0.5,
                },
            }
        },
        "description": "A query (privacy.dp.budget.Query) plus the purpose it serves.",
    }
}


def _query_of(auth: Authorized) -> Query:
    _purpose, query = parse_request(auth.body or b"")
    return query


def _active(hub: Hub, agreement_id: str) -> Any:
    status = hub.agreements.status(agreement_id)
    if status != "active":
        raise Forbidden(
            "agreement_not_active",
            f"Agreement {agreement_id} is {status}: no query runs under it.",
        )
    return hub.agreements.get(agreement_id)


@router.post("/queries", openapi_extra=QUERY_BODY_DOC)
def run_query(
    hub: HubDep, auth: Annotated[Authorized, Depends(authorize("query.run"))]
) -> dict[str, Any]:
    """Run a query and return its release: every cell of the public key set with its noisy
    value and 95% interval, and the guarantee (epsilon, mechanism, unit of privacy, bound).
    The budget is spent before the release is returned; the same query again returns the
    stored release and spends nothing."""
    query = _query_of(auth)
    agreement = _active(hub, query.agreement_id)
    return QueryService(hub.engine).run(
        query, agreement, organisation=auth.subject.organisation, actor=auth.audit_actor
    )


@router.post("/queries/preview", openapi_extra=QUERY_BODY_DOC)
def preview_query(
    hub: HubDep, auth: Annotated[Authorized, Depends(authorize("query.preview"))]
) -> dict[str, Any]:
    """The accuracy a query would have at its epsilon, or the epsilon its target accuracy
    needs, at each contribution bound. Reads no data; spends nothing."""
    query = _query_of(auth)
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
