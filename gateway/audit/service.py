"""Audit trail of writes: who (API key id) did what to which resource. Ids only, never PHI."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db.models import AuditEvent


def record_event(
    *,
    session: Session,
    api_key_id: str | None,
    action: str,
    resource_type: str,
    resource_id: str | None,
    detail: dict | None = None,
) -> AuditEvent:
    """Add an audit event to the session (committed with the change it records)."""
    event = AuditEvent(
        api_key_id=api_key_id, action=action, resource_type=resource_type, resource_id=resource_id, detail=detail or {}
    )
    session.add(event)
    return event


def list_events(
    *, session: Session, limit: int, offset: int, resource_id: str | None = None, api_key_id: str | None = None
) -> tuple[list[AuditEvent], int]:
    """A page of audit events, newest first, and the total count."""
    query = select(AuditEvent)
    if resource_id is not None:
        query = query.where(AuditEvent.resource_id == resource_id)
    if api_key_id is not None:
        query = query.where(AuditEvent.api_key_id == api_key_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total
