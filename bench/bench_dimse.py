"""DICOM C-STORE receive throughput: ctriage's receiver beside dcmtk's ``storescp``, same files, same run.

dcmtk's ``storescu`` pushes each series over one association to each receiver in turn (both dcmtk
tools with ``TCP_NODELAY=1`` in their environment, as the brief's reference figures). The time is
``storescu``'s wall time: association, every C-STORE and its response, release. ctriage answers
each C-STORE only once the instance is in object storage and indexed in the database (SQLite here).
``storescp`` writes plain files and never fsyncs (``strace -e fsync,fdatasync`` shows none), so
ctriage runs twice: "process-crash safe" (object store's fsync off, SQLite WAL ``synchronous=NORMAL``:
like for like; a success status still means the instance survives the receiver being killed, since
both the object and the committed row are in the kernel's page cache) and "power-loss safe" (the
defaults: each object fdatasync'ed, SQLite ``synchronous=FULL``: two flushes per instance, which a
storescu that waits for each response cannot overlap). Each ctriage run starts on an empty data
folder, so every instance is new. The machine is shared, so the receivers take turns within each
of ``--rounds`` rounds; the table shows the fastest and the median round, and the ratio to storescp's
round (the figure that counts: both saw the same load).

Run: ``.venv/bin/python -m bench.bench_dimse [--slices 300] [--rounds 3]`` (needs dcmtk on PATH).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from shared.dicom.tools import dcmtk_program, dcmtk_tool

TARGET_RATIO = 0.6  # of dcmtk's throughput
AE_TITLE, CALLING_AE = "CTRIAGE", "BENCH"


@dataclass(frozen=True)
class Series:
    """A folder of DICOM files to push."""

    label: str
    folder: Path

    @property
    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.is_file())

    @property
    def megabytes(self) -> float:
        return sum(p.stat().st_size for p in self.files) / 1e6


RECEIVERS = ("dcmtk storescp (no fsync)", "ctriage, process-crash safe", "ctriage, power-loss safe")


@dataclass
class Timings:
    """One receiver's seconds per round on one series, and the instances it indexed."""

    series: Series
    receiver: str
    seconds: list[float]
    stored: int | None = None  # instances indexed in the database after the last round (None: not checked)

    def line(self, reference: Timings | None) -> str:
        n, mb = len(self.series.files), self.series.megabytes
        best, median = min(self.seconds), statistics.median(self.seconds)
        if reference is None:
            ratios = "        -         -"
        else:
            per_round = [theirs / ours for theirs, ours in zip(reference.seconds, self.seconds, strict=True)]
            ratios = f"{statistics.median(per_round):9.2f} {max(per_round):9.2f}"
        stored = "-" if self.stored is None else f"{self.stored}/{n}"
        return (f"{self.series.label:<24} {self.receiver:<28} {n:>5} {mb:>6.1f} {best:>6.2f} {median:>6.2f} "
                f"{n / best:>7.1f} {mb / best:>6.1f} {ratios} {stored:>8}")


def storescu(port: int, folder: Path) -> float:
    """Seconds ``storescu`` takes to push every file in ``folder`` over one association."""
    started = time.perf_counter()
    result = subprocess.run(
        [dcmtk_program("storescu"), "-aet", CALLING_AE, "-aec", AE_TITLE, "+sd", "127.0.0.1", str(port), str(folder)],
        env={**os.environ, "TCP_NODELAY": "1"}, capture_output=True, text=True, timeout=600, check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"storescu failed ({result.returncode}): {result.stderr[-2000:]}")
    return seconds


