"""Analyze, report, status and predict through the gateway.

No worker runs here (tests/test_e2e_* start real ones): a run stays queued until the test finishes
it itself with the pipeline's own in-process stages and bookkeeping, as a worker would.
"""

from __future__ import annotations

from pathlib import Path

from gateway_testkit import (
    Gateway,
    assert_problem,
    finish_run,
    gateway_settings,
    series_files,
    start_gateway,
    upload,
    write_series,
)


def test_analyze_then_poll_until_the_report(gateway: Gateway, tmp_path: Path) -> None:
    ingest, clinician, operator = gateway.key("ingest"), gateway.key("clinician"), gateway.key("operator")
    scan = upload(gateway.client, ingest, series_files(write_series(tmp_path / "ct", n_slices=6))).json()
    report_url = f"/api/scans/{scan['id']}/report"
    assert_problem(gateway.client.get(report_url, headers=clinician), 404, "not_analyzed")

    accepted = gateway.client.post(f"/api/scans/{scan['id']}/analyze", headers=ingest)
    assert accepted.status_code == 202
    assert accepted.headers["location"] == report_url
    run_id = accepted.json()["run_id"]
    assert accepted.json()["state"] == "queued"

    waiting = gateway.client.get(report_url, headers=clinician)
    assert waiting.status_code == 202
    assert int(waiting.headers["retry-after"]) > 0
    assert waiting.json()["stage"] == "gate" and waiting.json()["run_id"] == run_id

    status = gateway.client.get(f"/api/scans/{scan['id']}/status", headers=operator).json()
    assert [stage["stage"] for stage in status["stages"]] == ["gate", "screen", "localize"]
    assert status["stages"][0]["state"] == "queued"

    expected = finish_run(gateway, run_id, scan["id"])
    done = gateway.client.get(report_url, headers=clinician)
    assert done.status_code == 200
    report = done.json()
    assert report == expected
    assert report["status"] in {"done", "rejected", "failed"} and "findings" in report
    assert (report["verdict"] is not None) == (report["status"] == "done")
    assert (report["reason"] is not None) == (report["status"] != "done")


def test_reanalysis_keeps_the_last_finished_report_until_the_new_one(gateway: Gateway, tmp_path: Path) -> None:
    ingest, clinician = gateway.key("ingest"), gateway.key("clinician")
    scan = upload(gateway.client, ingest, series_files(write_series(tmp_path / "ct", n_slices=6))).json()
    first = gateway.client.post(f"/api/scans/{scan['id']}/analyze", headers=ingest).json()["run_id"]
    finish_run(gateway, first, scan["id"])
    second = gateway.client.post(f"/api/scans/{scan['id']}/analyze", headers=ingest).json()["run_id"]
    assert second != first
    report = gateway.client.get(f"/api/scans/{scan['id']}/report", headers=clinician)
    assert report.status_code == 200 and report.json()["run_id"] == first
    finish_run(gateway, second, scan["id"])
    assert gateway.client.get(f"/api/scans/{scan['id']}/report", headers=clinician).json()["run_id"] == second


def test_analyze_unknown_scan_is_404(gateway: Gateway) -> None:
    assert_problem(gateway.client.post("/api/scans/nope/analyze", headers=gateway.admin), 404, "scan_not_found")


def test_predict_answers_202_with_a_poll_link_when_the_run_is_slow(gateway: Gateway, tmp_path: Path) -> None:
    ingest = gateway.key("ingest")
    paths = write_series(tmp_path / "ct", n_slices=6)
    response = upload(gateway.client, ingest, series_files(paths), url="/inference/predict?wait=0")
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == body["poll_url"] == f"/inference/predict/{body['run_id']}"
    assert body["state"] == "queued"

    assert gateway.client.get(body["poll_url"], headers=ingest).status_code == 202
    assert_problem(gateway.client.get(body["poll_url"], headers=gateway.key("ingest")), 404, "run_not_found")

    scan = gateway.client.get(f"/api/scans/{body['scan_id']}", headers=gateway.admin).json()
    assert scan["source"] == "predict" and scan["patient_id"] is None  # no patient record for predictions

    expected = finish_run(gateway, body["run_id"], body["scan_id"])
    finished = gateway.client.get(body["poll_url"], headers=ingest)
    assert finished.status_code == 200 and finished.json() == expected


def test_predict_refuses_what_upload_refuses(gateway: Gateway) -> None:
    response = upload(gateway.client, gateway.key("ingest"), [("x.dcm", b"garbage" * 50)], url="/inference/predict")
    assert_problem(response, 422, "not_dicom")


def test_report_answers_are_reused_briefly_and_forgotten_on_analyze(tmp_path: Path) -> None:
    for gw in start_gateway(gateway_settings(tmp_path, report_cache_seconds=60.0)):
        ingest, clinician = gw.key("ingest"), gw.key("clinician")
        scan = upload(gw.client, ingest, series_files(write_series(tmp_path / "ct", n_slices=6))).json()
        report_url = f"/api/scans/{scan['id']}/report"
        first = gw.client.post(f"/api/scans/{scan['id']}/analyze", headers=ingest).json()["run_id"]
        assert gw.client.get(report_url, headers=clinician).status_code == 202
        finish_run(gw, first, scan["id"])  # behind this gateway's back: its answer is remembered
        reused = gw.client.get(report_url, headers=clinician)
        assert reused.status_code == 202 and reused.headers["retry-after"] == "2"
        assert_problem(gw.client.get(report_url), 401)  # the key is checked before any reuse

        gw.client.post(f"/api/scans/{scan['id']}/analyze", headers=ingest)  # forgets the answer
        assert gw.client.get(report_url, headers=clinician).json()["run_id"] == first
