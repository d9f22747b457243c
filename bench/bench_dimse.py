"""DICOM C-STORE receive throughput: ctriage's receiver beside dcmtk's ``storescp``, same files, same run.

dcmtk's ``storescu`` pushes each series over one association to each receiver in turn (both dcmtk
tools with ``TCP_NODELAY=1`` in their environment, as the brief's reference figures). The time is
``storescu``'s wall time: association, every C-STORE and its response, release. ctriage answers
each C-STORE only once the instance is in object storage and indexed in the database (SQLite here);
``storescp`` writes plain files and never fsyncs, so ctriage is shown durable (the defaults: each
object fdatasync'ed, SQLite ``synchronous=FULL``) and with no syncs (object store's fsync off, SQLite
``synchronous=NORMAL``: like for like). Each ctriage run starts on an empty data folder,
so every instance is new; the best of ``--repeats`` runs counts (the machine is shared).

Run: ``.venv/bin/python -m bench.bench_dimse [--slices 300] [--repeats 3]`` (needs dcmtk on PATH).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class Row:
    series: Series
    receiver: str
    seconds: float
    stored: int | None  # instances indexed in the database afterwards (None: not checked)

    def line(self, reference: float | None) -> str:
        n, mb = len(self.series.files), self.series.megabytes
        ratio = f"{reference / self.seconds:5.2f}" if reference else "    -"
        stored = "-" if self.stored is None else f"{self.stored}/{n}"
        return (f"{self.series.label:<24} {self.receiver:<26} {n:>5} {mb:>7.1f} {self.seconds:>7.2f} "
                f"{n / self.seconds:>8.1f} {mb / self.seconds:>7.1f} {ratio:>9} {stored:>9}")


def storescu(port: int, folder: Path) -> float:
    """Seconds ``storescu`` takes to push every file in ``folder`` over one association."""
    started = time.perf_counter()
    result = subprocess.run(
        ["storescu", "-aet", CALLING_AE, "-aec", AE_TITLE, "+sd", "127.0.0.1", str(port), str(folder)],
        env={**os.environ, "TCP_NODELAY": "1"}, capture_output=True, text=True, timeout=600, check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"storescu failed ({result.returncode}): {result.stderr[-2000:]}")
    return seconds


def time_storescp(series: Series, workdir: Path) -> tuple[float, None]:
    """Seconds for dcmtk's storescp (writing files) to receive ``series`` (it indexes nothing)."""
    from gateway.dimse.launcher import free_port

    out = workdir / "storescp"
    out.mkdir()
    port = free_port()
    process = subprocess.Popen(
        ["storescp", "-aet", AE_TITLE, "-od", str(out), str(port)],
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


def best_of(repeats: int, measure, *args, **kwargs) -> tuple[float, int | None]:  # type: ignore[no-untyped-def]
    """The fastest of ``repeats`` calls of ``measure(*args, **kwargs)``, each returning (seconds, indexed)."""
    return min((measure(*args, **kwargs) for _ in range(repeats)), key=lambda result: result[0])


def main(argv: list[str] | None = None) -> None:
    """Print the throughput table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv or [])
    if shutil.which("storescu") is None or shutil.which("storescp") is None:
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
        print(f"{'series':<24} {'receiver':<26} {'files':>5} {'MB':>7} {'seconds':>7} {'files/s':>8} {'MB/s':>7} "
              f"{'vs dcmtk':>9} {'indexed':>9}")
        for one in series:
            workdir = root / "work"
            workdir.mkdir(exist_ok=True)
            dcmtk, _ = best_of(args.repeats, time_storescp, one, workdir)
            print(Row(one, "dcmtk storescp", dcmtk, None).line(None), flush=True)
            for fsync in (True, False):
                seconds, stored = best_of(args.repeats, time_ctriage, one, workdir, fsync=fsync)
                label = "ctriage (durable)" if fsync else "ctriage (no syncs)"
                print(Row(one, label, seconds, stored).line(dcmtk), flush=True)
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"'vs dcmtk' = ctriage throughput / storescp throughput (target >= {TARGET_RATIO}); "
          "'indexed' = instances in the database after the push.")


if __name__ == "__main__":
    main(sys.argv[1:])
