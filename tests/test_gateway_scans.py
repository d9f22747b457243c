"""Scans through the real gateway: upload validation, listing, download round trip, delete."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from gateway_testkit import (
    Gateway,
    assert_problem,
    gateway_settings,
    series_files,
    start_gateway,
    upload,
    write_series,
    zip_bytes,
)


def test_upload_records_patient_study_and_series(gateway: Gateway, tmp_path: Path) -> None:
    paths = write_series(tmp_path / "ct", n_slices=5, patient_id="PAT-7")
    response = upload(gateway.client, gateway.key("ingest"), series_files(paths), description="follow-up")
    assert response.status_code == 201, response.text
    scan = response.json()
    assert response.headers["location"] == f"/api/scans/{scan['id']}"
    assert scan["n_instances"] == 5 and scan["modality"] == "CT" and scan["description"] == "follow-up"
    assert scan["size_bytes"] == sum(p.stat().st_size for p in paths)

    clinician = gateway.key("clinician")
    patient = gateway.client.get(f"/api/patients/{scan['patient_id']}", headers=clinician).json()
    assert patient["dicom_patient_id"] == "PAT-7" and patient["name"] == "Doe^Jane"
    assert gateway.client.get(f"/api/scans/{scan['id']}", headers=clinician).json() == scan


def test_same_series_uploaded_twice_stores_instances_once(gateway: Gateway, tmp_path: Path) -> None:
    paths = write_series(tmp_path / "ct", n_slices=4)
    ingest = gateway.key("ingest")
    first = upload(gateway.client, ingest, series_files(paths[:3])).json()
    second = upload(gateway.client, ingest, series_files(paths[2:])).json()
    assert second["id"] == first["id"]
    assert second["n_instances"] == 4
    assert second["size_bytes"] == sum(p.stat().st_size for p in paths)
    listed = gateway.client.get("/api/scans", headers=gateway.key("clinician")).json()
    assert listed["total"] == 1


def test_list_filters_and_paginates(gateway: Gateway, tmp_path: Path) -> None:
    ingest, clinician = gateway.key("ingest"), gateway.key("clinician")
    scans = []
    for index, patient in enumerate(["PAT-A", "PAT-A", "PAT-B"]):
        paths = write_series(tmp_path / f"ct{index}", n_slices=3, seed=index, patient_id=patient)
        scans.append(upload(gateway.client, ingest, series_files(paths)).json())
    assert scans[0]["patient_id"] == scans[1]["patient_id"] != scans[2]["patient_id"]

    everything = gateway.client.get("/api/scans", headers=clinician).json()
    assert everything["total"] == 3
    assert [s["id"] for s in everything["items"]] == [s["id"] for s in reversed(scans)]  # newest first

    of_a = gateway.client.get("/api/scans", params={"patient_id": scans[0]["patient_id"]}, headers=clinician).json()
    assert of_a["total"] == 2 and {s["id"] for s in of_a["items"]} == {scans[0]["id"], scans[1]["id"]}

    study = scans[2]["study_instance_uid"]
    of_study = gateway.client.get("/api/scans", params={"study_uid": study}, headers=clinician).json()
    assert [s["id"] for s in of_study["items"]] == [scans[2]["id"]]

    page = gateway.client.get("/api/scans", params={"limit": 1, "offset": 1}, headers=clinician).json()
    assert page["total"] == 3 and page["limit"] == 1 and page["offset"] == 1
    assert [s["id"] for s in page["items"]] == [scans[1]["id"]]


def test_download_returns_the_uploaded_bytes(gateway: Gateway, tmp_path: Path) -> None:
    ingest, clinician = gateway.key("ingest"), gateway.key("clinician")
    single = write_series(tmp_path / "one", n_slices=1, seed=1)
    scan = upload(gateway.client, ingest, series_files(single)).json()
    response = gateway.client.get(f"/api/scans/{scan['id']}/file", headers=clinician)
    assert response.status_code == 200
    assert response.content == single[0].read_bytes()
    assert response.headers["content-type"] == "application/dicom"

    archive = zip_bytes({f"study/{p.name}": p.read_bytes() for p in write_series(tmp_path / "zip", n_slices=4, seed=2)})
    scan = upload(gateway.client, ingest, [("study.zip", archive)]).json()
    response = gateway.client.get(f"/api/scans/{scan['id']}/file", headers=clinician)
    assert response.content == archive
    assert scan["original_filename"] == "study.zip"


def test_download_of_several_files_is_a_zip_of_the_instances(gateway: Gateway, tmp_path: Path) -> None:
    paths = write_series(tmp_path / "ct", n_slices=3, seed=3)
    scan = upload(gateway.client, gateway.key("ingest"), series_files(paths)).json()
    response = gateway.client.get(f"/api/scans/{scan['id']}/file", headers=gateway.key("clinician"))
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        received = sorted(archive.read(name) for name in archive.namelist())
    assert received == sorted(p.read_bytes() for p in paths)


def test_mr_upload_is_refused_as_not_ct(gateway: Gateway, tmp_path: Path) -> None:
    paths = write_series(tmp_path / "mr", n_slices=3, Modality="MR", SOPClassUID="1.2.840.10008.5.1.4.1.1.4")
    response = upload(gateway.client, gateway.key("ingest"), series_files(paths))
    body = assert_problem(response, 422, "not_ct")
    assert body["type"] == "urn:ctriage:problem:invalid-dicom"
    assert gateway.client.get("/api/scans", headers=gateway.admin).json()["total"] == 0


def test_real_mr_is_refused_and_real_ct_accepted(gateway: Gateway, shared_ct: Path) -> None:
    ingest = gateway.key("ingest")
    mr = sorted((shared_ct / "nonchest_mr_brain_t1_sag_siemens").glob("*.dcm"))[:5]
    assert_problem(upload(gateway.client, ingest, series_files(mr)), 422, "not_ct")
    ct = sorted((shared_ct / "midrc_ricord_covid_slabs" / "covid_negative" / "patient_5").glob("*.dcm"))
    response = upload(gateway.client, ingest, series_files(ct))
    assert response.status_code == 201, response.text
    assert response.json()["n_instances"] == len(ct)


def test_zip_with_path_traversal_is_refused(gateway: Gateway, tmp_path: Path) -> None:
    paths = write_series(tmp_path / "ct", n_slices=2)
    archive = zip_bytes({"../escape.dcm": paths[0].read_bytes(), "ok.dcm": paths[1].read_bytes()})
    assert_problem(upload(gateway.client, gateway.key("ingest"), [("evil.zip", archive)]), 422, "unsafe_archive")


def test_zip_bomb_is_refused(gateway: Gateway) -> None:
    archive = zip_bytes({"zeros.dcm": bytes(64 * 1024 * 1024)})  # deflates about 1000:1
    assert len(archive) < 1024 * 1024
    assert_problem(upload(gateway.client, gateway.key("ingest"), [("bomb.zip", archive)]), 422, "unsafe_archive")


def test_upload_over_the_size_limit_gets_413(tmp_path: Path) -> None:
    for gw in start_gateway(gateway_settings(tmp_path, max_upload_bytes=100_000)):
        paths = write_series(tmp_path / "ct", n_slices=3, size=128)
        assert sum(p.stat().st_size for p in paths) > 100_000
        body = assert_problem(upload(gw.client, gw.key("ingest"), series_files(paths)), 413, "upload_too_large")
        assert body["limit_bytes"] == 100_000


def test_a_chunked_upload_is_stopped_at_the_size_limit(tmp_path: Path) -> None:
    # No Content-Length to refuse up front: the limit must hold while the body streams in.
    for gw in start_gateway(gateway_settings(tmp_path, max_upload_bytes=100_000)):
        boundary = "ctriage-test-boundary"

        def body():  # type: ignore[no-untyped-def]
            yield f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.dcm"\r\n\r\n'.encode()
            for _ in range(50):
                yield bytes(10_000)
            yield f"\r\n--{boundary}--\r\n".encode()

        response = gw.client.post("/api/scans", content=body(), headers={
            **gw.key("ingest"), "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert "content-length" not in response.request.headers
        assert_problem(response, 413, "upload_too_large")
        assert not list((gw.settings.data_dir / "tmp").iterdir())  # the partial upload is gone


def test_non_dicom_and_two_studies_are_refused(gateway: Gateway, tmp_path: Path) -> None:
    ingest = gateway.key("ingest")
    assert_problem(upload(gateway.client, ingest, [("notes.txt", b"hello, not DICOM" * 100)]), 422, "not_dicom")
    study_a = write_series(tmp_path / "a", n_slices=3, seed=1)
    study_b = write_series(tmp_path / "b", n_slices=3, seed=2)
    assert_problem(upload(gateway.client, ingest, series_files(study_a + study_b)), 422, "not_one_study")


def test_upload_needs_multipart_and_a_file(gateway: Gateway) -> None:
    ingest = gateway.key("ingest")
    response = gateway.client.post("/api/scans", content=b"raw", headers={**ingest, "Content-Type": "application/dicom"})
    assert_problem(response, 415, "unsupported_media_type")
    response = gateway.client.post("/api/scans", data={"description": "no file"}, files={"other": ("x", b"")},
                                   headers=ingest)
    assert_problem(response, 422)


def test_upload_to_unknown_patient_is_refused(gateway: Gateway, tmp_path: Path) -> None:
    paths = write_series(tmp_path / "ct", n_slices=2)
    response = upload(gateway.client, gateway.key("ingest"), series_files(paths), patient_id="no-such-patient")
    assert_problem(response, 422, "patient_not_found")


def test_upload_to_a_patient_record_links_the_scan(gateway: Gateway, tmp_path: Path) -> None:
    operator = gateway.key("operator")
    patient = gateway.client.post("/api/patients", json={"name": "Roe^Rick"}, headers=operator).json()
    paths = write_series(tmp_path / "ct", n_slices=2, patient_id="OTHER-ID")
    scan = upload(gateway.client, gateway.key("ingest"), series_files(paths), patient_id=patient["id"]).json()
    assert scan["patient_id"] == patient["id"]


def test_description_can_be_changed(gateway: Gateway, tmp_path: Path) -> None:
    scan = upload(gateway.client, gateway.key("ingest"), series_files(write_series(tmp_path / "ct", n_slices=2))).json()
    clinician = gateway.key("clinician")
    response = gateway.client.put(f"/api/scans/{scan['id']}", json={"description": "re-read"}, headers=clinician)
    assert response.status_code == 200 and response.json()["description"] == "re-read"
    assert gateway.client.get(f"/api/scans/{scan['id']}", headers=clinician).json()["description"] == "re-read"


def _stored_objects(gateway: Gateway) -> list[Path]:
    root = gateway.settings.resolved_storage_dir
    return sorted(p for p in root.rglob("*") if p.is_file() and ".meta" not in p.parts and ".tmp" not in p.parts)


def test_refused_or_repeated_zips_leave_nothing_behind(gateway: Gateway, tmp_path: Path) -> None:
    ingest = gateway.key("ingest")
    mr = write_series(tmp_path / "mr", n_slices=3, Modality="MR", SOPClassUID="1.2.840.10008.5.1.4.1.1.4")
    assert_problem(upload(gateway.client, ingest, [("mr.zip", zip_bytes({p.name: p.read_bytes() for p in mr}))]),
                   422, "not_ct")
    assert _stored_objects(gateway) == []

    archive = zip_bytes({p.name: p.read_bytes() for p in write_series(tmp_path / "ct", n_slices=3)})
    scan = upload(gateway.client, ingest, [("ct.zip", archive)]).json()
    before = _stored_objects(gateway)
    again = upload(gateway.client, ingest, [("ct-again.zip", archive)]).json()
    assert again["id"] == scan["id"] and _stored_objects(gateway) == before
    assert gateway.client.get(f"/api/scans/{scan['id']}/file", headers=gateway.admin).content == archive


def test_delete_removes_rows_and_stored_objects(gateway: Gateway, tmp_path: Path) -> None:
    archive = zip_bytes({p.name: p.read_bytes() for p in write_series(tmp_path / "ct", n_slices=3)})
    scan = upload(gateway.client, gateway.key("ingest"), [("s.zip", archive)]).json()
    assert len(_stored_objects(gateway)) == 4  # three instances and the original zip

    assert_problem(gateway.client.delete(f"/api/scans/{scan['id']}", headers=gateway.key("clinician")), 403,
                   "insufficient_role")
    response = gateway.client.delete(f"/api/scans/{scan['id']}", headers=gateway.key("operator"))
    assert response.status_code == 204
    assert_problem(gateway.client.get(f"/api/scans/{scan['id']}", headers=gateway.admin), 404, "scan_not_found")
    assert _stored_objects(gateway) == []
