"""Studies for the DICOM/PNG/PDF output tests: a CT series on disk, an anomaly map of Gaussian blobs,
the findings the localizer makes of it, their label mask and a ``done`` report. :func:`make_study`
is synthetic: a phantom with one blob deep inside each of two organs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from scipy import ndimage

from shared.anatomy import label_names, label_of
from shared.dicom.volume import Volume
from shared.dicom.writer import write_ct_series
from shared.phantoms import generate_phantom
from shared.report import GateCheck, GateSummary, ModelInfo, ReportStatus, ReportV1, Verdict
from worker_localizer.findings import extract_findings, study_score

BLOB_ORGANS = ("lung_upper_lobe_left", "heart")
VOXEL_THRESHOLD = 0.7
BLOB_SIGMA_MM = 12.0


@dataclass
class Study:
    """Everything :func:`worker_localizer.outputs.write_dicom_outputs` takes, plus the CT files."""

    volume: Volume
    source_datasets: list[Dataset]
    ct_paths: list[Path]
    anomaly_score: np.ndarray
    anomaly_mask: np.ndarray
    organ_labels: np.ndarray
    report: ReportV1


def make_study(folder: Path, *, shape: tuple[int, int, int] = (48, 128, 128)) -> Study:
    """The synthetic study, its CT series written under ``folder/ct`` (headers re-read from the files)."""
    phantom = generate_phantom(seed=11, shape=shape, pathologies=())
    volume, labels = phantom.volume, phantom.labels
    ct_paths = write_ct_series(volume, folder / "ct", uid_entropy="outputs-testkit")
    scores = np.zeros(volume.shape, dtype=np.float32)
    for organ in BLOB_ORGANS:
        scores = np.maximum(scores, blob(volume, centre=_deepest_voxel(volume, labels == label_of(organ))))
    return study_of(volume=volume, ct_paths=ct_paths, anomaly_score=scores, organ_labels=labels)


def study_of(*, volume: Volume, ct_paths: list[Path], anomaly_score: np.ndarray, organ_labels: np.ndarray) -> Study:
    """The findings the localizer makes of ``anomaly_score``, their mask and a ``done`` report."""
    findings = extract_findings(
        scores=anomaly_score, labels=organ_labels, names=label_names(), affine=volume.affine,
        sop_instance_uids=volume.meta.sop_instance_uids, voxel_threshold=VOXEL_THRESHOLD,
    )
    report = ReportV1(
        status=ReportStatus.done, verdict=Verdict.pathology, findings=findings,
        score=round(study_score(findings, affine=volume.affine), 4), threshold=1.0, score_unit="ml",
        voxel_threshold=VOXEL_THRESHOLD, run_id="run-outputs-testkit",
        study_instance_uid=volume.meta.study_instance_uid, series_instance_uid=volume.meta.series_instance_uid,
        gate=GateSummary(accepted=True, method="baseline", checks=[
            GateCheck(name="modality", passed=True, value="CT", expected="CT"),
            GateCheck(name="lungs_found", passed=True, value=2.9, expected=">= 0.5 l", detail="threshold mask"),
        ]),
        models=[
            ModelInfo(stage="gate", name="baseline-tags-hu-threshold", version="1"),
            ModelInfo(stage="screen", name="baseline-hu-deviation", version="3", checksum="ab12" * 16),
            ModelInfo(stage="localize", name="baseline-threshold-components", version="1"),
        ],
        timings={"gate": 1.2, "screen": 3.4, "localize": 0.5},
        created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    sources = [pydicom.dcmread(path, stop_before_pixels=True) for path in ct_paths]
    return Study(volume, sources, ct_paths, anomaly_score, finding_mask(anomaly_score, report), organ_labels, report)


def finding_mask(scores: np.ndarray, report: ReportV1) -> np.ndarray:
    """Label map ``n`` = voxels of ``report.findings[n - 1]``: the thresholded component with its box."""
    components, _ = ndimage.label(scores >= report.voxel_threshold, structure=np.ones((3, 3, 3), dtype=bool))
    mask = np.zeros(scores.shape, dtype=np.uint8)
    boxes = ndimage.find_objects(components)
    for number, finding in enumerate(report.findings, start=1):
        (i0, j0, k0), (i1, j1, k1) = finding.bbox_voxel.min, finding.bbox_voxel.max
        component = next(c for c, box in enumerate(boxes, start=1)
                         if box == (slice(k0, k1 + 1), slice(j0, j1 + 1), slice(i0, i1 + 1)))
        mask[components == component] = number
    return mask


def blob(volume: Volume, *, centre: np.ndarray) -> np.ndarray:
    """Gaussian scores (peak 1, sigma :data:`BLOB_SIGMA_MM`) around voxel ``centre`` ``(k, j, i)``."""
    di, dj, dk = volume.spacing
    reach = np.ceil(4 * BLOB_SIGMA_MM / np.array([dk, dj, di])).astype(int)
    near = tuple(slice(max(c - r, 0), c + r + 1) for c, r in zip(centre, reach))
    kk, jj, ii = np.ogrid[near]
    r2 = ((kk - centre[0]) * dk) ** 2 + ((jj - centre[1]) * dj) ** 2 + ((ii - centre[2]) * di) ** 2
    scores = np.zeros(volume.shape, dtype=np.float32)
    scores[near] = np.exp(-r2 / (2 * BLOB_SIGMA_MM**2))
    return scores


def _deepest_voxel(volume: Volume, organ: np.ndarray) -> np.ndarray:
    """``(k, j, i)`` of the organ voxel farthest from the organ's surface."""
    di, dj, dk = volume.spacing
    box = ndimage.find_objects(organ.astype(np.uint8))[0]
    depth = ndimage.distance_transform_edt(np.pad(organ[box], 1), sampling=(dk, dj, di))[1:-1, 1:-1, 1:-1]
    return np.array(np.unravel_index(np.argmax(depth), depth.shape)) + [b.start for b in box]
