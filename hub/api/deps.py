"""FastAPI dependencies shared by the routers, above all ``authorize``: the one door.

Every endpoint except the public ones (health, docs, OpenAPI, /.well-known, the token endpoint)
declares ``Depends(authorize("<action>"))``. The dependency resolves the subject from the bearer
token, applies the client's rate limit, builds the resource from the path, asks
``policies.decide`` and records the decision, allow or deny, with its reason, in the audit log.
No endpoint decides on its own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool

from agreements import Agreement
from hub.audit import Actor, AuditEvent, append_event
from hub.auth import Identity, InvalidToken, TokenClaims
from hub.auth.clients import is_live
from hub.errors import HubError, NotFound, Unprocessable
from hub.models import UploadRow
from hub.services import Hub
from policies import AgreementFacts, Decision, Resource, Subject, decide


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def get_identity(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


class Unauthenticated(HubError):
    status_code = 401

    def __init__(self, message: str, *, error: str = "invalid_token") -> None:
        super().__init__("unauthenticated", message)
        self.headers = {
            "WWW-Authenticate": f'Bearer realm="vru-hub", error="{error}"'
            if error
            else 'Bearer realm="vru-hub"'
        }


class Forbidden(HubError):
    status_code = 403


class TooManyRequests(HubError):
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "rate_limited",
            f"Too many requests from this client. Wait {retry_after} s and try again; "
            "spread batch jobs out or ask the hub's operator for a higher limit.",
        )
        self.headers = {"Retry-After": str(retry_after)}


def agreement_facts(agreement: Agreement, status: str) -> AgreementFacts:
    return AgreementFacts(
        id=agreement.id,
        status=status,
        parties=frozenset(p.id for p in agreement.parties),
        recipients=frozenset(p.id for p in agreement.recipients()),
        controllers=frozenset(p.id for p in agreement.controllers()),
        providers={d.name: d.provider for d in agreement.datasets},
        purposes=frozenset(p.id for p in agreement.purposes),
        dimensions=frozenset(d.name for d in agreement.outputs.dimensions),
        epsilon_per_query=agreement.outputs.budget.epsilon_per_query,
    )


def summary_facts(summary: Mapping[str, Any]) -> AgreementFacts:
    """Facts from a registry summary (enough for read decisions in lists)."""
    parties = summary["parties"]
    return AgreementFacts(
        id=summary["id"],
        status=summary["status"],
        parties=frozenset(p["id"] for p in parties),
        recipients=frozenset(p["id"] for p in parties if "recipient" in p["roles"]),
        controllers=frozenset(p["id"] for p in parties if "controller" in p["roles"]),
        providers={d["name"]: d["provider"] for d in summary["datasets"]},
    )


def _agreement(hub: Hub, agreement_id: str) -> AgreementFacts:
    return agreement_facts(hub.agreements.get(agreement_id), hub.agreements.status(agreement_id))


def _upload(hub: Hub, connection: Connection, upload_id: str) -> Resource:
    row = connection.execute(
        select(UploadRow.agreement_id, UploadRow.dataset).where(
            UploadRow.upload_id == upload_id, UploadRow.status != "receiving"
        )
    ).first()
    if row is None:
        raise NotFound("upload_not_found", f"There is no upload {upload_id!r}.")
    facts = _agreement(hub, row.agreement_id)
    return Resource(
        kind="upload",
        id=upload_id,
        agreement=facts,
        dataset=row.dataset,
        organisation=facts.providers.get(row.dataset),
    )


# Endpoints whose handler filters its answer by an ``organisation`` query parameter: there the
# parameter names the resource's organisation (an IG lead may read their own organisation's
# slice). Elsewhere it is ignored, so it cannot widen what a caller sees.
ORGANISATION_FILTERED_PATHS = frozenset({"/v1/audit/events"})

ResourceBuilder = Callable[[Hub, Connection, Mapping[str, str]], Resource]


def _dataset_resource(hub: Hub, _c: Connection, path: Mapping[str, str]) -> Resource:
    facts = _agreement(hub, path["agreement_id"])
    return Resource(
        kind="dataset",
        agreement=facts,
        dataset=path["dataset"],
        organisation=facts.providers.get(path["dataset"]),
    )


def _agreement_resource(hub: Hub, _c: Connection, path: Mapping[str, str]) -> Resource:
    if "agreement_id" not in path:
        return Resource(kind="agreement")
    return Resource(
        kind="agreement", id=path["agreement_id"], agreement=_agreement(hub, path["agreement_id"])
    )


RESOURCES: dict[str, ResourceBuilder] = {
    "agreement.list": _agreement_resource,
    "agreement.read": _agreement_resource,
    "agreement.register": _agreement_resource,
    "agreement.suspend": _agreement_resource,
    "upload.create": _dataset_resource,
    "upload.list": _dataset_resource,
    "upload.read": lambda hub, c, path: _upload(hub, c, path["upload_id"]),
    "upload.withdraw": lambda hub, c, path: _upload(hub, c, path["upload_id"]),
    "linkage.read": _agreement_resource,
    "keys.read": lambda hub, c, path: Resource(kind="key"),
    "audit.read": lambda hub, c, path: Resource(
        kind="audit", organisation=path.get("organisation")
    ),
    "client.list": lambda hub, c, path: Resource(kind="client"),
    "client.create": lambda hub, c, path: Resource(kind="client"),
    "client.revoke": lambda hub, c, path: Resource(kind="client", id=path.get("client_id")),
    "budget.read": lambda hub, c, path: Resource(kind="budget"),
}

# Actions whose resource is named in the JSON body (a query names its agreement and dataset):
# the builder parses the body and returns the resource and the context the rules check
# (dimensions, epsilon). The door reads the body before deciding.
BodyResourceBuilder = Callable[[Hub, bytes], tuple[Resource, Mapping[str, Any]]]


def _query_resource(
    hub: Hub, body: bytes, *, with_epsilon: bool
) -> tuple[Resource, dict[str, Any]]:
    from hub.queries import door_epsilon, parse_request, query_dimensions

    purpose, query = parse_request(body)
    agreement = hub.agreements.get(query.agreement_id)
    facts = agreement_facts(agreement, hub.agreements.status(query.agreement_id))
    context: dict[str, Any] = {"purpose": purpose, "dimensions": query_dimensions(query)}
    if with_epsilon:
        context["epsilon"] = door_epsilon(query, agreement)
        context["target_half_width"] = query.target_half_width
    return Resource(kind="dataset", agreement=facts, dataset=query.dataset), context


BODY_RESOURCES: dict[str, BodyResourceBuilder] = {
    "query.run": lambda hub, body: _query_resource(hub, body, with_epsilon=True),
    "query.preview": lambda hub, body: _query_resource(hub, body, with_epsilon=False),
}


@dataclass(frozen=True)
class Authorized:
    """The allowed subject of this request; routes use ``permits`` only to filter lists."""

    subject: Subject
    claims: TokenClaims
    decision: Decision
    request_id: str
    body: bytes | None = None
    """The raw request body the door decided on, for actions that name their resource in it:
    the route parses these same bytes, so a body FastAPI could not parse is still decided on
    and audited."""

    def permits(self, action: str, resource: Resource) -> bool:
        return decide(self.subject, action, resource).allowed

    @property
    def actor(self) -> str:
        return self.subject.id

    @property
    def audit_actor(self) -> Actor:
        """For the event a service appends in its own transaction when the action is done."""
        return Actor(
            actor=self.subject.id,
            organisation=self.subject.organisation,
            role=self.subject.role,
            request_id=self.request_id,
        )


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# A caller's X-Request-Id is kept (so its own logs and the hub's audit trail can be matched)
# only when it is a plain identifier; anything else (formulas, markup, long text) is replaced.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Text in an audit entry that a caller chose (a purpose, a name in a denial) is cut here: the
# ledger is permanent, and a reason needs no more.
MAX_REASON_CHARS = 500


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _throttle_unauthenticated(identity: Identity, request: Request) -> None:
    """429 once a caller address has sent too many requests without a valid token this
    minute. Refused before any decision, so not audited one by one: each audited deny is a
    permanent ledger entry, which anyone could otherwise add at will."""
    address = request.client.host if request.client else "unknown"
    wait = identity.unauthenticated_limiter.take(address)
    if wait:
        raise TooManyRequests(wait)


def _record(
    connection: Connection,
    action: str,
    decision: str,
    reason: str,
    *,
    request_id: str,
    claims: TokenClaims | None = None,
    resource: Resource | None = None,
    resource_text: str | None = None,
) -> None:
    append_event(
        connection,
        AuditEvent(
            action=action,
            decision=decision,
            reason=reason
            if len(reason) <= MAX_REASON_CHARS
            else reason[: MAX_REASON_CHARS - 1] + "…",
            actor=claims.subject[:200] if claims else None,
            organisation=claims.organisation[:64] if claims else None,
            role=claims.role[:32] if claims else None,
            resource=(resource.describe() if resource else resource_text),
            agreement_id=resource.agreement.id if resource and resource.agreement else None,
            request_id=request_id,
        ),
    )


def authorize(action: str) -> Callable[[Request], Any]:
    """The dependency for ``action``: 401 without a valid token, 403 when the policy denies."""
    if action not in RESOURCES and action not in BODY_RESOURCES:
        raise ValueError(f"no resource builder for action {action!r}; add one to RESOURCES")

    def dependency(request: Request) -> Authorized:
        # A plain `def`: FastAPI runs it in a worker thread, off the event loop.
        return decide_request(request, None)

    def decide_request(request: Request, body: bytes | None) -> Authorized:
        hub = get_hub(request)
        identity = get_identity(request)
        request_id = _request_id(request)
        path = {k: str(v) for k, v in request.path_params.items()}
        if request.url.path in ORGANISATION_FILTERED_PATHS:
            organisation = request.query_params.get("organisation")
            if organisation:
                path.setdefault("organisation", organisation)
        where = request.url.path[:300]
        token = _bearer(request)
        if token is None:
            _throttle_unauthenticated(identity, request)
            with hub.engine.begin() as connection:
                _record(
                    connection,
                    action,
                    "deny",
                    "denied: no bearer token",
                    request_id=request_id,
                    resource_text=where,
                )
            raise Unauthenticated(
                "This endpoint needs an access token: send 'Authorization: Bearer <token>'. "
                "Get one from POST /oauth/token with your client id and secret "
                "(the hub CLI does this with --client-id/--client-secret).",
                error="",
            )
        try:
            claims = identity.verify(token)
        except InvalidToken as error:
            _throttle_unauthenticated(identity, request)
            with hub.engine.begin() as connection:
                _record(
                    connection,
                    action,
                    "deny",
                    f"denied: invalid token: {error}",
                    request_id=request_id,
                    resource_text=where,
                )
            raise Unauthenticated(
                f"The access token is not accepted: {error}. Get a new token from "
                "POST /oauth/token and try again."
            ) from None
        wait = identity.rate_limiter.take(claims.client_id or claims.subject)
        if wait:
            raise TooManyRequests(wait)
        subject = Subject(
            id=claims.subject,
            role=claims.role,
            organisation=claims.organisation,
            scopes=claims.scopes,
        )
        with hub.engine.begin() as connection:
            if (
                not claims.external
                and claims.client_id
                and not is_live(connection, claims.client_id)
            ):
                _record(
                    connection,
                    action,
                    "deny",
                    "denied: the client is revoked or unknown",
                    request_id=request_id,
                    claims=claims,
                    resource_text=where,
                )
                revoked = Unauthenticated(
                    "This client has been revoked; its tokens no longer work. Ask the hub's "
                    "operator for a new client."
                )
            else:
                revoked = None
        if revoked is not None:
            raise revoked
        context: Mapping[str, Any] = {}
        try:
            if body is not None:
                resource, context = BODY_RESOURCES[action](hub, body)
            else:
                with hub.engine.connect() as connection:
                    resource = RESOURCES[action](hub, connection, path)
        except (NotFound, Unprocessable) as missing:
            with hub.engine.begin() as connection:
                _record(
                    connection,
                    action,
                    "deny",
                    f"denied: {missing.message}",
                    request_id=request_id,
                    claims=claims,
                    resource_text=where,
                )
            raise
        decision = decide(subject, action, resource, context)
        with hub.engine.begin() as connection:
            _record(
                connection,
                action,
                "allow" if decision.allowed else "deny",
                decision.reason,
                request_id=request_id,
                claims=claims,
                resource=resource,
            )
        if not decision.allowed:
            raise Forbidden(
                "forbidden",
                f"{decision.reason[0].upper()}{decision.reason[1:]}. If you need this access, "
                + (
                    "ask the partnership's information-governance lead."
                    if claims.role == "ig_lead"
                    else "ask your organisation's information-governance lead."
                ),
            )
        return Authorized(subject, claims, decision, request_id, body)

    if action in BODY_RESOURCES:

        async def body_dependency(request: Request) -> Authorized:
            body = await request.body()
            return await run_in_threadpool(decide_request, request, body)

        body_dependency.__name__ = f"authorize_{action.replace('.', '_')}"
        body_dependency.action = action  # type: ignore[attr-defined]
        return body_dependency

    dependency.__name__ = f"authorize_{action.replace('.', '_')}"
    dependency.action = action  # type: ignore[attr-defined]
    return dependency
