"""``ctriage run``: the embedded system starts, shows a working admin key, and Ctrl-C stops every process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from servers import free_port
from shared.embedded import ctriage_argv

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
BANNER_END = "Press Ctrl-C to stop."


def test_run_starts_everything_prints_a_usable_admin_key_and_stops_on_ctrl_c(tmp_path: Path):
    port, dicom_port = free_port(), free_port()
    data_dir = tmp_path / "embedded-var"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CTRIAGE_")}
    env.update(CTRIAGE_DATA_DIR=str(data_dir), CTRIAGE_API_PORT=str(port), CTRIAGE_DICOM_PORT=str(dicom_port), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(ctriage_argv("run"), env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = _read_until(process, BANNER_END, timeout=180)
        key = re.search(r"admin API key\s*:\s*(ctr_\S+)", output)
        assert key, output
        assert f"http://127.0.0.1:{port}/docs" in output
        assert len(_processes_using(data_dir)) >= 4  # gateway and three workers (plus pool children)
        response = httpx.get(f"http://127.0.0.1:{port}/api/scans", headers={"Authorization": f"Bearer {key.group(1)}"}, timeout=10)
        assert response.status_code == 200, response.text

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    deadline = time.monotonic() + 10
    while _processes_using(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_using(data_dir) == []


def _read_until(process: subprocess.Popen[str], marker: str, *, timeout: float) -> str:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            # Keep draining the children's output so they never block on a full pipe.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return "".join(lines)
    pytest.fail("ctriage run did not finish starting:\n" + "".join(lines[-60:]))


def _processes_using(data_dir: Path) -> list[int]:
    """Pids of live processes whose environment names ``data_dir`` (ours and nobody else's)."""
    needle = f"CTRIAGE_DATA_DIR={data_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes() and (entry / "stat").read_text().split()[2] != "Z":
                found.append(int(entry.name))
        except OSError:
            continue
    return found
