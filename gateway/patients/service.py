"""Patient records: list, read, create, update, delete."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.patients.models import PatientCreate, PatientUpdate
from shared.db.models import Patient

# API field name -> model attribute (the DICOM PatientID is `patient_id` in the database).
_COLUMNS = {"dicom_patient_id": "patient_id", "name": "name", "birth_date": "birth_date", "sex": "sex", "notes": "notes"}


def to_api(patient: Patient) -> dict:
    """The patient as the API shows it."""
    fields = {field: getattr(patient, column) for field, column in _COLUMNS.items()}
    return {"id": patient.id, "created_at": patient.created_at, "updated_at": patient.updated_at, **fields}


def list_patients(
    *, session: Session, limit: int, offset: int, dicom_patient_id: str | None = None
) -> tuple[list[Patient], int]:
    """A page of patients, oldest first, and the total count."""
    query = select(Patient)
    if dicom_patient_id is not None:
        query = query.where(Patient.patient_id == dicom_patient_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Patient.created_at, Patient.id).limit(limit).offset(offset)).all()
    return list(rows), total


def get_patient(*, session: Session, patient_id: str) -> Patient | None:
    """The patient with this API id."""
    return session.get(Patient, patient_id)


def find_by_dicom_patient_id(*, session: Session, dicom_patient_id: str) -> Patient | None:
    """The patient with this DICOM PatientID, if any."""
    return session.scalar(select(Patient).where(Patient.patient_id == dicom_patient_id).limit(1))


def create_patient(*, session: Session, data: PatientCreate) -> Patient:
    """Add a patient (not committed)."""
    patient = Patient(**{column: getattr(data, field) for field, column in _COLUMNS.items()})
    session.add(patient)
    session.flush()
    return patient


def update_patient(*, session: Session, patient: Patient, data: PatientUpdate) -> Patient:
    """Set the fields the client sent (not committed)."""
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(patient, _COLUMNS[field], value)
    session.flush()
    return patient


def delete_patient(*, session: Session, patient: Patient) -> None:
    """Delete the record; its studies stay, unlinked (not committed)."""
    for study in patient.studies:
        study.patient_pk = None
    session.delete(patient)
    session.flush()
