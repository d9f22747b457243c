"""Results back to PACS end to end: a study analysed by the real workers goes to dcmtk's storescp by the export
worker; an unreachable PACS ends dead-lettered with its error in the API, and a re-send after it comes up delivers."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from export_testkit import (
    SECONDARY_CAPTURE, SEG, SR_3D, exports_by_destination, sop_classes, start_system, storescp, system_settings, wait_until,
)
from pipeline_testkit import Processes, phantom, with_round_lesion, write_series
from servers import free_port
from shared.db.migrate import upgrade_database

pytestmark = pytest.mark.e2e


def test_results_reach_the_pacs_and_a_dead_letter_is_resent_once_the_pacs_is_up(tmp_path: Path) -> None:
    up_port, down_port = free_port(), free_port()
    up, down = f"HOSPITALPACS@127.0.0.1:{up_port}", f"LATEPACS@127.0.0.1:{down_port}"
    settings = system_settings(tmp_path, export_cstore_destinations=f"{up},{down}", export_max_attempts=3,
                               export_retry_base_seconds=0.5, export_timeout_seconds=5, export_poll_seconds=0.2)
    upgrade_database(settings.resolved_database_url)
    volume, _ = with_round_lesion(phantom(seed=32), side="right", diameter_mm=30.0)
    files = write_series(volume, tmp_path / "study")
    processes = Processes(logs=tmp_path / "logs")
    try:
        with storescp(tmp_path / "pacs", up_port) as received, closing(start_system(processes, settings)) as client:
            scan = client.post("/api/scans", files=[("files", (p.name, p.read_bytes(), "application/dicom")) for p in files]).json()
            assert client.post(f"/api/scans/{scan['id']}/analyze").status_code == 202

            def finished() -> dict | None:
                jobs = exports_by_destination(client, scan["id"])
                return jobs if {job["state"] for job in jobs.values()} == {"sent", "dead_letter"} else None

            jobs = wait_until(finished, what="one export sent and one dead-lettered", processes=processes, timeout=300)
            report = client.get(f"/api/scans/{scan['id']}/report").json()
            dead_letters = client.get("/api/exports", params={"state": "dead_letter"}).json()

            n_findings = len(report["findings"])
            assert report["verdict"] == "pathology" and n_findings >= 1
            assert jobs[up]["state"] == "sent" and jobs[up]["n_objects"] == 2 + n_findings and jobs[up]["last_error"] is None
            assert sop_classes(received) == sorted([SEG, SR_3D, *[SECONDARY_CAPTURE] * n_findings])
            late = jobs[down]
            assert late["state"] == "dead_letter" and late["attempts"] == 3
            assert "association not established" in late["last_error"] and late["run_id"] == report["run_id"]
            assert [item["id"] for item in dead_letters["items"]] == [late["id"]] and dead_letters["total"] == 1

            with storescp(tmp_path / "late-pacs", down_port, ae_title="LATEPACS") as late_received:
                resent = client.post(f"/api/scans/{scan['id']}/exports/{late['id']}/resend")
                assert resent.status_code == 202, resent.text
                assert resent.json()["state"] == "pending" and resent.json()["attempts"] == 0
                wait_until(lambda: exports_by_destination(client, scan["id"])[down]["state"] == "sent",
                           what="the re-sent export", processes=processes, timeout=60)
                assert sop_classes(late_received) == sop_classes(received)

            unknown = client.post(f"/api/scans/{scan['id']}/exports/no-such-export/resend")
            assert unknown.status_code == 404 and unknown.json()["reason"] == "export_not_found"
            assert unknown.headers["content-type"] == "application/problem+json"
    finally:
        processes.stop()
