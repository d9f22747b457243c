"""``/api/patients``: patient records."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from gateway.audit.service import record_event
from gateway.auth.dependencies import authorized
from gateway.auth.keys import Principal
from gateway.auth.permissions import Permission
from gateway.dependencies import SessionDep
from gateway.pagination import PageParams
from gateway.patients import service
from gateway.patients.models import (
    PatientCreate,
    PatientOut,
    PatientPage,
    PatientUpdate,
)
from gateway.problems import ProblemError, problems
from shared.db.models import Patient

router = APIRouter(prefix="/api/patients", tags=["patients"])

Reader = Annotated[Principal, authorized(Permission.read)]
Writer = Annotated[Principal, authorized(Permission.manage_patients)]


def _get_or_404(session: SessionDep, patient_id: str) -> Patient:
    patient = service.get_patient(session=session, patient_id=patient_id)
    if patient is None:
        raise ProblemError(404, "not-found", "No patient with this id.", reason="patient_not_found")
    return patient


@router.get("", response_model=PatientPage, responses=problems(401, 403, 422), summary="List patients")
def list_patients(
    session: SessionDep,
    page: PageParams,
    _reader: Reader,
    dicom_patient_id: Annotated[str | None, Query(description="Only the patient with this DICOM PatientID.")] = None,
) -> PatientPage:
    """Patients, oldest first."""
    rows, total = service.list_patients(
        session=session, limit=page.limit, offset=page.offset, dicom_patient_id=dicom_patient_id
    )
    return PatientPage(
        items=[PatientOut(**service.to_api(row)) for row in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{patient_id}", response_model=PatientOut, responses=problems(401, 403, 404), summary="Get a patient")
def get_patient(patient_id: str, session: SessionDep, _reader: Reader) -> PatientOut:
    """One patient."""
    return PatientOut(**service.to_api(_get_or_404(session, patient_id)))


@router.post(
    "", status_code=201, response_model=PatientOut, responses=problems(401, 403, 409, 422), summary="Create a patient"
)
def create_patient(body: PatientCreate, session: SessionDep, writer: Writer, response: Response) -> PatientOut:
    """A new patient record; 409 when one with this DICOM PatientID exists."""
    if body.dicom_patient_id and service.find_by_dicom_patient_id(
        session=session, dicom_patient_id=body.dicom_patient_id
    ):
        raise ProblemError(409, "conflict", "A patient with this DICOM PatientID exists.", reason="duplicate_patient")
    patient = service.create_patient(session=session, data=body)
    record_event(session=session, api_key_id=writer.key_id, action="patient.create", resource_type="patient",
                 resource_id=patient.id)
    session.commit()
    response.headers["Location"] = f"/api/patients/{patient.id}"
    return PatientOut(**service.to_api(patient))


@router.put(
    "/{patient_id}", response_model=PatientOut, responses=problems(401, 403, 404, 422), summary="Update a patient"
)
def update_patient(patient_id: str, body: PatientUpdate, session: SessionDep, writer: Writer) -> PatientOut:
    """Change the fields sent; the others stay."""
    patient = service.update_patient(session=session, patient=_get_or_404(session, patient_id), data=body)
    record_event(session=session, api_key_id=writer.key_id, action="patient.update", resource_type="patient",
                 resource_id=patient.id, detail={"fields": sorted(body.model_dump(exclude_unset=True))})
    session.commit()
    return PatientOut(**service.to_api(patient))


@router.delete("/{patient_id}", status_code=204, responses=problems(401, 403, 404), summary="Delete a patient")
def delete_patient(patient_id: str, session: SessionDep, writer: Writer) -> Response:
    """Delete the patient record; its scans stay, no longer linked to a patient."""
    patient = _get_or_404(session, patient_id)
    service.delete_patient(session=session, patient=patient)
    record_event(session=session, api_key_id=writer.key_id, action="patient.delete", resource_type="patient",
                 resource_id=patient_id)
    session.commit()
    return Response(status_code=204)
