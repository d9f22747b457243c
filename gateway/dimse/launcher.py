"""Run ``ctriage dicom-receiver`` as a child process (tests, benchmarks): start, wait until it listens, stop or kill."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

READY_LINE = "ctriage dicom-receiver: AE"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ReceiverProcess:
    """A receiver child process with ``env`` (``CTRIAGE_*`` overrides) on ``port``; its log goes to ``log_path``."""

    def __init__(self, *, env: dict[str, str], port: int, log_path: Path, cwd: Path | None = None) -> None:
        self.port = port
        self.log_path = log_path
        self._env = {**os.environ, **env, "CTRIAGE_DICOM_PORT": str(port), "PYTHONUNBUFFERED": "1"}
        self._cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 120.0) -> ReceiverProcess:
        """Start the child and return once it accepts connections."""
        started_at = self.log_path.stat().st_size if self.log_path.exists() else 0  # the log may hold earlier runs
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from shared.cli import main; main()", "dicom-receiver"],
            env=self._env, cwd=self._cwd, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the receiver exited with status {self.process.returncode}:\n{self.log()[-3000:]}")
            if READY_LINE.encode() in self.log_path.read_bytes()[started_at:]:
                return self
            time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"the receiver did not start within {timeout} s:\n{self.log()[-3000:]}")

    def stop(self, *, timeout: float = 30.0) -> int:
        """SIGTERM (open associations get a grace period); returns the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int:
        """SIGKILL: the receiver dies at once, as in a crash or an OOM kill."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait()

    def log(self) -> str:
        """Everything the child wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ReceiverProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        if self.process is not None:
            self.stop()
