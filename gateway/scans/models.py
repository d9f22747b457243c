"""API schemas of scans (DICOM series) and their analysis."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gateway.pagination import Page
from gateway.schemas import UtcDateTime


class ScanOut(BaseModel):
    """A received series: the API's "scan"."""

    id: str
    patient_id: str | None = Field(None, description="Id of the patient record the study belongs to.")
    study_instance_uid: str
    series_instance_uid: str
    modality: str | None
    body_part_examined: str | None
    series_description: str | None = Field(None, description="DICOM SeriesDescription (0008,103E).")
    description: str | None = Field(None, description="Free-text note set with PUT /api/scans/{id}.")
    source: str = Field(..., description="How it arrived: upload, predict, cstore or stowrs.")
    n_instances: int
    size_bytes: int
    original_filename: str | None
    original_sha256: str | None = Field(None, description="SHA-256 of the uploaded file when it was one file.")
    created_at: UtcDateTime
    updated_at: UtcDateTime


class ScanPage(Page):
    """A page of scans, newest first."""

    items: list[ScanOut]


class ScanUpdate(BaseModel):
    """The scan's editable field."""

    description: str | None = Field(..., max_length=10_000)


class AnalysisAccepted(BaseModel):
    """An analysis run was queued."""

    run_id: str
    scan_id: str
    state: str = Field(..., description="The run's state: queued.")
    report_url: str = Field(..., description="Poll this for the report.")
    status_url: str = Field(..., description="Per-stage progress (operator role).")
