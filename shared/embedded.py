"""``ctriage run`` (``make run``): the whole system on one machine, as real processes.

Upgrades the database, then starts the gateway (``ctriage api``), one Celery worker per stage
(``ctriage worker gate|screen|localize``), the export worker (``ctriage worker export``: results back
to PACS) and the DICOM receiver as child processes sharing this process's settings. With
no ``CTRIAGE_*`` URLs set that is SQLite, a local-folder store and kombu's filesystem transport under
``CTRIAGE_DATA_DIR``; pointed at PostgreSQL, Redis and S3 the same command runs against them.
Children's output is prefixed with their name. Ctrl-C or SIGTERM stops everything (SIGTERM to
each child: Celery finishes its current task, uvicorn drains; SIGKILL after a grace period); if a
child dies, the others are stopped too and the exit status is non-zero.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import click

from shared.config import Settings, get_settings
from shared.contracts import STAGES

GRACE_SECONDS = 20.0
READY_TIMEOUT_SECONDS = 120.0


@dataclass
class Child:
    """A started child process and the name its output lines carry."""

    name: str
    process: subprocess.Popen[bytes]


@click.command("run")
@click.option("--host", default=None, help="Gateway bind address (default CTRIAGE_API_HOST).")
@click.option("--port", type=int, default=None, help="Gateway port (default CTRIAGE_API_PORT).")
@click.option("--concurrency", type=int, default=1, show_default=True, help="Child processes per stage worker.")
def run_command(host: str | None, port: int | None, concurrency: int) -> None:
    """Start the gateway, the three stage workers, the export worker and the DICOM receiver; Ctrl-C stops them all."""
    settings = get_settings()
    host, port = host or settings.api_host, port or settings.api_port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = child_environment(settings)

    from shared.db.migrate import upgrade_database

    upgrade_database(settings.resolved_database_url)
    admin_key = _bootstrap_admin_key(settings)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    children = [_start("api", ["api", "--host", host, "--port", str(port), "--no-migrate"], env)]
    children += [_start(stage.value, ["worker", stage.value, "--concurrency", str(concurrency), "--quiet"], env) for stage in STAGES]
    children.append(_start("export", ["worker", "export", "--quiet"], env))  # its own threads: a slow PACS waits there
    children.append(_start("dicom", ["dicom-receiver", "--no-migrate"], env))  # C-STORE intake + completeness scanner
    exit_code = 0
    try:
        base_url = f"http://{_browser_host(host)}:{port}"
        if _wait_ready(f"{base_url}/healthz", children, stop):
            click.echo(_banner(settings=settings, base_url=base_url, admin_key=admin_key))
        while not stop.is_set():
            dead = next((child for child in children if child.process.poll() is not None), None)
            if dead is not None:
                click.echo(f"ctriage run: {dead.name} exited with status {dead.process.returncode}; stopping", err=True)
                exit_code = 1
                break
            stop.wait(0.5)
    finally:
        click.echo("ctriage run: stopping ...", err=True)
        stop_children(children)
    sys.exit(exit_code)


def child_environment(settings: Settings) -> dict[str, str]:
    """This process's environment with the data folder made absolute, so every child agrees on it."""
    env = dict(os.environ)
    env["CTRIAGE_DATA_DIR"] = str(settings.data_dir.resolve())
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def ctriage_argv(*arguments: str) -> list[str]:
    """The command line that runs ``ctriage ARGUMENTS`` with this interpreter."""
    return [sys.executable, "-c", "from shared.cli import main; main()", *arguments]


def stop_children(children: list[Child], *, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM every running child, SIGKILL its whole process group if still alive after ``grace``.

    Only the child's main process gets SIGTERM: Celery then stops its pool itself (warm shutdown,
    the current task finishes) and uvicorn drains its connections.
    """
    for child in children:
        if child.process.poll() is None:
            child.process.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_group(child)
            child.process.wait()


def _start(name: str, arguments: list[str], env: dict[str, str]) -> Child:
    # A session of its own: the terminal's Ctrl-C reaches only this process, which then stops the
    # children in order instead of all of them racing on SIGINT.
    process = subprocess.Popen(
        ctriage_argv(*arguments), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    threading.Thread(target=_relay, args=(name, process), daemon=True).start()
    return Child(name=name, process=process)


def _relay(name: str, process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    for line in iter(process.stdout.readline, b""):
        sys.stdout.write(f"[{name:>8}] {line.decode(errors='replace')}")
        sys.stdout.flush()


def _kill_group(child: Child) -> None:
    try:
        os.killpg(child.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _bootstrap_admin_key(settings: Settings) -> str | None:
    """Create the first admin key here (not in the gateway child) so the banner can show it."""
    from gateway.auth.service import ensure_bootstrap_admin_key
    from shared.db.session import session_factory

    with session_factory(settings.resolved_database_url)() as session:
        return ensure_bootstrap_admin_key(session=session, settings=settings)


def _wait_ready(url: str, children: list[Child], stop: threading.Event) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline and not stop.is_set():
        if any(child.process.poll() is not None for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        stop.wait(0.5)
    return False


def _browser_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _export_targets(settings: Settings) -> str:
    return ", ".join(filter(None, (settings.export_cstore_destinations, settings.export_stow_urls)))


def _banner(*, settings: Settings, base_url: str, admin_key: str | None) -> str:
    if admin_key:
        key_line = f"{admin_key}   <- generated now and shown only once: store it"
    elif settings.bootstrap_admin_key:
        key_line = "the value of CTRIAGE_BOOTSTRAP_ADMIN_KEY"
    else:
        key_line = "created on an earlier start (shown then); manage keys at /api/keys"
    broker = settings.broker_url.split("@")[-1] if settings.broker_url else f"filesystem ({settings.data_dir.resolve() / 'queue'})"
    database = settings.resolved_database_url.split("@")[-1]
    storage = settings.resolved_storage_dir if settings.storage_backend == "local" else f"s3 {settings.s3_endpoint}/{settings.s3_bucket}"
    rule = "=" * 78
    return "\n".join([
        rule,
        "ctriage is running",
        f"  open in a browser : {base_url}/docs",
        f"  API base URL      : {base_url}/api",
        f"  admin API key     : {key_line}",
        "                      send it as 'Authorization: Bearer <key>'",
        f"  DICOM C-STORE     : AE {settings.dicom_ae_title} on {settings.dicom_host}:{settings.dicom_port}"
        f" (calling AEs allowed: {settings.dicom_allowed_calling_aes or 'none: set CTRIAGE_DICOM_ALLOWED_CALLING_AES'})",
        f"  database          : {database}",
        f"  queue             : {broker}",
        f"  object storage    : {storage}",
        "  workers           : gate, screen, localize, export"
        f" (results to PACS: {_export_targets(settings) or 'none: set CTRIAGE_EXPORT_CSTORE_DESTINATIONS / _STOW_URLS'})",
        "Press Ctrl-C to stop.",
        rule,
    ])
