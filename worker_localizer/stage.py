"""The localize stage, baseline: findings per organ, the study verdict and the clinical outputs.

Pure: reads the anomaly map, organ label map and volume from the store, writes the findings' label
mask and the DICOM outputs (SEG, TID 1500 SR, key images) under the run's prefix, and returns the
findings with those keys and each output's status; no queue, no DB. An output that cannot be made
does not fail the run (:mod:`worker_localizer.delivery`). The report itself is composed by the pipeline
(:mod:`shared.pipeline.compose`), which also knows the other stages' results and timings.

Idempotent and deterministic: the same request writes the same keys (the DICOM folder is cleared
first, so a retry leaves no stale key image) and returns the same result; the DICOM objects' UIDs
derive from the run and the source series (:func:`worker_localizer.outputs.provenance.derived_uid`).
The composed report of a re-run is identical but for ``created_at`` and ``timings`` (wall clock).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import numpy as np

from shared.config import get_settings
from shared.contracts import LocalizeRequest, LocalizeResult, RunArtifacts
from shared.dicom.volume import Volume
from shared.pipeline.artifacts import LabelMap, get_anomaly_map, get_label_map, get_volume, put_label_map
from shared.report import Finding, ModelInfo, ReportStatus, ReportV1, Verdict
from shared.storage.base import ObjectStore
from worker_localizer.delivery import source_headers, store_dicom_outputs
from worker_localizer.findings import locate_findings, study_score

MODEL = ModelInfo(stage="localize", name="baseline-threshold-components", version="1")


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
        sources = source_headers(store=store, run_id=request.run_id, source_prefix=request.source_prefix,
                                 sop_instance_uids=volume.meta.sop_instance_uids)
        outputs = store_dicom_outputs(
            store=store, prefix=keys.dicom_prefix, volume=volume, sources=sources, anomaly_score=anomaly.scores,
            anomaly_mask=mask, organ_labels=organs.labels, report=outputs_report(request=request, result=result, volume=volume),
        )
        stored_mask.result()
    result.artifacts.update(outputs.keys)
    result.artifacts["findings"] = keys.findings
    result.outputs = outputs.statuses
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
