"""API schemas of the audit trail."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from gateway.pagination import Page
from gateway.schemas import UtcDateTime


class AuditEventOut(BaseModel):
    """One recorded write."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: UtcDateTime
    api_key_id: str | None
    action: str
    resource_type: str
    resource_id: str | None
    detail: dict


class AuditEventPage(Page):
    """A page of audit events, newest first."""

    items: list[AuditEventOut]
