"""Gateway speed: report-polling latency at a fixed request rate, and upload throughput of a CT study.

The gateway runs as ``ctriage api`` (uvicorn, one worker) in a subprocess on an embedded setup in a
temporary folder (SQLite, local store, filesystem broker); no pipeline worker runs.

* Polling: an open-loop asyncio client (a minimal keep-alive HTTP/1.1 client over 32 connections,
  cheaper than httpx so the client does not eat the CPU the server needs) sends ``GET /api/scans/{id}/report`` at ``--rate`` req/s
  for ``--seconds``; each latency is measured from the request's *scheduled* time, so a server (or
  client) that falls behind shows up in the tail instead of lowering the rate. Two cases: a finished
  report (200; the report was produced by running the real pipeline stages in process on a small
  phantom, as a worker would) and a run still queued (202). Each is measured with the gateway's
  1-second reuse of report answers (the default; pollers of one scan share them) and without it
  (``CTRIAGE_REPORT_CACHE_SECONDS=0``: every request runs the database query, as when thousands of
  pollers each watch their own scan).
* Upload: ``POST /api/scans`` of a 300-slice 512x512 phantom series, as 300 ``.dcm`` parts and as
  one zip, sent by curl (C, so the client is not the bottleneck); MB/s = DICOM bytes / wall time of
  the request, which includes validation, storing every instance and the database rows.

Targets (issue 3 §7): polling p99 <= 25 ms at 200 req/s; upload >= 100 MB/s.

Run: ``.venv/bin/python -m bench.bench_api [--rate 200] [--seconds 15] [--slices 300] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.memory import peak_rss_mb

ADMIN_KEY = "ctr_bench-admin-key-0123456789abcdefghijklmnop"
POLL_TARGET_P99_MS = 25.0
UPLOAD_TARGET_MBPS = 100.0


@dataclass
class Gateway:
    """A ``ctriage api`` subprocess and how to reach it."""

    process: subprocess.Popen[bytes]
    url: str
    env: dict[str, str]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def peak_rss_mb(self) -> float:
        """The server process's peak resident set (VmHWM)."""
        return peak_rss_mb(self.process.pid)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gateway(root: Path, **settings: str) -> Gateway:
    """Start ``ctriage api`` on a free port with its state under ``root``; wait until it answers.

    ``settings`` are extra ``CTRIAGE_*`` values by field name (e.g. ``report_cache_seconds="0"``).
    """
    port = _free_port()
    env = {
        **os.environ,
        "CTRIAGE_DATA_DIR": str(root / "var"),
        "CTRIAGE_DATABASE_URL": "",
        "CTRIAGE_BROKER_URL": "",
        "CTRIAGE_STORAGE_BACKEND": "local",
        "CTRIAGE_STORAGE_DIR": "",
        "CTRIAGE_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CTRIAGE_MAX_UPLOAD_BYTES": str(8 * 1024**3),
        **{f"CTRIAGE_{name.upper()}": value for name, value in settings.items()},
    }
    env.pop("CTRIAGE_STORAGE_DIR")
    log = root / f"gateway-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-c", "from shared.cli import main; main()", "api", "--port", str(port)],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=root,  # noqa: SIM115
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Gateway(process=process, url=url, env=env, log=log)
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("gateway did not start within 60 s")


def _key(gateway: Gateway, role: str) -> dict[str, str]:
    response = httpx.post(f"{gateway.url}/api/keys", json={"name": f"bench {role}", "role": role},
                          headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['key']}"}


def write_phantom_series(folder: Path, *, shape: tuple[int, int, int], seed: int, pathologies: tuple[str, ...] = ()) -> list[Path]:
    """A synthetic chest CT phantom written as a DICOM CT series."""
    from shared.dicom.writer import write_ct_series
    from shared.phantoms import generate_phantom

    volume = generate_phantom(seed=seed, shape=shape, pathologies=pathologies).volume
    return write_ct_series(volume, folder, uid_entropy=f"bench-api-{seed}-{shape}")


def curl_upload(gateway: Gateway, headers: dict[str, str], files: list[Path]) -> tuple[float, str]:
    """POST ``files`` to /api/scans with curl; returns (seconds, scan id)."""
    command = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code} %{time_total}", "-H", f"Authorization: {headers['Authorization']}"]
    for path in files:
        command += ["-F", f"files=@{path};type=application/octet-stream"]
    started = time.perf_counter()
    result = subprocess.run([*command, f"{gateway.url}/api/scans"], capture_output=True, check=True)
    elapsed = time.perf_counter() - started
    body, _, status_line = result.stdout.decode().rpartition("\n")
    if not status_line.startswith("201"):
        raise RuntimeError(f"upload failed: {status_line} {body[:500]}")
    return elapsed, json.loads(body)["id"]


