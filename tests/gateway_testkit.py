"""Helpers of the gateway tests: a real app on SQLite in ``tmp_path``, a local store, real keys.

Imported by the ``test_gateway_*`` modules (``from gateway_testkit import ...``); the ``gateway``
fixture itself is in ``conftest.py`` and starts :func:`start_gateway`.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import make_url

from gateway.main import create_app
from shared.config import Settings
from shared.db.migrate import upgrade_database
from shared.db.models import Series
from shared.db.session import session_factory
from shared.dicom.volume import Volume, VolumeMeta
from shared.dicom.writer import write_ct_series

ADMIN_KEY = "ctr_test-admin-key-0123456789abcdefghijklmnop"
PROBLEM = "application/problem+json"


def gateway_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Embedded settings rooted in ``tmp_path`` (SQLite, local store, filesystem broker); no .env read."""
    values: dict[str, object] = {
        "data_dir": tmp_path / "var",
        "database_url": f"sqlite:///{tmp_path / 'gateway.db'}",
        "broker_url": "",
        "storage_backend": "local",
        "bootstrap_admin_key": ADMIN_KEY,
        "predict_wait_seconds": 1.0,
        "report_cache_seconds": 0.0,  # tests finish runs behind the gateway's back; see test_report_answers_are_reused
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Gateway:
    """A running test gateway and its admin's headers."""

    client: TestClient
    settings: Settings

    @property
    def admin(self) -> dict[str, str]:
        return bearer(ADMIN_KEY)

    def key(self, role: str) -> dict[str, str]:
        """Headers carrying a new key of ``role``, created through the API."""
        response = self.client.post("/api/keys", json={"name": f"test {role}", "role": role}, headers=self.admin)
        assert response.status_code == 201, response.text
        return bearer(response.json()["key"])


def bearer(key: str) -> dict[str, str]:
    """The Authorization header of ``key``."""
    return {"Authorization": f"Bearer {key}"}


_MIGRATED_SQLITE: list[Path] = []  # one migrated database per test session, copied for each test


def migrate(url: str) -> None:
    """Bring the test database at ``url`` to the newest schema (a copy of a migrated file for SQLite)."""
    database = make_url(url).database
    if not url.startswith("sqlite") or not database:
        upgrade_database(url)
        return
    if not _MIGRATED_SQLITE:
        template = Path(tempfile.mkdtemp(prefix="ctriage-gateway-schema-")) / "migrated.db"
        upgrade_database(f"sqlite:///{template}")
        _MIGRATED_SQLITE.append(template)
    shutil.copyfile(_MIGRATED_SQLITE[0], database)


def start_gateway(settings: Settings) -> Iterator[Gateway]:
    """Migrate the database, start the app (lifespan included) and yield it."""
    migrate(settings.resolved_database_url)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Gateway(client=client, settings=settings)


def finish_run(gateway: Gateway, run_id: str, scan_id: str) -> dict:
    """Run the three stages in process on the stored series and record the report, as the workers do."""
    from shared.pipeline.inprocess import (
        analyze_in_process,  # the worker-side code: loaded only when used
    )
    from shared.pipeline.runs import record_report

    store = gateway.client.app.state.store  # type: ignore[attr-defined]
    with session_factory(gateway.settings.resolved_database_url)() as session:
        series = session.get(Series, scan_id)
        assert series is not None
        report = analyze_in_process(store=store, source_prefix=series.storage_prefix, run_id=run_id, series_id=scan_id)
        record_report(session=session, run_id=run_id, report=report)
        session.commit()
    return report.model_dump(mode="json")


def ct_volume(
    *, n_slices: int = 6, size: int = 32, seed: int = 0, patient_id: str = "PAT-1", study_uid: str = ""
) -> Volume:
    """A small synthetic CT volume (noise around soft tissue) with patient tags."""
    rng = np.random.default_rng(seed)
    hu = rng.normal(40, 30, size=(n_slices, size, size)).astype(np.int16)
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    meta = VolumeMeta(
        study_instance_uid=study_uid, patient_id=patient_id, patient_name="Doe^Jane", patient_birth_date="19700101",
        patient_sex="F", body_part_examined="CHEST",
    )
    return Volume(hu=hu, affine=affine, meta=meta)


def write_series(folder: Path, **kwargs: object) -> list[Path]:
    """A synthetic CT series written with the project's DICOM writer; extra kwargs are DICOM overrides."""
    volume_kwargs = {k: kwargs.pop(k) for k in ("n_slices", "size", "seed", "patient_id", "study_uid") if k in kwargs}
    return write_ct_series(ct_volume(**volume_kwargs), folder, **kwargs)  # type: ignore[arg-type]


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive of ``name -> bytes``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload(
    client: TestClient, headers: dict[str, str], files: list[tuple[str, bytes]], url: str = "/api/scans", **fields: str
):  # type: ignore[no-untyped-def]
    """POST files (name, bytes) as repeated ``files`` multipart fields."""
    multipart = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return client.post(url, files=multipart, data=fields or None, headers=headers)


def series_files(paths: list[Path]) -> list[tuple[str, bytes]]:
    """(name, bytes) of files on disk."""
    return [(path.name, path.read_bytes()) for path in paths]


def assert_problem(response, status: int, reason: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    """Check an RFC 7807 answer and return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:ctriage:problem:")
    assert body["title"]
    if reason is not None:
        assert body.get("reason") == reason, body
    return body
