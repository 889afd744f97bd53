"""Client administration over HTTP, for the hub's operator (role hub_admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from hub.api.deps import Authorized, authorize, get_identity
from hub.auth import Identity
from hub.auth.clients import Actor
from hub.errors import Conflict

router = APIRouter(prefix="/v1/clients", tags=["clients"])
IdentityDep = Annotated[Identity, Depends(get_identity)]


class CreateClient(BaseModel):
    organisation: str = Field(min_length=2, max_length=63)
    role: str = Field(min_length=2, max_length=32)
    description: str | None = Field(default=None, max_length=200)
    public_jwk: dict[str, Any] | None = None
    with_secret: bool = True


def _actor(auth: Authorized) -> Actor:
    return Actor(
        id=auth.subject.id,
        organisation=auth.subject.organisation,
        role=auth.subject.role,
        request_id=auth.request_id,
    )


@router.get("")
def list_clients(
    identity: IdentityDep, auth: Annotated[Authorized, Depends(authorize("client.list"))]
) -> list[dict[str, Any]]:
    return [client.public_view() for client in identity.clients.list(actor=_actor(auth))]


@router.post("", status_code=201)
def create_client(
    body: CreateClient,
    identity: IdentityDep,
    auth: Annotated[Authorized, Depends(authorize("client.create"))],
) -> dict[str, Any]:
    """Create a client; the reply holds its secret, shown this once only."""
    client, secret = identity.clients.create(
        organisation=body.organisation,
        role=body.role,
        description=body.description,
        public_jwk=body.public_jwk,
        with_secret=body.with_secret,
        actor=_actor(auth),
    )
    return {**client.public_view(), "client_secret": secret}


@router.post("/{client_id}/revoke")
def revoke_client(
    client_id: str,
    identity: IdentityDep,
    auth: Annotated[Authorized, Depends(authorize("client.revoke"))],
) -> dict[str, Any]:
    if client_id == auth.claims.client_id:
        # The hub's last admin client would lock every admin out of the API.
        raise Conflict(
            "own_client",
            "This is the client you are using: revoking it would end your own access. Revoke "
            "it with another admin client, or on the hub's machine with `hub clients revoke`.",
        )
    return identity.clients.revoke(client_id, actor=_actor(auth)).public_view()
