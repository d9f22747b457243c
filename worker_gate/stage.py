"""The gate stage ("face control"): series choice, passport check on tags and geometry, organ
segmentation and the anatomy check (:mod:`worker_gate.decide`). Pure: object store in, object store
out, no queue, no DB.

Rejections are results (``accepted=False`` with a :class:`shared.dicom.errors.Reason` code and the
checks that led there, each with the value seen), not exceptions; exceptions mean the stage itself
failed. An accepted study leaves the volume analysed, the organ label map (with names) and the headers of
the volume's instances under the run's keys for the screener and the localizer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from shared.anatomy import BY_LABEL
from shared.config import get_settings
from shared.contracts import GateRequest, GateResult, RunArtifacts, VolumeSummary
from shared.dicom.errors import LoadError
from shared.dicom.instances import read_instance
from shared.dicom.sources import iter_dicom_sources
from shared.pipeline.artifacts import LabelMap, put_label_map, put_source_headers, put_volume
from shared.report import GateCheck
from shared.storage.base import ObjectStore
from worker_gate.backend import GateBackend, label_counts, select_backend
from worker_gate.decide import check_volume
from worker_gate.series import read_chosen_series


def run_gate(*, store: ObjectStore, request: GateRequest, backend: GateBackend | None = None) -> GateResult:
    """Check and assemble the series under ``request.source_prefix``; store volume and organ label map."""
    backend = backend or select_backend()
    with tempfile.TemporaryDirectory(prefix="ctriage-gate-") as folder:
        _download_prefix(store, request.source_prefix, Path(folder))
        try:
            volume, series_check = read_chosen_series(Path(folder))
        except LoadError as error:
            load = GateCheck(name="load", passed=False, value=error.values or None, expected="one readable CT series",
                             detail=error.detail)
            return _result(request, backend, accepted=False, checks=[load], reason=error.reason.value, detail=error.detail)
        headers = _source_headers(Path(folder), volume.meta.sop_instance_uids)

    verdict = check_volume(volume, backend=backend, max_pixel_mm=get_settings().gate_max_pixel_mm)
    checks = [series_check, *verdict.checks]
    if not verdict.accepted:
        return _result(request, backend, accepted=False, checks=checks, reason=verdict.reason.value if verdict.reason else None,
                       detail=verdict.detail)

    assert verdict.segmentation is not None
    labels = verdict.segmentation.labels
    keys = RunArtifacts.for_run(request.run_id)
    put_volume(store, keys.volume, volume)
    put_source_headers(store, keys.instances, headers)
    put_label_map(store, keys.organs, LabelMap(labels=labels, affine=volume.affine, names=_present_names(labels)))
    result = _result(request, backend, accepted=True, checks=checks)
    result.volume_key, result.organs_key = keys.volume, keys.organs
    result.volume = VolumeSummary(
        study_instance_uid=volume.meta.study_instance_uid, series_instance_uid=volume.meta.series_instance_uid,
        shape=volume.shape, spacing=volume.spacing,
    )
    return result


def _download_prefix(store: ObjectStore, prefix: str, folder: Path) -> None:
    prefix = prefix.rstrip("/") + "/"
    for number, info in enumerate(store.list(prefix)):
        # Flat numbered names: keys are already unique and the reader sorts slices by position.
        store.download(info.key, str(folder / f"{number:06d}_{Path(info.key).name}"))


def _source_headers(folder: Path, sop_instance_uids: list[str]) -> list[Dataset]:
    """Headers of the volume's instances in slice order, kept so the localizer's SEG and SR can
    reference them without fetching every instance again."""
    wanted = set(sop_instance_uids)
    by_uid: dict[str, Dataset] = {}
    for name, item in iter_dicom_sources(folder):
        try:
            instance = read_instance(name, item)
        except LoadError:
            continue  # the reader skipped it too
        if instance.sop_instance_uid in wanted:
            by_uid.setdefault(instance.sop_instance_uid, instance.dataset)
    return [by_uid[uid] for uid in dict.fromkeys(sop_instance_uids) if uid in by_uid]


def _present_names(labels: np.ndarray) -> dict[int, str]:
    counts = label_counts(labels)
    return {label: BY_LABEL[label].name for label in np.flatnonzero(counts).tolist() if label in BY_LABEL}


def _result(
    request: GateRequest, backend: GateBackend, *, accepted: bool, checks: list[GateCheck], reason: str | None = None,
    detail: str | None = None,
) -> GateResult:
    return GateResult(
        run_id=request.run_id, accepted=accepted, reason=reason, reason_detail=detail, checks=checks,
        method=backend.name, model=backend.model,
    )
