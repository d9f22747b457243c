"""Helpers of the results-back-to-PACS tests: dcmtk's storescp as a PACS, the whole system as processes, polling.

Imported by ``tests/test_export_*.py`` and ``tests/test_orthanc*.py`` (``from export_testkit import ...``).
"""

from __future__ import annotations

import json
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
from shared.dicom.tools import dcmtk_tool

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
    program = dcmtk_tool("storescp")
    if program is None:
        pytest.skip("dcmtk storescp not on PATH: `apt-get install dcmtk` or `make system-deps`")
    out.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([program, "-aet", ae_title, "-od", str(out), str(port)],
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
    wait_until(lambda: _answers(client, "/healthz"), what="a healthy gateway", processes=processes, timeout=120)
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


ORTHANC_AE = "ORTHANC"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def orthanc_binary() -> str:
    """Orthanc's executable (Debian puts it in /usr/sbin); skips, saying how to get it, when absent."""
    found = shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if Path(p).is_file()), None)
    if found is None:
        pytest.skip("Orthanc is not installed: `apt-get install orthanc orthanc-dicomweb` or `make system-deps`")
    return found


@contextmanager
def orthanc(folder: Path, *, modalities: dict[str, tuple[str, int]]) -> Iterator[tuple[httpx.Client, int]]:
    """Orthanc as the hospital PACS, configured in ``folder`` on free ports, knowing ``modalities`` (name: AE, port).

    Yields a REST client and its DICOM port. Its DICOMweb plugin is loaded when installed (``/dicom-web/``).
    """
    binary = orthanc_binary()
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "ctriage-test-pacs", "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
        "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": ORTHANC_AE, "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "DicomCheckCalledAet": True, "DicomAlwaysAllowStore": True,
        "DicomModalities": {name: [ae, "127.0.0.1", port] for name, (ae, port) in modalities.items()},
        "Plugins": [str(DICOMWEB_PLUGIN)] if DICOMWEB_PLUGIN.is_file() else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "SaveJobs": False, "ConcurrentJobs": 2,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orthanc.json").write_text(json.dumps(config))
    with open(folder / "orthanc.log", "wb") as log:
        process = subprocess.Popen([binary, str(folder / "orthanc.json")], cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=60)
    try:
        deadline = time.monotonic() + 60
        while not _answers(client, "/system"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Orthanc did not start:\n{(folder / 'orthanc.log').read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield client, dicom_port
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def orthanc_sop_classes(client: httpx.Client) -> dict[str, int]:
    """How many instances of each SOP Class Orthanc holds (read from each series' first instance)."""
    counts: dict[str, int] = {}
    for series in client.get("/series", params={"expand": ""}).json():
        sop_class = client.get(f"/instances/{series['Instances'][0]}/simplified-tags").json()["SOPClassUID"]
        counts[sop_class] = counts.get(sop_class, 0) + len(series["Instances"])
    return counts


def _answers(client: httpx.Client, path: str) -> bool:
    try:
        return client.get(path, timeout=2).status_code == 200
    except httpx.TransportError:
        return False
