"""``/api/keys``: API key management (admin), and ``/api/whoami``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from gateway.audit.service import record_event
from gateway.auth import service
from gateway.auth.dependencies import authenticate, authorized
from gateway.auth.keys import Principal
from gateway.auth.models import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ApiKeyPage,
    WhoAmI,
)
from gateway.auth.permissions import Permission
from gateway.dependencies import SessionDep
from gateway.pagination import PageParams
from gateway.problems import ProblemError, problems

router = APIRouter(tags=["keys"])

Admin = Annotated[Principal, authorized(Permission.manage_keys)]


@router.get("/api/whoami", response_model=WhoAmI, responses=problems(401), summary="The caller's key and role")
async def whoami(principal: Annotated[Principal, Depends(authenticate)]) -> WhoAmI:
    """The name and role of the key the request was made with."""
    return WhoAmI(key_id=principal.key_id, name=principal.name, role=principal.role)


@router.get("/api/keys", response_model=ApiKeyPage, responses=problems(401, 403, 422), summary="List API keys")
def list_keys(session: SessionDep, page: PageParams, _admin: Admin) -> ApiKeyPage:
    """Every key, revoked ones included, oldest first."""
    rows, total = service.list_keys(session=session, limit=page.limit, offset=page.offset)
    return ApiKeyPage(items=[ApiKeyOut.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/api/keys",
    status_code=201,
    response_model=ApiKeyCreated,
    responses=problems(401, 403, 422),
    summary="Create an API key",
)
def create_key(body: ApiKeyCreate, session: SessionDep, admin: Admin, response: Response) -> ApiKeyCreated:
    """A new key with the given role; the response is the only time the key is shown."""
    row, key = service.create_key(session=session, name=body.name, role=body.role)
    record_event(session=session, api_key_id=admin.key_id, action="key.create", resource_type="api_key",
                 resource_id=row.id, detail={"role": body.role.value})
    session.commit()
    response.headers["Location"] = f"/api/keys/{row.id}"
    return ApiKeyCreated(**ApiKeyOut.model_validate(row).model_dump(), key=key)


@router.delete("/api/keys/{key_id}", status_code=204, responses=problems(401, 403, 404), summary="Revoke an API key")
def revoke_key(key_id: str, session: SessionDep, admin: Admin, request: Request) -> Response:
    """Revoke a key: it stops working at once on this gateway, within the cache TTL on others."""
    row = service.revoke_key(session=session, key_id=key_id)
    if row is None:
        raise ProblemError(404, "not-found", "No API key with this id.", reason="key_not_found")
    record_event(session=session, api_key_id=admin.key_id, action="key.revoke", resource_type="api_key", resource_id=row.id)
    session.commit()
    request.app.state.key_cache.forget(row.id)
    return Response(status_code=204)
