"""The screen stage: score every voxel of the gate's volume and store the calibrated anomaly map.

``CTRIAGE_SCREENER`` picks the model: ``baseline`` (default; the HU z-score yardstick) or ``dense-vicreg``
(the learned screener shipped in ``worker_screener/weights``, see its MODEL_CARD.md).
Pure: reads the volume and organ label map from the store, writes the anomaly map on the volume grid
under the run's ``anomaly`` key and returns its thresholds; no queue, no DB.
"""

from __future__ import annotations

from shared.config import get_settings
from shared.contracts import RunArtifacts, ScreenRequest, ScreenResult
from shared.pipeline.artifacts import AnomalyMap, get_label_map, get_volume, put_anomaly_map
from shared.storage.base import ObjectStore

SCREENERS = ("dense-vicreg", "baseline")


class ScreenerUnavailable(RuntimeError):
    """The configured screener cannot run here (unknown name, or weights failing their checksum)."""


def run_screener(*, store: ObjectStore, request: ScreenRequest) -> ScreenResult:
    """Score every voxel of the gate's volume with the configured screener and store the map."""
    chosen = get_settings().screener.strip().lower()
    volume = get_volume(store, request.volume_key)
    key = RunArtifacts.for_run(request.run_id).anomaly
    if chosen == "baseline":
        from worker_screener.baseline import anomaly_scores, load_parameters, lung_mask

        parameters = load_parameters()
        lung = lung_mask(get_label_map(store, request.organs_key).labels)
        scores = anomaly_scores(volume.hu, lung, volume.spacing, parameters)
        model, voxel_threshold = parameters.model, parameters.voxel_threshold
        study_threshold, unit = parameters.study_threshold, parameters.score_unit
    elif chosen == "dense-vicreg":
        from worker_screener.model.inference import score_volume

        screener = active_screener()
        labels = get_label_map(store, request.organs_key).labels
        scores = score_volume(screener, volume.hu, volume.spacing, labels)
        model, voxel_threshold = screener.model, screener.calibration.voxel_threshold
        study_threshold, unit = screener.study_threshold, screener.score_unit
    else:
        raise ScreenerUnavailable(f"unknown screener {chosen!r}; choose one of {', '.join(SCREENERS)}")
    put_anomaly_map(store, key, AnomalyMap(scores=scores, affine=volume.affine))
    return ScreenResult(run_id=request.run_id, anomaly_key=key, model=model, voxel_threshold=voxel_threshold,
                        study_threshold=study_threshold, score_unit=unit)


def active_screener():
    """The shipped learned screener, loaded and checksum-verified once per process."""
    from worker_screener.model.checkpoint import ModelIntegrityError, load_screener

    try:
        return load_screener()
    except ModelIntegrityError as error:
        raise ScreenerUnavailable(str(error)) from error


def describe_active_screener() -> str:
    """One log line for the worker's start: which screener scores, on which device."""
    chosen = get_settings().screener.strip().lower()
    if chosen != "dense-vicreg":
        return f"screener: {chosen}"
    screener = active_screener()
    return f"screener: {screener.model.name} v{screener.version} ({screener.checksum[:12]}) on {screener.device}"
