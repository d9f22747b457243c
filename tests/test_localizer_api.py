"""Clinical outputs through the gateway (gateway/results): SEG, SR, key images, slice PNGs and the
report PDF of a scan analysed by the in-process pipeline, and the problems when there are none."""

from __future__ import annotations

import email
import io
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from PIL import Image

from gateway_testkit import Gateway, assert_problem, finish_run, gateway_settings, series_files, start_gateway, upload
from localizer_testkit import lesion_study, normal_study


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    yield from start_gateway(gateway_settings(tmp_path_factory.mktemp("gateway")))


@pytest.fixture(scope="module")
def clinician(gateway: Gateway) -> dict[str, str]:
    return gateway.key("clinician")


def _analysed_scan(gateway: Gateway, files: list[Path]) -> tuple[str, dict]:
    ingest = gateway.key("ingest")
    scan = upload(gateway.client, ingest, series_files(files)).json()
    run_id = gateway.client.post(f"/api/scans/{scan['id']}/analyze", headers=ingest).json()["run_id"]
    return scan["id"], finish_run(gateway, run_id, scan["id"])


@pytest.fixture(scope="module")
def lesion_scan(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    scan_id, report = _analysed_scan(gateway, lesion_study(tmp_path_factory.mktemp("lesions")).files)
    assert report["status"] == "done" and report["findings"], report.get("reason")
    return scan_id, report


@pytest.fixture(scope="module")
def normal_scan(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    _, files = normal_study(tmp_path_factory.mktemp("normal"))
    scan_id, report = _analysed_scan(gateway, files)
    assert report["status"] == "done" and not report["findings"]
    return scan_id, report


def test_seg_and_sr_are_dicom_of_the_scan(gateway: Gateway, clinician: dict, lesion_scan: tuple[str, dict]) -> None:
    scan_id, report = lesion_scan
    seg_response = gateway.client.get(f"/api/scans/{scan_id}/seg", headers=clinician)
    assert seg_response.status_code == 200 and seg_response.headers["content-type"] == "application/dicom"
    seg = hd.seg.segread(io.BytesIO(seg_response.content))
    assert seg.StudyInstanceUID == report["study_instance_uid"]
    assert len(seg.segment_numbers) == len(report["findings"])
    sr_response = gateway.client.get(f"/api/scans/{scan_id}/sr", headers=clinician)
    assert sr_response.status_code == 200 and sr_response.headers["content-type"] == "application/dicom"
    sr = hd.sr.srread(io.BytesIO(sr_response.content))
    assert len(sr.content.get_volumetric_roi_measurement_groups()) == len(report["findings"])


def test_key_images_are_multipart_related_dicom_one_per_finding(
    gateway: Gateway, clinician: dict, lesion_scan: tuple[str, dict],
) -> None:
    scan_id, report = lesion_scan
    response = gateway.client.get(f"/api/scans/{scan_id}/key-images", headers=clinician)
    assert response.status_code == 200
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/related") and 'type="application/dicom"' in content_type
    message = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + response.content)
    parts = message.get_payload()
    assert len(parts) == len(report["findings"])
    for part in parts:
        assert part.get_content_type() == "application/dicom"
        image = pydicom.dcmread(io.BytesIO(part.get_payload(decode=True)))
        assert image.Modality == "OT" or image.SOPClassUID.name.startswith("Secondary Capture")
        assert image.StudyInstanceUID == report["study_instance_uid"]


def test_slice_png_in_both_windows_with_and_without_overlay(
    gateway: Gateway, clinician: dict, lesion_scan: tuple[str, dict],
) -> None:
    scan_id, report = lesion_scan
    k = report["findings"][0]["slice_range"][0]
    images = {}
    for query in ("window=lung&overlay=true", "window=mediastinal&overlay=true", "window=lung&overlay=false"):
        response = gateway.client.get(f"/api/scans/{scan_id}/slices/{k}.png?{query}", headers=clinician)
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        images[query] = Image.open(io.BytesIO(response.content))
        assert images[query].format == "PNG" and min(images[query].size) > 0
    assert images["window=lung&overlay=true"].tobytes() != images["window=lung&overlay=false"].tobytes()
    assert images["window=lung&overlay=true"].tobytes() != images["window=mediastinal&overlay=true"].tobytes()


def test_a_slice_outside_the_volume_or_a_bad_query_is_a_problem(
    gateway: Gateway, clinician: dict, lesion_scan: tuple[str, dict],
) -> None:
    scan_id, _ = lesion_scan
    assert_problem(gateway.client.get(f"/api/scans/{scan_id}/slices/100000.png", headers=clinician), 404, "slice_out_of_range")
    assert_problem(gateway.client.get(f"/api/scans/{scan_id}/slices/-1.png", headers=clinician), 422)
    assert_problem(gateway.client.get(f"/api/scans/{scan_id}/slices/x.png", headers=clinician), 422)
    assert_problem(gateway.client.get(f"/api/scans/{scan_id}/slices/0.png?window=bone", headers=clinician), 422)


def test_report_pdf_has_a_page_per_finding(gateway: Gateway, clinician: dict, lesion_scan: tuple[str, dict]) -> None:
    scan_id, report = lesion_scan
    response = gateway.client.get(f"/api/scans/{scan_id}/report.pdf", headers=clinician)
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert f"/Count {1 + len(report['findings'])}".encode() in response.content


def test_a_normal_study_has_an_sr_but_no_seg_or_key_images(
    gateway: Gateway, clinician: dict, normal_scan: tuple[str, dict],
) -> None:
    scan_id, _ = normal_scan
    assert gateway.client.get(f"/api/scans/{scan_id}/sr", headers=clinician).status_code == 200
    assert_problem(gateway.client.get(f"/api/scans/{scan_id}/seg", headers=clinician), 404, "no_output")
    assert_problem(gateway.client.get(f"/api/scans/{scan_id}/key-images", headers=clinician), 404, "no_output")
    assert gateway.client.get(f"/api/scans/{scan_id}/report.pdf", headers=clinician).status_code == 200


def test_outputs_need_a_finished_analysis_and_the_clinician_role(
    gateway: Gateway, clinician: dict, lesion_scan: tuple[str, dict], tmp_path: Path,
) -> None:
    scan_id, _ = lesion_scan
    assert_problem(gateway.client.get(f"/api/scans/{scan_id}/seg", headers=gateway.key("ingest")), 403)
    assert_problem(gateway.client.get("/api/scans/no-such-scan/sr", headers=clinician), 404, "scan_not_found")
    _, files = normal_study(tmp_path / "ct", seed=970_002)  # another series than normal_scan's
    unanalysed = upload(gateway.client, gateway.key("ingest"), series_files(files)).json()["id"]
    for path in ("seg", "sr", "key-images", "slices/0.png", "report.pdf"):
        assert_problem(gateway.client.get(f"/api/scans/{unanalysed}/{path}", headers=clinician), 404, "no_report")


def test_renders_carry_validators_and_answer_304_to_a_current_copy(
    gateway: Gateway, clinician: dict, lesion_scan: tuple[str, dict],
) -> None:
    scan_id, report = lesion_scan
    for path in ("slices/3.png?window=lung", "report.pdf"):
        first = gateway.client.get(f"/api/scans/{scan_id}/{path}", headers=clinician)
        assert first.status_code == 200 and first.headers["cache-control"] == "private, no-cache"
        etag = first.headers["etag"]
        again = gateway.client.get(f"/api/scans/{scan_id}/{path}", headers={**clinician, "If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        stale = gateway.client.get(f"/api/scans/{scan_id}/{path}", headers={**clinician, "If-None-Match": '"other"'})
        assert stale.status_code == 200 and stale.content == first.content
    other_slice = gateway.client.get(f"/api/scans/{scan_id}/slices/4.png?window=lung", headers=clinician)
    assert other_slice.headers["etag"] != gateway.client.get(f"/api/scans/{scan_id}/slices/3.png", headers=clinician).headers["etag"]


def test_renders_are_drawn_from_memory_and_the_pdf_is_stored_until_a_new_run(
    gateway: Gateway, clinician: dict, tmp_path: Path,
) -> None:
    scan_id, report = _analysed_scan(gateway, lesion_study(tmp_path / "ct", seed=4).files)
    store = gateway.client.app.state.store  # type: ignore[attr-defined]
    first_png = gateway.client.get(f"/api/scans/{scan_id}/slices/10.png", headers=clinician)
    first_pdf = gateway.client.get(f"/api/scans/{scan_id}/report.pdf", headers=clinician)
    assert first_png.status_code == 200 and first_pdf.status_code == 200
    assert store.get_bytes(f"runs/{report['run_id']}/report.pdf") == first_pdf.content

    for name in ("volume", "anomaly", "organs", "findings"):  # the run's arrays are no longer read
        store.delete(report["artifacts"][name])
    assert gateway.client.get(f"/api/scans/{scan_id}/slices/11.png", headers=clinician).status_code == 200
    assert gateway.client.get(f"/api/scans/{scan_id}/slices/10.png", headers=clinician).content == first_png.content
    assert gateway.client.get(f"/api/scans/{scan_id}/report.pdf", headers=clinician).content == first_pdf.content

    ingest = gateway.key("ingest")
    run_id = gateway.client.post(f"/api/scans/{scan_id}/analyze", headers=ingest).json()["run_id"]
    assert finish_run(gateway, run_id, scan_id)["run_id"] == run_id != report["run_id"]
    for path, first in (("slices/10.png", first_png), ("report.pdf", first_pdf)):
        response = gateway.client.get(f"/api/scans/{scan_id}/{path}",
                                      headers={**clinician, "If-None-Match": first.headers["etag"]})
        assert response.status_code == 200 and response.headers["etag"] != first.headers["etag"]
    assert store.exists(f"runs/{run_id}/report.pdf")
