"""The localize stage, baseline: findings per organ, the study verdict and the clinical outputs.

Pure: reads the anomaly map, organ label map and volume from the store, writes the findings' label
mask and the DICOM outputs (SEG, TID 1500 SR, key images) under the run's prefix, and returns the
findings with those keys; no queue, no DB. The report itself is composed by the pipeline
(:mod:`shared.pipeline.compose`), which also knows the other stages' results and timings.

Idempotent and deterministic: the same request writes the same keys (the DICOM folder is cleared
first, so a retry leaves no stale key image) and returns the same result; the DICOM objects' UIDs
derive from the run and the source series (:func:`worker_localizer.outputs.provenance.derived_uid`).
The composed report of a re-run is identical but for ``created_at`` and ``timings`` (wall clock).
"""

from __future__ import annotations

import io

import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from shared.config import get_settings
from shared.contracts import LocalizeRequest, LocalizeResult, RunArtifacts
from shared.dicom.volume import Volume
from shared.pipeline.artifacts import LabelMap, get_anomaly_map, get_label_map, get_volume, put_label_map
from shared.report import Finding, ModelInfo, ReportStatus, ReportV1, Verdict
from shared.storage.base import ObjectStore
from worker_localizer.findings import locate_findings, study_score
from worker_localizer.outputs import write_dicom_outputs

MODEL = ModelInfo(stage="localize", name="baseline-threshold-components", version="1")
DICOM_MEDIA_TYPE = "application/dicom"


def run_localizer(*, store: ObjectStore, request: LocalizeRequest) -> LocalizeResult:
    """Turn the run's anomaly map into findings per organ, a verdict and the DICOM outputs."""
    volume = get_volume(store, request.volume_key)
    anomaly = get_anomaly_map(store, request.anomaly_key, dtype=np.float16)  # as stored: no 4-byte copy
    organs = get_label_map(store, request.organs_key)
    findings, mask = locate_findings(
        scores=anomaly.scores, labels=organs.labels, names=organs.names, affine=volume.affine,
        sop_instance_uids=volume.meta.sop_instance_uids, voxel_threshold=request.voxel_threshold,
        min_volume_mm3=get_settings().localizer_min_finding_mm3,
    )
    score = round(study_score(findings, affine=volume.affine), 4)
    result = LocalizeResult(
        run_id=request.run_id,
        verdict=Verdict.pathology if score > request.study_threshold else Verdict.normal,
        score=score, threshold=request.study_threshold, score_unit=request.score_unit,
        voxel_threshold=request.voxel_threshold, findings=findings, model=MODEL,
    )
    keys = RunArtifacts.for_run(request.run_id)
    # Compressing the mask (zlib releases the GIL) overlaps with building the DICOM outputs.
    with ThreadPoolExecutor(max_workers=1) as pool:
        stored_mask = pool.submit(put_label_map, store, keys.findings,
                                  LabelMap(labels=mask, affine=volume.affine, names=_mask_names(findings)))
        sources = _source_headers(store, request.source_prefix, volume) if request.source_prefix else []
        if sources:
            result.artifacts.update(_store_dicom_outputs(
                store=store, prefix=keys.dicom_prefix, volume=volume, source_datasets=sources,
                anomaly_score=anomaly.scores, anomaly_mask=mask, organ_labels=organs.labels,
                report=outputs_report(request=request, result=result, volume=volume),
            ))
        stored_mask.result()
    result.artifacts["findings"] = keys.findings
    return result


def outputs_report(*, request: LocalizeRequest, result: LocalizeResult, volume: Volume) -> ReportV1:
    """The report as far as the DICOM outputs need it (the pipeline composes the full one)."""
    return ReportV1(
        status=ReportStatus.done, verdict=result.verdict, findings=result.findings, score=result.score,
        threshold=result.threshold, score_unit=result.score_unit, voxel_threshold=result.voxel_threshold,
        run_id=request.run_id, study_instance_uid=volume.meta.study_instance_uid,
        series_instance_uid=volume.meta.series_instance_uid, models=[*request.models, result.model],
        created_at=datetime.now(UTC),
    )


def _mask_names(findings: list[Finding]) -> dict[int, str]:
    return {number: f"finding {number}: {finding.organ}" for number, finding in enumerate(findings, start=1)}


def _source_headers(store: ObjectStore, prefix: str, volume: Volume) -> list[Dataset]:
    """Headers (no pixel data) of the stored instances that make up ``volume``'s slices."""
    wanted = set(volume.meta.sop_instance_uids)
    headers = []
    for info in store.list(prefix):
        with store.open(info.key) as handle:
            # pydicom seeks; an S3 response body cannot, so it is read into memory (one instance).
            source = handle if handle.seekable() else io.BytesIO(handle.read())
            try:
                dataset = pydicom.dcmread(source, stop_before_pixels=True)
            except InvalidDicomError:
                continue
        if dataset.get("SOPInstanceUID") in wanted:
            headers.append(dataset)
    # Without every slice's header the SEG and SR could not reference the source frames.
    return headers if len(headers) == len(wanted) else []


def _store_dicom_outputs(
    *, store: ObjectStore, prefix: str, volume: Volume, source_datasets: list[Dataset], anomaly_score: np.ndarray,
    anomaly_mask: np.ndarray, organ_labels: np.ndarray, report: ReportV1,
) -> dict[str, str]:
    """Write SEG, SR and key images under ``prefix``; returns artifact name -> key."""
    store.delete_prefix(prefix)
    keys: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="ctriage-outputs-") as folder:
        written = write_dicom_outputs(
            volume=volume, source_datasets=source_datasets, anomaly_score=anomaly_score, anomaly_mask=anomaly_mask,
            organ_labels=organ_labels, report=report, out_dir=Path(folder),
        )
        for paths in written.values():
            for path in paths:
                key = f"{prefix}{path.name}"
                store.put_file(key, str(path), content_type=DICOM_MEDIA_TYPE)
                keys[path.stem] = key
    return keys