def time_storescp(series: Series, workdir: Path) -> tuple[float, None]:
    """Seconds for dcmtk's storescp (writing files, no fsync) to receive ``series`` (it indexes nothing)."""
    from gateway.dimse.launcher import free_port

    out = workdir / "storescp"
    out.mkdir()
    port = free_port()
    process = subprocess.Popen(
        [dcmtk_program("storescp"), "-aet", AE_TITLE, "-od", str(out), str(port)],
        env={**os.environ, "TCP_NODELAY": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port)
        return storescu(port, series.folder), None
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(out, ignore_errors=True)


def time_ctriage(series: Series, workdir: Path, *, fsync: bool) -> tuple[float, int]:
    """Seconds for ``ctriage dicom-receiver`` to receive ``series``, and how many instances it indexed."""
    from sqlalchemy import create_engine, func, select

    from gateway.dimse.launcher import ReceiverProcess, free_port
    from shared.db.models import Instance

    data_dir = workdir / "ctriage"
    env = {
        "CTRIAGE_DATA_DIR": str(data_dir), "CTRIAGE_DATABASE_URL": "", "CTRIAGE_BROKER_URL": "",
        "CTRIAGE_STORAGE_BACKEND": "local", "CTRIAGE_STORAGE_FSYNC": str(fsync).lower(),
        "CTRIAGE_SQLITE_SYNCHRONOUS": "FULL" if fsync else "NORMAL",
        "CTRIAGE_DICOM_AE_TITLE": AE_TITLE, "CTRIAGE_DICOM_ALLOWED_CALLING_AES": CALLING_AE,
        "CTRIAGE_AUTO_ANALYZE": "false", "CTRIAGE_LOG_LEVEL": "WARNING",
    }
    try:
        with ReceiverProcess(env=env, port=free_port(), log_path=workdir / "receiver.log") as receiver:
            try:
                seconds = storescu(receiver.port, series.folder)
            except RuntimeError as error:
                raise RuntimeError(f"{error}\nreceiver log:\n{receiver.log()[-2000:]}") from None
        engine = create_engine(f"sqlite:///{data_dir / 'ctriage.db'}")
        with engine.connect() as connection:
            stored = connection.scalar(select(func.count()).select_from(Instance))
        engine.dispose()
        return seconds, int(stored or 0)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _wait_listening(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def phantom_series(root: Path, slices: int) -> Series:
    """A ``slices`` x 512 x 512 phantom chest CT written as uncompressed CT Image Storage files."""
    from shared.dicom.writer import write_ct_series
    from shared.phantoms import generate_phantom

    phantom = generate_phantom(seed=7, shape=(slices, 512, 512))
    folder = root / "phantom"
    write_ct_series(phantom.volume, folder, uid_entropy=f"bench-dimse-{slices}")
    return Series(f"phantom {slices}x512x512", folder)


def real_series() -> Series | None:
    """Lung-PET-CT-Dx A0001 (kernel L, 64 slices), from ../shared/data/ct or the ``make data`` cache."""
    from shared.realdata.catalogue import case

    for source in ("shared", "pypi"):
        found = case(f"{source}/lungdx_A0001_kernelL")
        if found.present:
            return Series("lungdx_A0001 kernel L", found.path)
    return None


def main(argv: list[str] | None = None) -> None:
    """Print the throughput table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv or [])
    if dcmtk_tool("storescu") is None or dcmtk_tool("storescp") is None:
        print("dcmtk (storescu, storescp) not on PATH: `apt-get install dcmtk`; section skipped")
        return
    with tempfile.TemporaryDirectory(prefix="bench-dimse-") as tmp:
        root = Path(tmp)
        series = [phantom_series(root, args.slices)]
        real = real_series()
        if real is None:
            print("Lung-PET-CT-Dx A0001 absent (../shared/data/ct or `make data`): real-series rows skipped")
        else:
            series.append(real)
        print(f"{args.rounds} rounds, receivers taking turns; {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f} at the start")
        print(f"{'series':<24} {'receiver':<28} {'files':>5} {'MB':>6} {'best s':>6} {'median':>6} {'files/s':>7} "
              f"{'MB/s':>6} {'vs dcmtk':>9} {'best rnd':>9} {'indexed':>8}")
        for one in series:
            workdir = root / "work"
            workdir.mkdir(exist_ok=True)
            timings = {name: Timings(one, name, []) for name in RECEIVERS}
            for _ in range(args.rounds):
                timings[RECEIVERS[0]].seconds.append(time_storescp(one, workdir)[0])
                for name, fsync in zip(RECEIVERS[1:], (False, True), strict=True):
                    seconds, timings[name].stored = time_ctriage(one, workdir, fsync=fsync)
                    timings[name].seconds.append(seconds)
            reference = timings[RECEIVERS[0]]
            for name in RECEIVERS:
                print(timings[name].line(None if name == RECEIVERS[0] else reference), flush=True)
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"Throughput from the best round; 'vs dcmtk' = storescp's seconds / ctriage's in the same round, median "
          f"over rounds ('best rnd': the best round; target >= {TARGET_RATIO}); 'indexed' = instances in the database.")


if __name__ == "__main__":
    main(sys.argv[1:])
