"""API schemas of patients. Names, birth dates and PatientIDs are PHI: they appear in responses to
authorised callers, never in logs or audit events."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gateway.pagination import Page
from gateway.schemas import UtcDateTime

_DA = r"^\d{8}$"  # DICOM DA (PS3.5 6.2): YYYYMMDD


class PatientFields(BaseModel):
    """The editable fields of a patient."""

    dicom_patient_id: str | None = Field(None, max_length=64, description="DICOM PatientID (0010,0020).")
    name: str | None = Field(None, max_length=256, description="DICOM PatientName (0010,0010).")
    birth_date: str | None = Field(None, pattern=_DA, description="DICOM PatientBirthDate (0010,0030), YYYYMMDD.")
    sex: str | None = Field(None, pattern=r"^[MFO]$", description="DICOM PatientSex (0010,0040): M, F or O.")
    notes: str | None = Field(None, max_length=10_000)


class PatientCreate(PatientFields):
    """A patient to create."""


class PatientUpdate(PatientFields):
    """New values for a patient; fields left out stay as they are."""


class PatientOut(PatientFields):
    """A stored patient."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(..., description="The patient's id in this API (the `patient_id` of scans).")
    created_at: UtcDateTime
    updated_at: UtcDateTime


class PatientPage(Page):
    """A page of patients."""

    items: list[PatientOut]
