"""API keys: 401 without or with a bad key, 403 for a role that is too low, key management, audit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gateway_testkit import (
    ADMIN_KEY,
    Gateway,
    assert_problem,
    bearer,
    gateway_settings,
    series_files,
    start_gateway,
    upload,
    write_series,
)
from sqlalchemy import select

from gateway.auth.keys import verify_key
from shared.db.models import ApiKey, AuditEvent, Role, utcnow
from shared.db.session import session_factory

PROTECTED = [
    ("GET", "/api/patients"), ("POST", "/api/patients"), ("GET", "/api/scans"), ("POST", "/api/scans"),
    ("GET", "/api/scans/x"), ("DELETE", "/api/scans/x"), ("GET", "/api/scans/x/report"),
    ("POST", "/inference/predict"), ("GET", "/api/keys"), ("GET", "/api/audit-events"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_endpoint_needs_a_key(gateway: Gateway, method: str, path: str) -> None:
    response = gateway.client.request(method, path)
    assert_problem(response, 401, "missing_api_key")
    assert response.headers["www-authenticate"].startswith("Bearer")
    bad = gateway.client.request(method, path, headers=bearer("ctr_" + "x" * 40))
    assert_problem(bad, 401, "invalid_api_key")


def test_health_needs_no_key(gateway: Gateway) -> None:
    assert gateway.client.get("/healthz").json() == {"status": "ok"}
    ready = gateway.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"database", "broker", "storage"}
    assert all(check["ok"] for check in ready.json()["checks"].values())


def test_readyz_reports_the_failing_dependency(gateway: Gateway) -> None:
    # A file where the store's folder should be: the storage check cannot write any more.
    root = gateway.settings.resolved_storage_dir
    shutil.rmtree(root, ignore_errors=True)
    root.write_text("not a folder")
    body = assert_problem(gateway.client.get("/readyz"), 503, "dependency_unavailable")
    assert body["checks"]["storage"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True and body["checks"]["broker"]["ok"] is True


def test_roles_are_cumulative(gateway: Gateway, tmp_path: Path) -> None:
    ingest, clinician, operator = gateway.key("ingest"), gateway.key("clinician"), gateway.key("operator")
    scan = upload(gateway.client, ingest, series_files(write_series(tmp_path / "ct", n_slices=2))).json()
    assert_problem(gateway.client.get("/api/scans", headers=ingest), 403, "insufficient_role")
    assert gateway.client.get("/api/scans", headers=clinician).status_code == 200
    assert_problem(gateway.client.get(f"/api/scans/{scan['id']}/status", headers=clinician), 403, "insufficient_role")
    assert_problem(gateway.client.post("/api/patients", json={}, headers=clinician), 403, "insufficient_role")
    assert gateway.client.post("/api/patients", json={}, headers=operator).status_code == 201
    assert_problem(gateway.client.get("/api/keys", headers=operator), 403, "insufficient_role")
    assert gateway.client.get("/api/keys", headers=gateway.admin).status_code == 200


def test_keys_are_hashed_at_rest_and_revocable(gateway: Gateway) -> None:
    created = gateway.client.post("/api/keys", json={"name": "pacs", "role": "clinician"}, headers=gateway.admin)
    assert created.status_code == 201
    key = created.json()["key"]
    with session_factory(gateway.settings.resolved_database_url)() as session:
        row = session.get(ApiKey, created.json()["id"])
        assert row is not None and key not in row.key_hash and verify_key(key, row.key_hash)
    assert gateway.client.get("/api/whoami", headers=bearer(key)).json()["role"] == "clinician"

    listed = gateway.client.get("/api/keys", headers=gateway.admin).json()
    assert all("key" not in item for item in listed["items"]) and listed["total"] == 2

    assert gateway.client.delete(f"/api/keys/{created.json()['id']}", headers=gateway.admin).status_code == 204
    assert_problem(gateway.client.get("/api/whoami", headers=bearer(key)), 401, "invalid_api_key")
    assert_problem(gateway.client.delete("/api/keys/unknown", headers=gateway.admin), 404, "key_not_found")


def test_writes_are_audited_with_ids_only(gateway: Gateway, tmp_path: Path) -> None:
    operator, ingest = gateway.key("operator"), gateway.key("ingest")
    patient = gateway.client.post("/api/patients", json={"name": "Secret^Name", "dicom_patient_id": "MRN-99"},
                                  headers=operator).json()
    upload(gateway.client, ingest, series_files(write_series(tmp_path / "ct", n_slices=2)))
    events = gateway.client.get("/api/audit-events", headers=gateway.admin).json()
    actions = [event["action"] for event in events["items"]]  # newest first
    assert actions == ["scan.upload", "patient.create", "key.create", "key.create"]
    assert "Secret" not in str(events) and "MRN-99" not in str(events) and "Doe" not in str(events)
    with session_factory(gateway.settings.resolved_database_url)() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "patient.create")).one()
        assert event.resource_id == patient["id"] and event.api_key_id is not None


def test_first_start_without_bootstrap_key_generates_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for gw in start_gateway(gateway_settings(tmp_path, bootstrap_admin_key="")):
        printed = capsys.readouterr().out
        assert "generated admin API key" in printed
        key = printed.strip().rsplit(" ", 1)[-1]
        assert gw.client.get("/api/whoami", headers=bearer(key)).json()["role"] == "admin"
        assert_problem(gw.client.get("/api/whoami", headers=bearer(ADMIN_KEY)), 401)
    # A second start finds the admin key and prints nothing.
    for _gw in start_gateway(gateway_settings(tmp_path, bootstrap_admin_key="")):
        assert "generated admin API key" not in capsys.readouterr().out
    with session_factory(f"sqlite:///{tmp_path / 'gateway.db'}")() as session:
        assert session.scalars(select(ApiKey).where(ApiKey.role == Role.admin)).all().__len__() == 1


def test_a_key_revoked_by_another_gateway_stops_working_within_the_cache_ttl(gateway: Gateway) -> None:
    created = gateway.client.post("/api/keys", json={"name": "pacs", "role": "ingest"}, headers=gateway.admin).json()
    assert gateway.client.get("/api/whoami", headers=bearer(created["key"])).status_code == 200
    with session_factory(gateway.settings.resolved_database_url)() as session:  # as another process would
        row = session.get(ApiKey, created["id"])
        assert row is not None
        row.revoked_at = utcnow()
        session.commit()
    assert gateway.client.get("/api/whoami", headers=bearer(created["key"])).status_code == 200  # still cached
    cache = gateway.client.app.state.key_cache  # type: ignore[attr-defined]
    cache.ttl = cache.refresh_after = 0.0  # the TTL has passed
    assert_problem(gateway.client.get("/api/whoami", headers=bearer(created["key"])), 401, "invalid_api_key")
