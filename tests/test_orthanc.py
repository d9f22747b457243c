"""Orthanc as the hospital PACS (issue 7 §5): it pushes a study to our receiver through its REST
``/modalities/{id}/store``, we analyse it, and our SEG, SR and key images come back to it by C-STORE and
STOW-RS (its DICOMweb plugin), checked through Orthanc's own REST API."""

from __future__ import annotations

import io
from contextlib import closing
from pathlib import Path

import pytest
from pydicom import dcmread

from export_testkit import (
    DICOMWEB_PLUGIN, ORTHANC_AE, SECONDARY_CAPTURE, SEG, SR_3D, exports_by_destination, orthanc, orthanc_sop_classes,
    start_system, system_env, system_settings, wait_until,
)
from gateway.dimse.launcher import ReceiverProcess
from pipeline_testkit import Processes, phantom, with_round_lesion, write_series
from servers import free_port
from shared.db.migrate import upgrade_database
from shared.export.cstore import ExportError
from shared.export.destinations import StowDestination
from shared.export.stow import send_stow

pytestmark = pytest.mark.e2e
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def test_a_study_orthanc_pushes_is_analysed_and_our_results_arrive_back_in_orthanc(tmp_path: Path) -> None:
    receiver_port = free_port()
    with orthanc(tmp_path / "orthanc", modalities={"ctriage": ("CTRIAGE", receiver_port)}) as (pacs, pacs_dicom_port):
        stow_url = f"{str(pacs.base_url).rstrip('/')}/dicom-web/studies"
        cstore = f"{ORTHANC_AE}@127.0.0.1:{pacs_dicom_port}"
        settings = system_settings(
            tmp_path, dicom_ae_title="CTRIAGE", dicom_port=receiver_port, dicom_allowed_calling_aes=ORTHANC_AE,
            completeness_quiet_seconds=3, completeness_scan_seconds=0.5, auto_analyze_min_instances=5,
            export_cstore_destinations=cstore, export_stow_urls=stow_url if DICOMWEB_PLUGIN.is_file() else "",
            export_timeout_seconds=20, export_poll_seconds=0.5,
        )
        upgrade_database(settings.resolved_database_url)
        volume, _ = with_round_lesion(phantom(seed=33), side="right", diameter_mm=30.0)
        files = write_series(volume, tmp_path / "study")
        uploaded = [pacs.post("/instances", content=path.read_bytes()).json() for path in files]
        study = uploaded[0]["ParentStudy"]
        processes = Processes(logs=tmp_path / "logs")
        receiver = ReceiverProcess(env=system_env(settings), port=receiver_port, log_path=tmp_path / "logs" / "receiver.log")
        try:
            with closing(start_system(processes, settings)) as client, receiver:
                pushed = pacs.post("/modalities/ctriage/store", json={"Resources": [study], "Synchronous": True})
                assert pushed.status_code == 200, pushed.text

                [scan] = wait_until(lambda: client.get("/api/scans").json()["items"], what="the pushed scan", processes=processes)
                expected = {cstore, stow_url} if settings.export_stow_urls else {cstore}
                jobs = wait_until(
                    lambda: (found := exports_by_destination(client, scan["id"])) and set(found) == expected
                    and all(job["state"] in ("sent", "dead_letter") for job in found.values()) and found,
                    what="the exports to Orthanc", processes=processes, timeout=300,
                )
                report = client.get(f"/api/scans/{scan['id']}/report").json()

            assert scan["source"] == "cstore" and scan["n_instances"] == len(files)
            assert report["status"] == "done" and report["verdict"] == "pathology", report
            n_outputs = 2 + len(report["findings"])
            assert {(job["state"], job["n_objects"], job["last_error"]) for job in jobs.values()} == {("sent", n_outputs, None)}
            assert orthanc_sop_classes(pacs) == {CT_IMAGE: len(files), SEG: 1, SR_3D: 1, SECONDARY_CAPTURE: n_outputs - 2}
        finally:
            processes.stop()


def test_stow_rs_to_orthanc_stores_valid_objects_and_names_refused_ones_without_phi(tmp_path: Path) -> None:
    if not DICOMWEB_PLUGIN.is_file():
        pytest.skip(f"Orthanc's DICOMweb plugin is not installed ({DICOMWEB_PLUGIN}): `apt-get install orthanc-dicomweb`")
    files = write_series(phantom(seed=34, shape=(3, 32, 32)).volume, tmp_path / "ct")
    objects = [path.read_bytes() for path in files]
    with orthanc(tmp_path / "orthanc", modalities={}) as (pacs, _):
        destination = StowDestination(f"{str(pacs.base_url).rstrip('/')}/dicom-web/studies")

        assert send_stow(destination=destination, objects=objects, timeout_seconds=20) == 3
        stored = sorted(pacs.get(f"/instances/{i}/simplified-tags").json()["SOPInstanceUID"] for i in pacs.get("/instances").json())
        assert stored == sorted(str(dcmread(io.BytesIO(data)).SOPInstanceUID) for data in objects)

        with pytest.raises(ExportError) as refused:
            send_stow(destination=destination, objects=[b"not a DICOM object"], timeout_seconds=20)
        assert "HTTP" in str(refused.value) and str(dcmread(files[0]).PatientID) not in str(refused.value)


def test_an_unreachable_stow_rs_service_is_an_export_error(tmp_path: Path) -> None:
    nobody = StowDestination(f"http://127.0.0.1:{free_port()}/dicom-web/studies")
    with pytest.raises(ExportError, match="unreachable"):
        send_stow(destination=nobody, objects=[b"x"], timeout_seconds=3)