def bench_upload(gateway: Gateway, folder: Path, *, slices: int, repeats: int) -> list[tuple[str, float, float]]:
    """Upload rows: (case, MB, best MB/s, median MB/s)."""
    files = write_phantom_series(folder / "upload", shape=(slices, 512, 512), seed=7)
    archive = folder / "study.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as out:
        for path in files:
            out.write(path, path.name)
    megabytes = sum(p.stat().st_size for p in files) / 1e6
    ingest, operator = _key(gateway, "ingest"), _key(gateway, "operator")
    rows = []
    for case, parts in ((f"{slices} .dcm parts", files), ("one zip", [archive])):
        rates = []
        for _ in range(repeats):
            seconds, scan_id = curl_upload(gateway, ingest, parts)
            rates.append(megabytes / seconds)
            # Delete, so the next upload stores everything again instead of finding duplicates.
            httpx.delete(f"{gateway.url}/api/scans/{scan_id}", headers=operator, timeout=60).raise_for_status()
        rows.append((case, megabytes, max(rates), statistics.median(rates)))
    shutil.rmtree(folder / "upload")
    return rows


def finished_scan(gateway: Gateway, folder: Path) -> str:
    """A scan whose analysis has ended, its report made by the real pipeline stages run in process."""
    from shared.config import Settings
    from shared.db.models import Series
    from shared.db.session import session_factory
    from shared.pipeline.inprocess import analyze_in_process
    from shared.pipeline.runs import record_report
    from shared.storage.factory import store_from_settings

    files = write_phantom_series(folder / "small", shape=(96, 160, 160), seed=3, pathologies=("solid_nodule",))
    ingest = _key(gateway, "ingest")
    _, scan_id = curl_upload(gateway, ingest, files)
    run_id = httpx.post(f"{gateway.url}/api/scans/{scan_id}/analyze", headers=ingest).json()["run_id"]
    settings = Settings(_env_file=None, data_dir=Path(gateway.env["CTRIAGE_DATA_DIR"]))  # type: ignore[call-arg]
    with session_factory(settings.resolved_database_url)() as session:
        series = session.get(Series, scan_id)
        assert series is not None
        report = analyze_in_process(store=store_from_settings(settings), source_prefix=series.storage_prefix,
                                    run_id=run_id, series_id=scan_id)
        record_report(session=session, run_id=run_id, report=report)
        session.commit()
    return scan_id


def queued_scan(gateway: Gateway, folder: Path) -> str:
    """A scan analyzed once, its run still queued (no worker runs): its report answers 202."""
    ingest = _key(gateway, "ingest")
    _, scan_id = curl_upload(gateway, ingest, write_phantom_series(folder / "queued", shape=(96, 160, 160), seed=4))
    httpx.post(f"{gateway.url}/api/scans/{scan_id}/analyze", headers=ingest).raise_for_status()
    return scan_id


class _Connection:
    """One keep-alive HTTP/1.1 connection: a minimal client, so the load generator costs far less than the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self, request: bytes) -> int:
        """Send a prepared GET and read the whole response; returns its status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(head[9:12])


def _raw_get(url: str, headers: dict[str, str]) -> tuple[httpx.URL, bytes]:
    """The URL parsed and the bytes of an HTTP/1.1 GET for it (sent as is, to measure the server only)."""
    parsed = httpx.URL(url)
    request = (
        f"GET {parsed.raw_path.decode()} HTTP/1.1\r\nHost: {parsed.host}:{parsed.port}\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        + "\r\n"
    ).encode()
    return parsed, request


async def _poll(url: str, headers: dict[str, str], *, rate: float, seconds: float, connections: int = 32) -> tuple[list[float], dict[int, int], float]:
    """Open-loop GETs at ``rate``/s; returns latencies (ms, from scheduled time), status counts, achieved rate."""
    parsed, request = _raw_get(url, headers)
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(_Connection(*await asyncio.open_connection(parsed.host, parsed.port)))
    for _ in range(connections):  # warm-up: every connection, the key cache, the database pages
        connection = pool.get_nowait()
        await connection.get(request)
        pool.put_nowait(connection)

    total = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def one(scheduled: float) -> None:
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        connection = await pool.get()  # waiting for a free connection counts: it is queueing
        try:
            status = await connection.get(request)
        finally:
            pool.put_nowait(connection)
        latencies.append((time.perf_counter() - scheduled) * 1000)
        statuses[status] = statuses.get(status, 0) + 1

    start = time.perf_counter() + 0.1
    await asyncio.gather(*(one(start + i / rate) for i in range(total)))
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().writer.close()
    return latencies, statuses, total / elapsed


