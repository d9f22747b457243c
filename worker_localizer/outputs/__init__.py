"""Clinical outputs of a finished analysis: DICOM SEG, TID 1500 SR and key images for the PACS
(:func:`write_dicom_outputs`), slice PNGs for the viewer (:func:`render_slice_png`) and the report
PDF (:func:`report_pdf`). Pure functions of the volume, its source headers, the anomaly map, the
findings' label mask, the organ labels and the report; nothing here touches queues or storage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
from highdicom.seg import Segmentation
from pydicom.dataset import Dataset

from shared.dicom.volume import Volume
from shared.report import ReportV1
from worker_localizer.outputs.key_images import key_image_datasets
from worker_localizer.outputs.pdf import report_pdf
from worker_localizer.outputs.render import render_slice_png
from worker_localizer.outputs.seg import anomaly_segmentation
from worker_localizer.outputs.sr import measurement_report_sr

__all__ = ["render_slice_png", "report_pdf", "write_dicom_outputs"]

T = TypeVar("T")


def write_dicom_outputs(
    *, volume: Volume, source_datasets: Sequence[Dataset], anomaly_score: np.ndarray, anomaly_mask: np.ndarray,
    organ_labels: np.ndarray, report: ReportV1, out_dir: Path, failures: dict[str, Exception] | None = None,
) -> dict[str, list[Path]]:
    """Write ``seg.dcm``, ``sr.dcm`` and ``key_image_NNN.dcm`` (one per finding) to ``out_dir``.

    ``anomaly_score`` is ``float32`` ``(nz, ny, nx)`` in [0, 1]; ``anomaly_mask`` labels finding ``n``
    of ``report.findings`` with ``n`` (0 = none); ``source_datasets`` are the source CT headers (any
    order; pixel data not needed). Returns ``{"seg": [...], "sr": [...], "key_images": [...]}``;
    a study without findings gets only the SR (its verdict) and empty SEG and key-image lists.
    ``organ_labels`` (the organ label map) outlines each finding's organ on its key image.

    Without ``failures`` the first error propagates. With it, an output that cannot be built is
    recorded there (name -> error; the SR of findings whose SEG failed is left out, it would have no
    segments to reference) and the others are still written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def attempt(name: str, build: Callable[[], T]) -> T | None:
        if failures is None:
            return build()
        try:
            return build()
        except Exception as error:  # noqa: BLE001 - pydicom/highdicom raise many types on a source they refuse
            failures[name] = error
            return None

    written: dict[str, list[Path]] = {"seg": [], "sr": [], "key_images": []}

    def seg() -> Segmentation:
        segmentation = anomaly_segmentation(
            volume=volume, source_datasets=source_datasets, anomaly_mask=anomaly_mask, report=report,
        )
        written["seg"].append(_save(segmentation, out_dir / "seg.dcm"))
        return segmentation

    def sr() -> None:
        sr = measurement_report_sr(volume=volume, source_datasets=source_datasets, report=report, segmentation=segmentation)
        written["sr"].append(_save(sr, out_dir / "sr.dcm"))

    def key_images() -> None:
        images = key_image_datasets(
            volume=volume, source_datasets=source_datasets, report=report, anomaly_score=anomaly_score,
            anomaly_mask=anomaly_mask, organ_labels=organ_labels,
        )
        paths = [_save(image, out_dir / f"key_image_{n:03d}.dcm") for n, image in enumerate(images, 1)]
        written["key_images"] = paths

    segmentation = attempt("seg", seg) if report.findings else None
    if segmentation is not None or not report.findings:
        attempt("sr", sr)
    attempt("key_images", key_images)
    return written


def _save(dataset: Dataset, path: Path) -> Path:
    """Write a highdicom object as a Part 10 file in its transfer syntax (Explicit VR Little Endian)."""
    dataset.save_as(path, enforce_file_format=True)
    return path
