"""The gate stage ("face control"), baseline: passport check on tags, volume assembly, threshold
lung mask and a lung-volume anatomy check. Pure: object store in, object store out, no queue, no DB.

Rejections are results (``accepted=False`` with a :class:`shared.dicom.errors.Reason` code and the
checks that led there), not exceptions; exceptions mean the stage itself failed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from shared.anatomy import BY_LABEL
from shared.contracts import GateRequest, GateResult, RunArtifacts, VolumeSummary
from shared.dicom.errors import LoadError, Reason
from shared.dicom.reader import read_study
from shared.pipeline.artifacts import LabelMap, put_label_map, put_volume
from shared.report import GateCheck, ModelInfo
from shared.storage.base import ObjectStore
from worker_gate.lungmask import segment_baseline
from worker_gate.passport import passport_checks

METHOD = "baseline"
MIN_LUNG_ML = 100.0
"""Each lung must measure at least this much: well below any adult lung, above airway-only air."""

MODEL = ModelInfo(stage="gate", name="baseline-tags-hu-threshold", version="1")


def run_gate(*, store: ObjectStore, request: GateRequest) -> GateResult:
    """Check and assemble the series under ``request.source_prefix``; store volume and organ label map."""
    with tempfile.TemporaryDirectory(prefix="ctriage-gate-") as folder:
        _download_prefix(store, request.source_prefix, Path(folder))
        try:
            volume = read_study(folder)
        except LoadError as error:
            return _rejected(request, error.reason, error.detail, [])

    checks, refusal = passport_checks(volume)
    if refusal is not None:
        failed = next(check for check in checks if not check.passed)
        return _rejected(request, refusal, f"{failed.name} is {failed.value!r}, expected {failed.expected}", checks)

    mask = segment_baseline(volume)
    checks += [
        GateCheck(name="lung_left_ml", passed=mask.left_ml >= MIN_LUNG_ML, value=round(mask.left_ml, 1), expected=f">= {MIN_LUNG_ML:g}"),
        GateCheck(name="lung_right_ml", passed=mask.right_ml >= MIN_LUNG_ML, value=round(mask.right_ml, 1), expected=f">= {MIN_LUNG_ML:g}"),
    ]
    missing = [check.name.removesuffix("_ml").replace("_", " ") for check in checks[-2:] if not check.passed]
    if missing:
        return _rejected(request, Reason.NO_CHEST_ANATOMY, f"does not look like a chest CT: no {' and no '.join(missing)} found", checks)

    keys = RunArtifacts.for_run(request.run_id)
    put_volume(store, keys.volume, volume)
    put_label_map(store, keys.organs, LabelMap(labels=mask.labels, affine=volume.affine, names=_present_names(mask.labels)))
    return GateResult(
        run_id=request.run_id, accepted=True, checks=checks, method=METHOD, model=MODEL,
        volume_key=keys.volume, organs_key=keys.organs,
        volume=VolumeSummary(
            study_instance_uid=volume.meta.study_instance_uid, series_instance_uid=volume.meta.series_instance_uid,
            shape=volume.shape, spacing=volume.spacing,
        ),
    )


def _download_prefix(store: ObjectStore, prefix: str, folder: Path) -> None:
    prefix = prefix.rstrip("/") + "/"
    for number, info in enumerate(store.list(prefix)):
        # Flat numbered names: keys are already unique and the reader sorts slices by position.
        store.download(info.key, str(folder / f"{number:06d}_{Path(info.key).name}"))


def _present_names(labels: np.ndarray) -> dict[int, str]:
    counts = np.bincount(labels.ravel(), minlength=256)
    return {label: BY_LABEL[label].name for label in np.flatnonzero(counts).tolist() if label in BY_LABEL}


def _rejected(request: GateRequest, reason: Reason, detail: str, checks: list[GateCheck]) -> GateResult:
    return GateResult(
        run_id=request.run_id, accepted=False, reason=reason.value, reason_detail=detail, checks=checks,
        method=METHOD, model=MODEL,
    )
