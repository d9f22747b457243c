"""Helpers of the results-back-to-PACS tests: dcmtk's storescp as a PACS, the whole system as processes, polling.

Imported by ``tests/test_export_*.py`` and ``tests/test_orthanc*.py`` (``from export_testkit import ...``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom import dcmread

from pipeline_testkit import Processes, settings_env
from servers import free_port
from shared.config import Settings

ADMIN_KEY = "ctr_export-admin-key-0123456789abcdefghijklmn"
SEG, SR_3D, SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.7"


def wait_for_port(port: int, *, timeout: float = 20.0) -> None:
    """Return once something accepts TCP connections on loopback ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"nothing listens on port {port} after {timeout:.0f} s")


@contextmanager
def storescp(out: Path, port: int, ae_title: str = "HOSPITALPACS") -> Iterator[Path]:
    """dcmtk's storescp on ``port`` (any calling AE) writing what it receives to ``out``."""
    if shutil.which("storescp") is None:
        pytest.skip("dcmtk storescp not on PATH: `apt-get install dcmtk` or `make system-deps`")
    out.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(["storescp", "-aet", ae_title, "-od", str(out), str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield out
    finally:
        process.terminate()
        process.wait(10)


def sop_classes(folder: Path) -> list[str]:
    """The SOP Class UIDs of the DICOM files in ``folder``, sorted."""
    return sorted(str(dcmread(path, stop_before_pixels=True).SOPClassUID) for path in folder.iterdir() if path.is_file())


def system_settings(root: Path, **values: Any) -> Settings:
    """Embedded settings (SQLite, local store, filesystem queue) under ``root`` with a known admin key."""
    return Settings(_env_file=None, data_dir=root / "var", bootstrap_admin_key=ADMIN_KEY, api_host="127.0.0.1",  # type: ignore[call-arg]
                    api_port=free_port(), stage_time_limit_seconds=300, storage_fsync=False, **values)


def system_env(settings: Settings) -> dict[str, str]:
    """The child environment of ``settings``, with every export and DICOM setting too."""
    env = settings_env(settings)
    for name in Settings.model_fields:
        if name.startswith(("export_", "dicom_", "completeness_", "auto_analyze")):
            env[f"CTRIAGE_{name.upper()}"] = str(getattr(settings, name))
    return env


def start_system(processes: Processes, settings: Settings) -> httpx.Client:
    """Gateway, the three stage workers and the export worker as real processes; a client with the admin key."""
    env = system_env(settings)
    processes.start_workers(env)
    processes.start("export", ["worker", "export"], env)
    processes.start("api", ["api", "--host", "127.0.0.1", "--port", str(settings.api_port), "--no-migrate"], env)
    client = httpx.Client(base_url=f"http://127.0.0.1:{settings.api_port}", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60)
    wait_until(lambda: _healthy(client), what="a healthy gateway", processes=processes, timeout=120)
    return client


def wait_until(condition: Callable[[], Any], *, what: str, processes: Processes, timeout: float = 240.0) -> Any:
    """Poll ``condition`` until it returns something truthy, which is returned; fails with the logs on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    logs = "\n".join(f"--- {name} ---\n{processes.tail(name, 30)}" for name, _ in processes.children)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")


def exports_by_destination(client: httpx.Client, scan_id: str) -> dict[str, dict]:
    """``GET /api/scans/{id}/exports``, keyed by destination."""
    response = client.get(f"/api/scans/{scan_id}/exports")
    assert response.status_code == 200, response.text
    return {item["destination"]: item for item in response.json()["items"]}


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
