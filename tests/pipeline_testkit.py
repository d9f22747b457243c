"""Helpers of the pipeline and end-to-end tests: phantom studies in a store, worker processes, polling.

Imported by ``test_pipeline_*`` and ``test_e2e_*`` (``from pipeline_testkit import ...``).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage
from sqlalchemy.orm import Session, sessionmaker

from shared.anatomy import LEFT_LUNG, RIGHT_LUNG, label_of
from shared.config import Settings, get_settings
from shared.contracts import STAGES
from shared.db.models import TERMINAL_STATES, AnalysisRun, Series, Study
from shared.dicom.volume import Volume
from shared.dicom.writer import write_ct_series
from shared.embedded import Child, ctriage_argv, stop_children
from shared.storage.base import ObjectStore

REPO = Path(__file__).resolve().parents[1]

SMALL_SHAPE = (96, 160, 160)
"""(nz, ny, nx) of the test phantoms: small enough for CI's two cores, big enough for the gate."""

TEST_MAX_PIXEL_MM = "4.0"
"""The gate refuses pixels coarser than 1.5 mm; these phantoms' are ~2.9 mm (their field of view is
~460 mm), so pipeline tests, in this process and in the workers they start, allow coarser ones."""
os.environ.setdefault("CTRIAGE_GATE_MAX_PIXEL_MM", TEST_MAX_PIXEL_MM)
get_settings.cache_clear()  # a test module imported before this one may have read the settings already


def phantom(*, seed: int, pathologies: Iterable[str] = (), shape: tuple[int, int, int] = SMALL_SHAPE):  # type: ignore[no-untyped-def]
    """A synthetic chest CT with ground truth (:class:`shared.phantoms.Phantom`)."""
    from shared.phantoms import generate_phantom

    return generate_phantom(seed=seed, shape=shape, pathologies=tuple(pathologies))


def write_series(volume: Volume, folder: Path) -> list[Path]:
    """Write ``volume`` as a DICOM CT series into ``folder``."""
    return write_ct_series(volume, folder, uid_entropy=str(folder))


def put_series(store: ObjectStore, files: list[Path], prefix: str) -> str:
    """Store DICOM ``files`` under ``prefix``; returns the prefix with its trailing ``/``."""
    prefix = prefix.rstrip("/") + "/"
    for path in files:
        store.put_file(prefix + path.name, str(path))
    return prefix


def record_series(session: Session, *, prefix: str, study_uid: str, series_uid: str, modality: str = "CT") -> Series:
    """A Study/Series row pointing at instances already stored under ``prefix`` (bypasses upload checks)."""
    study = Study(study_instance_uid=study_uid)
    session.add(study)
    session.flush()
    series = Series(study_pk=study.id, series_instance_uid=series_uid, modality=modality, storage_prefix=prefix, source="upload")
    session.add(series)
    session.commit()
    return series


def wait_for_run(sessions: sessionmaker[Session], run_id: str, *, timeout: float = 300.0) -> AnalysisRun:
    """Poll the database until the run is terminal; AssertionError with its last state on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        with sessions() as session:
            run = session.get(AnalysisRun, run_id)
            assert run is not None, f"run {run_id} disappeared"
            if run.state in TERMINAL_STATES or time.monotonic() > deadline:
                session.expunge(run)
                break
        time.sleep(0.5)
    assert run.state in TERMINAL_STATES, f"run {run_id} still {run.state.value} at stage {run.stage}: {run.stages}"
    return run


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that make a child process use ``settings``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CTRIAGE_")}
    values = {
        "DATA_DIR": str(settings.data_dir.resolve()),
        "DATABASE_URL": settings.resolved_database_url,
        "BROKER_URL": settings.broker_url,
        "RESULT_BACKEND": settings.result_backend,
        "STORAGE_BACKEND": settings.storage_backend,
        "S3_ENDPOINT": settings.s3_endpoint,
        "S3_ACCESS_KEY": settings.s3_access_key,
        "S3_SECRET_KEY": settings.s3_secret_key,
        "S3_BUCKET": settings.s3_bucket,
        "S3_SECURE": str(settings.s3_secure).lower(),
        "S3_REGION": settings.s3_region,
        "BOOTSTRAP_ADMIN_KEY": settings.bootstrap_admin_key,
        "STAGE_TIME_LIMIT_SECONDS": str(settings.stage_time_limit_seconds),
        "STAGE_MAX_RETRIES": str(settings.stage_max_retries),
        "API_PORT": str(settings.api_port),
        "API_HOST": settings.api_host,
        "GATE_BACKEND": settings.gate_backend,
        "GATE_MAX_PIXEL_MM": str(settings.gate_max_pixel_mm),
    }
    env.update({f"CTRIAGE_{key}": value for key, value in values.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Processes:
    """Child processes started by a test, with their log files (shown when a test fails)."""

    logs: Path
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, arguments: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``ctriage ARGUMENTS`` with its output in ``logs/NAME.log``."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "wb") as log:
            process = subprocess.Popen(ctriage_argv(*arguments), env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append((name, process))
        return process

    def start_workers(self, env: dict[str, str]) -> None:
        """One real Celery worker process per stage queue."""
        for stage in STAGES:
            self.start(stage.value, ["worker", stage.value], env)

    def check_alive(self) -> None:
        """AssertionError with the log of the first child that exited."""
        for name, process in self.children:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 60) -> str:
        """The last lines of a child's log."""
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        """Stop every child as ``ctriage run`` does (SIGTERM, then SIGKILL of its group)."""
        stop_children([Child(name=name, process=process) for name, process in self.children])


def with_round_lesion(phantom, *, side: str, diameter_mm: float, hu: float = 40.0, seed: int = 0) -> tuple[Volume, np.ndarray]:
    """A copy of ``phantom``'s volume with a solid round lesion deep in one lung; returns it and the LPS centre.

    The centre is the voxel of that lung (ground-truth lobes) farthest from anything else, so the
    lesion is surrounded by lung parenchyma: the case every screener, the baseline included, must flag.
    """
    lobes = LEFT_LUNG if side == "left" else RIGHT_LUNG
    volume = phantom.volume
    spacing_kji = np.asarray(volume.spacing[::-1])
    lung = np.isin(phantom.labels, [label_of(name) for name in lobes + ("lung_vessels",)])
    depth = ndimage.distance_transform_edt(lung, sampling=spacing_kji)
    k, j, i = np.unravel_index(int(np.argmax(depth)), depth.shape)
    grid = np.indices(volume.shape, dtype=np.float32)
    distance = np.sqrt(sum(((grid[axis] - centre) * spacing_kji[axis]) ** 2 for axis, centre in enumerate((k, j, i))))
    sphere = distance <= diameter_mm / 2
    noise = np.random.default_rng(seed).normal(0.0, 15.0, size=int(sphere.sum()))
    hu_array = volume.hu.copy()
    hu_array[sphere] = np.round(hu + noise).astype(hu_array.dtype)
    lesioned = Volume(hu=hu_array, affine=volume.affine.copy(), meta=volume.meta, warnings=list(volume.warnings))
    return lesioned, volume.index_to_lps(np.array([i, j, k], dtype=float))
