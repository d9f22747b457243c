"""The screen stage, baseline: HU z-score anomaly map inside the gate's lung mask.

Pure: reads the volume and organ label map from the store, writes the anomaly map on the volume
grid under the run's ``anomaly`` key and returns its thresholds; no queue, no DB.
"""

from __future__ import annotations

import numpy as np

from shared.anatomy import LUNG_ANY, label_of
from shared.contracts import RunArtifacts, ScreenRequest, ScreenResult
from shared.pipeline.artifacts import AnomalyMap, get_label_map, get_volume, put_anomaly_map
from shared.storage.base import ObjectStore
from worker_screener.baseline import anomaly_scores, load_parameters

LUNG_LABELS = np.array([label_of(name) for name in LUNG_ANY], dtype=np.uint8)


def run_screener(*, store: ObjectStore, request: ScreenRequest) -> ScreenResult:
    """Score every voxel of the gate's volume and store the calibrated anomaly map."""
    parameters = load_parameters()
    volume = get_volume(store, request.volume_key)
    organs = get_label_map(store, request.organs_key)
    lung = np.isin(organs.labels, LUNG_LABELS)
    del organs
    scores = anomaly_scores(volume.hu, lung, volume.spacing, parameters)
    key = RunArtifacts.for_run(request.run_id).anomaly
    put_anomaly_map(store, key, AnomalyMap(scores=scores, affine=volume.affine))
    return ScreenResult(
        run_id=request.run_id, anomaly_key=key, model=parameters.model,
        voxel_threshold=parameters.voxel_threshold, study_threshold=parameters.study_threshold,
        score_unit=parameters.score_unit,
    )
