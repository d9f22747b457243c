"""Helpers of the PACS intake tests: the receiver as a real child process, dcmtk as the PACS, the database read back.

Imported by ``tests/test_dimse_*.py`` and ``tests/test_completeness.py`` (``from dimse_testkit import ...``).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import create_engine, func, pool, select

from gateway.dimse.launcher import ReceiverProcess, free_port
from shared.db.migrate import upgrade_database
from shared.db.models import AnalysisRun, Instance, Series, Study
from shared.dicom.tools import dcmtk_program, dcmtk_tool
from shared.dicom.writer import write_ct_series
from shared.phantoms import generate_phantom

AE_TITLE = "CTRIAGE"
PACS_AE = "PACS1"


def require_dcmtk() -> None:
    """Skip, saying why, when dcmtk's tools are not installed (``make test`` installs them)."""
    missing = [tool for tool in ("storescu", "echoscu") if dcmtk_tool(tool) is None]
    if missing:
        pytest.skip(f"dcmtk is not installed ({', '.join(missing)} missing): `apt-get install dcmtk` or `make system-deps`")


def receiver_env(tmp_path: Path, **settings: object) -> dict[str, str]:
    """``CTRIAGE_*`` variables of an embedded deployment in ``tmp_path`` (SQLite, local store, filesystem queue)."""
    values: dict[str, object] = {
        "data_dir": tmp_path / "var",
        "database_url": f"sqlite:///{tmp_path / 'ctriage.db'}",
        "broker_url": "",
        "result_backend": "",
        "storage_backend": "local",
        "storage_fsync": "false",  # the tests check what is stored, not power-loss durability
        "dicom_ae_title": AE_TITLE,
        "dicom_allowed_calling_aes": PACS_AE,
        "completeness_quiet_seconds": 3,
        "completeness_scan_seconds": 0.5,
        "auto_analyze_min_instances": 5,
        "log_level": "INFO",
    }
    values.update(settings)
    return {f"CTRIAGE_{name.upper()}": str(value) for name, value in values.items()}


def start_receiver(tmp_path: Path, **settings: object) -> ReceiverProcess:
    """``ctriage dicom-receiver`` running on a free port with :func:`receiver_env`; its log is ``tmp_path/receiver.log``."""
    return ReceiverProcess(env=receiver_env(tmp_path, **settings), port=free_port(), log_path=tmp_path / "receiver.log").start()


def storescu(
    port: int, *paths: Path, calling: str = PACS_AE, called: str = AE_TITLE, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """dcmtk's ``storescu`` sending ``paths`` (files or folders) over one association; ``-nh``: go on after a failure."""
    command = [dcmtk_program("storescu"), "-v", "-nh", "-aet", calling, "-aec", called, *options, "+sd", "127.0.0.1", str(port)]
    return subprocess.run(
        [*command, *map(str, paths)], capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "TCP_NODELAY": "1"},
    )


def phantom_study(folder: Path, *, seed: int, n_slices: int = 12, size: int = 64) -> list[Path]:
    """A phantom chest CT (one study, one series) written as CT Image Storage files."""
    phantom = generate_phantom(seed=seed, shape=(n_slices, size, size))
    return write_ct_series(phantom.volume, folder, uid_entropy=f"dimse-test-{seed}")


@dataclass(frozen=True)
class StoredSeries:
    """A series as the database holds it."""

    id: str
    study_instance_uid: str
    series_instance_uid: str
    source: str
    n_instances: int
    instance_rows: int
    completed_at: datetime | None
    runs: int


class Database:
    """Read-only views of the receiver's database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = create_engine(url, poolclass=pool.NullPool)

    def series(self) -> list[StoredSeries]:
        """Every series, with its instance rows and runs counted."""
        instances = select(func.count()).where(Instance.series_pk == Series.id).scalar_subquery()
        runs = select(func.count()).where(AnalysisRun.series_pk == Series.id).scalar_subquery()
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(Series.id, Study.study_instance_uid, Series.series_instance_uid, Series.source, Series.n_instances,
                       instances, Series.completed_at, runs)
                .join(Study, Study.id == Series.study_pk)
                .order_by(Study.study_instance_uid, Series.series_instance_uid)
            ).all()
        return [StoredSeries(*row) for row in rows]

    def run_ids(self, series_id: str) -> list[str]:
        """The ids of the series' analysis runs, oldest first."""
        with self._engine.connect() as connection:
            return list(connection.scalars(
                select(AnalysisRun.id).where(AnalysisRun.series_pk == series_id).order_by(AnalysisRun.created_at)
            ))

    def storage_keys(self) -> list[str]:
        """The object key of every instance row."""
        return list(self.checksums())

    def checksums(self) -> dict[str, str | None]:
        """The SHA-256 each instance row records, by object key."""
        with self._engine.connect() as connection:
            return dict(connection.execute(select(Instance.storage_key, Instance.sha256)).tuples().all())

    def wait_until(self, condition, *, timeout: float = 90.0, what: str = "condition") -> list[StoredSeries]:  # type: ignore[no-untyped-def]
        """Poll :meth:`series` until ``condition(series)`` holds; fails the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            series = self.series()
            if condition(series):
                return series
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}: {series}")
            time.sleep(0.25)

    def close(self) -> None:
        self._engine.dispose()


def database_of(tmp_path: Path) -> Database:
    """The database :func:`receiver_env` points at, migrated (the receiver migrates it too)."""
    url = f"sqlite:///{tmp_path / 'ctriage.db'}"
    upgrade_database(url)
    return Database(url)


def dataset_bytes(path: Path) -> bytes:
    """The bytes of a Part 10 file after its File Meta Information: the data set as encoded."""
    raw = path.read_bytes()
    meta_length = pydicom.dcmread(path, stop_before_pixels=True).file_meta.FileMetaInformationGroupLength
    return raw[132 + 12 + meta_length:]
