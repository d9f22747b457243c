"""The localize stage, baseline: findings per organ and the study verdict from the anomaly map.

Pure: reads the anomaly map, organ label map and volume (geometry, per-slice SOPInstanceUIDs) from
the store and returns findings; no queue, no DB. The report itself is composed by the pipeline
(:mod:`shared.pipeline.compose`), which also knows the other stages' results and timings.
"""

from __future__ import annotations

from shared.contracts import LocalizeRequest, LocalizeResult
from shared.pipeline.artifacts import get_anomaly_map, get_label_map, get_volume_header
from shared.report import ModelInfo, Verdict
from shared.storage.base import ObjectStore
from worker_localizer.findings import MIN_FINDING_MM3, extract_findings, study_score

MODEL = ModelInfo(stage="localize", name="baseline-threshold-components", version="1")


def run_localizer(*, store: ObjectStore, request: LocalizeRequest) -> LocalizeResult:
    """Turn the run's anomaly map into findings per organ and a verdict."""
    affine, meta = get_volume_header(store, request.volume_key)
    anomaly = get_anomaly_map(store, request.anomaly_key)
    organs = get_label_map(store, request.organs_key)
    findings = extract_findings(
        scores=anomaly.scores, labels=organs.labels, names=organs.names, affine=affine,
        sop_instance_uids=meta.sop_instance_uids, voxel_threshold=request.voxel_threshold, min_volume_mm3=MIN_FINDING_MM3,
    )
    score = round(study_score(findings, affine=affine), 4)
    return LocalizeResult(
        run_id=request.run_id,
        verdict=Verdict.pathology if score > request.study_threshold else Verdict.normal,
        score=score, threshold=request.study_threshold, score_unit=request.score_unit,
        voxel_threshold=request.voxel_threshold, findings=findings, model=MODEL,
    )
