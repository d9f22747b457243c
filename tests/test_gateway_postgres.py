"""The gateway on the real PostgreSQL server (psycopg 3), in a fresh schema of the ``test`` database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import postgres_schema
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



pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_gateway(tmp_path: Path) -> Iterator[Gateway]:
    """A gateway whose database is a new schema on the server (dropped afterwards)."""
    with postgres_schema("ctriage_gateway") as url:
        yield from start_gateway(gateway_settings(tmp_path, database_url=url))


def test_gateway_round_trip_on_postgres(postgres_gateway: Gateway, tmp_path: Path) -> None:
    gw = postgres_gateway
    ingest, clinician, operator = gw.key("ingest"), gw.key("clinician"), gw.key("operator")
    paths = write_series(tmp_path / "ct", n_slices=4, patient_id="PG-1")
    scan = upload(gw.client, ingest, series_files(paths), description="on postgres").json()
    assert scan["n_instances"] == 4 and scan["created_at"].endswith("Z")

    listed = gw.client.get("/api/scans", params={"patient_id": scan["patient_id"]}, headers=clinician).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == scan["id"]
    files = gw.client.get(f"/api/scans/{scan['id']}/file", headers=clinician)
    assert files.status_code == 200 and files.headers["content-type"] == "application/zip"

    run = gw.client.post(f"/api/scans/{scan['id']}/analyze", headers=ingest)
    assert run.status_code == 202
    assert gw.client.get(f"/api/scans/{scan['id']}/report", headers=clinician).status_code == 202
    expected = finish_run(gw, run.json()["run_id"], scan["id"])
    report = gw.client.get(f"/api/scans/{scan['id']}/report", headers=clinician)
    assert report.status_code == 200 and report.json() == expected
    assert gw.client.get("/readyz").json()["checks"]["database"]["ok"] is True

    assert_problem(gw.client.delete(f"/api/scans/{scan['id']}", headers=clinician), 403, "insufficient_role")
    assert gw.client.delete(f"/api/scans/{scan['id']}", headers=operator).status_code == 204
    assert gw.client.get("/api/scans", headers=clinician).json()["total"] == 0
    actions = [e["action"] for e in gw.client.get("/api/audit-events", headers=gw.admin).json()["items"]]
    assert actions[:3] == ["scan.delete", "scan.analyze", "scan.upload"]
