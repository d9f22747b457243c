"""DICOM loading speed: a synthetic 512x512x300 CT series from files and from a zip, beside raw reads.

Each measurement runs in a fresh process so its peak RSS is its own. The series is written just
before, so the files are in the page cache (warm reads): the numbers are CPU cost, not disk speed.
MB/s counts the bytes of the DICOM files (uncompressed), whichever way they are read.

Run: ``.venv/bin/python -m bench.bench_dicom [--slices 300] [--size 512] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bench.memory import peak_rss_mb


def synthetic_ct(slices: int, size: int, seed: int = 0) -> np.ndarray:
    """A chest-like int16 HU volume (air, body, two lungs, a spine, noise) of shape (slices, size, size)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size - 0.5
    body = (y / 0.35) ** 2 + (x / 0.45) ** 2 < 1
    lungs = ((y + 0.02) / 0.22) ** 2 + ((np.abs(x) - 0.2) / 0.15) ** 2 < 1
    spine = (y - 0.25) ** 2 + x**2 < 0.04**2
    plane = np.full((size, size), -1000, np.int16)
    plane[body] = 40
    plane[lungs] = -850
    plane[spine] = 700
    volume = np.broadcast_to(plane, (slices, size, size)).copy()
    volume += rng.normal(0, 15, volume.shape).astype(np.int16)
    return volume


def _peak_rss_mb() -> float:
    """This process's peak resident set (MB)."""
    return peak_rss_mb()


def _measure(case: str, path: str, repeats: int) -> tuple[float, float, float, int]:
    """Best wall time, peak RSS (MB), RSS before (MB) and slices, for one case in this process."""
    from shared.dicom.reader import read_study

    before = _peak_rss_mb()
    best, slices = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        if case == "raw files":
            slices = sum(1 for p in sorted(Path(path).iterdir()) if p.read_bytes())
        elif case == "raw zip":
            with zipfile.ZipFile(path) as archive:
                slices = sum(1 for info in archive.infolist() if archive.read(info))
        else:
            slices = read_study(path).shape[0]
        best = min(best, time.perf_counter() - start)
    return best, _peak_rss_mb(), before, slices


def _write_series(folder: str, archive: str, slices: int, size: int) -> tuple[float, float, float]:
    """Write the series and its zip (in a worker, so the bench process stays small): seconds, MB, zip MB."""
    from shared.dicom.volume import Volume, affine_from
    from shared.dicom.writer import write_ct_series

    volume = Volume(hu=synthetic_ct(slices, size), affine=affine_from(spacing=(0.7, 0.7, 1.0)))
    start = time.perf_counter()
    paths = write_ct_series(volume, Path(folder))
    seconds = time.perf_counter() - start
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in paths:
            zf.write(p, p.name)
    return seconds, sum(p.stat().st_size for p in paths) / 1e6, Path(archive).stat().st_size / 1e6


def _in_fresh_process(function, *args):  # type: ignore[no-untyped-def]
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def main(argv: list[str] | None = None) -> None:
    """Write the series, zip it, time each way of reading it, print the table (defaults when ``argv`` is None)."""
    parser = argparse.ArgumentParser(prog="bench.bench_dicom", description=__doc__)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv or [])

    with tempfile.TemporaryDirectory(prefix="bench_dicom_") as tmp:
        folder, archive = Path(tmp) / "series", Path(tmp) / "series.zip"
        write_seconds, total_mb, zip_mb = _in_fresh_process(
            _write_series, str(folder), str(archive), args.slices, args.size
        )
        print(
            f"DICOM load: {args.slices} x {args.size} x {args.size} int16 CT, {total_mb:.1f} MB in {args.slices} "
            f"files (written in {write_seconds:.2f} s), zip {zip_mb:.1f} MB deflated; best of {args.repeats}, "
            "warm page cache, one process per row"
        )
        print(f"{'case':<18} {'seconds':>8} {'slices/s':>9} {'MB/s':>8} {'peak RSS MB':>12} {'RSS at start':>13}")
        for case, path in [("raw files", folder), ("read_study files", folder), ("raw zip", archive),
                           ("read_study zip", archive)]:
            seconds, peak, before, slices = _in_fresh_process(_measure, case, str(path), args.repeats)
            print(
                f"{case:<18} {seconds:>8.3f} {slices / seconds:>9.0f} {total_mb / seconds:>8.0f} "
                f"{peak:>12.0f} {before:>13.0f}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
