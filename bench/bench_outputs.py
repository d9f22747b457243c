"""Clinical outputs on a 512x512x300 study: time and size of the DICOM SEG, SR and key images, of a
slice PNG and of the report PDF; writes the PNGs and the PDF's pages to ``bench/out/`` to look at.

The study is the output tests' synthetic one (tests/outputs_testkit.py) at full size: a phantom CT
written as a DICOM series, two anomaly blobs (left upper lobe, heart), the localizer's findings.

Run: ``.venv/bin/python -m bench.bench_outputs [--slices 300] [--size 512] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
sys.path.insert(0, str(REPO / "tests"))  # the synthetic study lives with the tests that define it

from outputs_testkit import make_study  # noqa: E402

from worker_localizer.outputs import render_slice_png, write_dicom_outputs  # noqa: E402
from worker_localizer.outputs.key_images import key_image_datasets  # noqa: E402
from worker_localizer.outputs.pdf import report_pages, report_pdf  # noqa: E402
from worker_localizer.outputs.seg import anomaly_segmentation  # noqa: E402
from worker_localizer.outputs.sr import measurement_report_sr  # noqa: E402


def _best(repeats: int, run) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """Fastest of ``repeats`` runs (seconds) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def main(argv: list[str] | None = None) -> None:
    """Print the table; write the images and the PDF to bench/out/."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv if argv is not None else [])
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        study = make_study(Path(folder), shape=(args.slices, args.size, args.size))
        print(f"study {study.volume.shape}, {len(study.report.findings)} findings, built in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        common = {"volume": study.volume, "report": study.report}
        rows = []
        seconds, seg = _best(args.repeats, lambda: anomaly_segmentation(
            source_datasets=study.source_datasets, anomaly_mask=study.anomaly_mask, **common))
        rows.append(("SEG (build)", seconds, None))
        seconds, _ = _best(args.repeats, lambda: measurement_report_sr(
            source_datasets=study.source_datasets, segmentation=seg, **common))
        rows.append(("SR (build)", seconds, None))
        seconds, _ = _best(args.repeats, lambda: key_image_datasets(
            source_datasets=study.source_datasets, anomaly_score=study.anomaly_score, anomaly_mask=study.anomaly_mask,
            organ_labels=study.organ_labels, **common))
        rows.append(("key images (build)", seconds, None))
        out_dir = Path(folder) / "outputs"
        seconds, written = _best(args.repeats, lambda: write_dicom_outputs(
            source_datasets=study.source_datasets, anomaly_score=study.anomaly_score, anomaly_mask=study.anomaly_mask,
            organ_labels=study.organ_labels, out_dir=out_dir, **common))
        sizes = sum(path.stat().st_size for paths in written.values() for path in paths)  # type: ignore[union-attr]
        rows.append(("write_dicom_outputs (all, to disk)", seconds, sizes))
        k = study.report.findings[-1].slice_range[0] + 1
        for window in ("lung", "mediastinal"):
            seconds, png = _best(args.repeats, lambda w=window: render_slice_png(
                volume=study.volume, k=k, window=w, overlay=study.anomaly_score, organ_labels=study.organ_labels))
            (OUT / f"outputs_slice_{window}.png").write_bytes(png)  # type: ignore[arg-type]
            rows.append((f"slice PNG, {window}, overlay + organs", seconds, len(png)))  # type: ignore[arg-type]
        seconds, pdf = _best(args.repeats, lambda: report_pdf(
            anomaly_score=study.anomaly_score, anomaly_mask=study.anomaly_mask, organ_labels=study.organ_labels,
            **common))
        (OUT / "outputs_report.pdf").write_bytes(pdf)  # type: ignore[arg-type]
        pages_text = f"report PDF ({1 + len(study.report.findings)} pages)"
        rows.append((pages_text, seconds, len(pdf)))  # type: ignore[arg-type]
        pages = report_pages(anomaly_score=study.anomaly_score, anomaly_mask=study.anomaly_mask,
                             organ_labels=study.organ_labels, **common)
        for number, page in enumerate(pages, start=1):
            page.save(OUT / f"outputs_report_page_{number}.png")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{'output':<40} {'best s':>8} {'bytes':>12}")
    for name, seconds, size in rows:
        print(f"{name:<40} {seconds:>8.3f} {size if size is not None else '':>12}")
    print(f"peak RSS of the process (study included): {peak_mb:.0f} MB; images in {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