async def _sequential(url: str, headers: dict[str, str], *, requests: int = 300) -> list[float]:
    """Latencies (ms) of requests sent one after another on one connection: the server's own cost."""
    parsed, request = _raw_get(url, headers)
    connection = _Connection(*await asyncio.open_connection(parsed.host, parsed.port))
    latencies = []
    for index in range(requests + 20):
        started = time.perf_counter()
        await connection.get(request)
        if index >= 20:
            latencies.append((time.perf_counter() - started) * 1000)
    connection.writer.close()
    return latencies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def bench_polling(gateway: Gateway, scan_ids: dict[str, str], *, rate: float, seconds: float, label: str) -> list[tuple]:
    """Polling rows: (case, answers reused, one-by-one min and p50, statuses, achieved rate, p50, p90, p99, max)."""
    clinician = _key(gateway, "clinician")
    rows = []
    for case, scan_id in scan_ids.items():
        url = f"{gateway.url}/api/scans/{scan_id}/report"
        alone = asyncio.run(_sequential(url, clinician))
        latencies, statuses, achieved = asyncio.run(_poll(url, clinician, rate=rate, seconds=seconds))
        rows.append((case, label, min(alone), _percentile(alone, 50), statuses, achieved,
                     *(_percentile(latencies, q) for q in (50, 90, 99)), max(latencies)))
    return rows


def main(argv: list[str] | None = None) -> None:
    """Start a gateway, measure polling latency and upload throughput, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="polling requests per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="polling duration per case")
    parser.add_argument("--slices", type=int, default=300, help="slices of the uploaded 512x512 study")
    parser.add_argument("--repeats", type=int, default=3, help="uploads per case")
    args = parser.parse_args(argv if argv is not None else [])
    print(f"cpu cores: {os.cpu_count()} (shared with whatever else runs here)", flush=True)
    with tempfile.TemporaryDirectory(prefix="ctriage-bench-api-") as tmp:
        root = Path(tmp)
        gateway = start_gateway(root)
        try:
            scans = {"report done (200)": finished_scan(gateway, root), "run queued (202)": queued_scan(gateway, root)}
            poll_rows = bench_polling(gateway, scans, rate=args.rate, seconds=args.seconds, label="1 s reuse")
            upload_rows = bench_upload(gateway, root, slices=args.slices, repeats=args.repeats)
            rss = gateway.peak_rss_mb()
        finally:
            gateway.stop()
        # The same scans again, every request going to the database (as when pollers spread over many scans).
        gateway = start_gateway(root, report_cache_seconds="0")
        try:
            poll_rows += bench_polling(gateway, scans, rate=args.rate, seconds=args.seconds, label="no reuse")
        finally:
            gateway.stop()
    print(f"\nreport polling, {args.rate:.0f} req/s open loop for {args.seconds:.0f} s per case "
          f"(target p99 <= {POLL_TARGET_P99_MS:.0f} ms)")
    print("(alone: 300 requests one after another on one connection, min and p50 ms; then the loaded run)")
    print(f"{'case':<20} {'answers':<10} {'alone min':>9} {'alone p50':>9} {'statuses':<12} {'req/s':>7} "
          f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for case, label, alone_min, alone_p50, statuses, achieved, p50, p90, p99, worst in poll_rows:
        status_text = ",".join(f"{code}x{count}" for code, count in sorted(statuses.items()))
        print(f"{case:<20} {label:<10} {alone_min:>9.2f} {alone_p50:>9.2f} {status_text:<12} {achieved:>7.1f} "
              f"{p50:>8.2f} {p90:>8.2f} {p99:>8.2f} {worst:>8.2f}")
    print(f"\nupload throughput, {args.slices}-slice 512x512 study, {args.repeats} uploads per case "
          f"(target >= {UPLOAD_TARGET_MBPS:.0f} MB/s)")
    print(f"{'case':<20} {'MB':>8} {'best MB/s':>10} {'median MB/s':>12}")
    for case, megabytes, best, median in upload_rows:
        print(f"{case:<20} {megabytes:>8.1f} {best:>10.1f} {median:>12.1f}")
    print(f"\ngateway peak RSS: {rss:.0f} MB")


if __name__ == "__main__":
    main(sys.argv[1:])
