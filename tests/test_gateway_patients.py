"""Patient records through the API."""

from __future__ import annotations

from pathlib import Path

from gateway_testkit import (
    Gateway,
    assert_problem,
    series_files,
    upload,
    write_series,
)


def test_patient_crud(gateway: Gateway) -> None:
    operator, clinician = gateway.key("operator"), gateway.key("clinician")
    created = gateway.client.post(
        "/api/patients", json={"dicom_patient_id": "MRN-1", "name": "Doe^John", "birth_date": "19600229", "sex": "M"},
        headers=operator,
    )
    assert created.status_code == 201
    patient = created.json()
    assert created.headers["location"] == f"/api/patients/{patient['id']}"
    assert gateway.client.get(f"/api/patients/{patient['id']}", headers=clinician).json() == patient

    updated = gateway.client.put(f"/api/patients/{patient['id']}", json={"notes": "allergic to contrast"},
                                 headers=operator).json()
    assert updated["notes"] == "allergic to contrast" and updated["name"] == "Doe^John"  # unsent fields stay

    listed = gateway.client.get("/api/patients", params={"dicom_patient_id": "MRN-1"}, headers=clinician).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == patient["id"]

    assert_problem(gateway.client.post("/api/patients", json={"dicom_patient_id": "MRN-1"}, headers=operator), 409,
                   "duplicate_patient")
    assert gateway.client.delete(f"/api/patients/{patient['id']}", headers=operator).status_code == 204
    assert_problem(gateway.client.get(f"/api/patients/{patient['id']}", headers=clinician), 404, "patient_not_found")


def test_invalid_patient_fields_are_a_validation_problem(gateway: Gateway) -> None:
    body = assert_problem(
        gateway.client.post("/api/patients", json={"birth_date": "1960-02-29", "sex": "X"}, headers=gateway.admin),
        422, "invalid_request",
    )
    assert {tuple(error["loc"]) for error in body["errors"]} == {("body", "birth_date"), ("body", "sex")}
    assert "1960-02-29" not in str(body)  # the client's values are not echoed back


def test_deleting_a_patient_keeps_the_scans(gateway: Gateway, tmp_path: Path) -> None:
    scan = upload(gateway.client, gateway.key("ingest"), series_files(write_series(tmp_path / "ct", n_slices=2))).json()
    assert gateway.client.delete(f"/api/patients/{scan['patient_id']}", headers=gateway.admin).status_code == 204
    kept = gateway.client.get(f"/api/scans/{scan['id']}", headers=gateway.admin).json()
    assert kept["patient_id"] is None
