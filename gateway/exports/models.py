"""API schemas of export jobs (results back to PACS)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gateway.pagination import Page
from gateway.schemas import UtcDateTime
from shared.db.models import ExportState


class ExportOut(BaseModel):
    """One run's SEG, SR and key images going to one destination."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    scan_id: str = Field(..., validation_alias="series_pk")
    run_id: str = Field(..., validation_alias="run_pk")
    kind: str = Field(..., description="`cstore` (DICOM C-STORE, PS3.4 B) or `stow` (DICOMweb STOW-RS, PS3.18 10.5).")
    destination: str = Field(..., description="`AE@host:port`, or the STOW-RS URL.")
    state: ExportState = Field(..., description="pending (next try at `next_attempt_at`), sending, sent, dead_letter (gave up).")
    attempts: int = Field(..., description="Tries made since the job was created or last re-sent.")
    n_objects: int | None = Field(None, description="Objects delivered, once sent.")
    last_error: str | None = Field(None, description="Why the latest try failed (no patient data).")
    next_attempt_at: UtcDateTime | None = None
    sent_at: UtcDateTime | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime


class ExportList(BaseModel):
    """A scan's export jobs, newest run first."""

    items: list[ExportOut]


class ExportPage(Page):
    """A page of export jobs, newest first."""

    items: list[ExportOut]
