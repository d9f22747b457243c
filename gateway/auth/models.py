"""API schemas of key management."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gateway.pagination import Page
from gateway.schemas import UtcDateTime
from shared.db.models import Role


class ApiKeyCreate(BaseModel):
    """A key to create."""

    name: str = Field(..., min_length=1, max_length=128, description="Who or what uses the key (no PHI).")
    role: Role


class ApiKeyOut(BaseModel):
    """A stored key; the key itself is never shown again after creation."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str = Field(..., description="The key's first characters, to recognise it.")
    role: Role
    created_at: UtcDateTime
    last_used_at: UtcDateTime | None
    revoked_at: UtcDateTime | None


class ApiKeyCreated(ApiKeyOut):
    """A new key, with its secret: shown once."""

    key: str = Field(..., description="The API key; store it now, it cannot be shown again.")


class ApiKeyPage(Page):
    """A page of keys."""

    items: list[ApiKeyOut]


class WhoAmI(BaseModel):
    """The caller's key."""

    key_id: str
    name: str
    role: Role
