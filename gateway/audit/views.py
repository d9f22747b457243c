"""``/api/audit-events``: the audit trail, for admins."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.audit import service
from gateway.audit.models import AuditEventOut, AuditEventPage
from gateway.auth.dependencies import authorized
from gateway.auth.permissions import Permission
from gateway.dependencies import SessionDep
from gateway.pagination import PageParams
from gateway.problems import problems

router = APIRouter(prefix="/api/audit-events", tags=["audit"])


@router.get(
    "",
    response_model=AuditEventPage,
    dependencies=[authorized(Permission.read_audit)],
    responses=problems(401, 403, 422),
    summary="List audit events (admin)",
)
def list_audit_events(
    session: SessionDep, page: PageParams, resource_id: str | None = None, api_key_id: str | None = None
) -> AuditEventPage:
    """Audit events, newest first, optionally for one resource or one API key."""
    rows, total = service.list_events(
        session=session, limit=page.limit, offset=page.offset, resource_id=resource_id, api_key_id=api_key_id
    )
    return AuditEventPage(
        items=[AuditEventOut.model_validate(row) for row in rows], total=total, limit=page.limit, offset=page.offset
    )
