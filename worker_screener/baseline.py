"""Baseline screener: an HU-statistics anomaly map, the yardstick the learned screener must beat.

For every voxel of the gate's lung mask: the mean over the lung voxels of a ``kernel_mm`` cube
around it (normalised convolution, so chest wall and mediastinum do not leak in) of the HU clipped
to at most ``clip_hu_max`` (-300: any soft tissue, enhanced vessel or bone counts the same, so the
feature is in effect the share of dense tissue near the voxel), as a z-score against the same
quantity in the lungs of normal training phantoms. The z-score maps to a calibrated score in [0, 1]:

    score = 1 - (1 - voxel_threshold) ** (max(z, 0) / z_reference)

so that ``score >= voxel_threshold`` exactly when ``z`` exceeds ``z_reference``: a margin above the
highest ``z`` at which any normal training phantom still has a finding-sized component (the
vessel-richest normal lung sets it), so that a normal study gets no finding at all.

What it can and cannot see, by construction: denser-than-normal lung that the gate's lung mask
holds — nodules and masses surrounded by lung, ground glass, part-solid nodules, consolidation
inside the lung — at sizes near ``kernel_mm`` and up. Lesions against the chest wall, the
mediastinum or a large vessel fall outside the baseline lung mask, and everything outside the
lungs (effusion, mediastinal nodes, bone) scores 0; hyperlucent change (emphysema) is not scored,
since airways in the mask look the same to this feature. Parameters come from
``baseline_hu_zscore.json``, written by ``python -m worker_screener.fit_baseline``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

from shared.anatomy import LUNG_ANY, label_of
from shared.report import ModelInfo

PARAMETERS_PATH = Path(__file__).with_name("baseline_hu_zscore.json")
MODEL_NAME = "baseline-hu-zscore"
_LUNG_LABELS = np.array([label_of(name) for name in LUNG_ANY], dtype=np.uint8)


@dataclass(frozen=True)
class BaselineParameters:
    """The fitted statistics and calibrated thresholds of the baseline (see module doc)."""

    version: str
    kernel_mm: float
    clip_hu_max: float
    lung_mean_hu: float
    lung_std_hu: float
    no_finding_margin: float
    z_reference: float
    voxel_threshold: float
    study_threshold: float
    score_unit: str
    checksum: str

    @property
    def model(self) -> ModelInfo:
        """Identity for reports."""
        return ModelInfo(stage="screen", name=MODEL_NAME, version=self.version, checksum=self.checksum)


@lru_cache(maxsize=1)
def load_parameters(path: Path = PARAMETERS_PATH) -> BaselineParameters:
    """Read the parameter file once per process; its SHA-256 identifies the model version."""
    raw = path.read_bytes()
    values = json.loads(raw)
    fields = {name: values[name] for name in BaselineParameters.__dataclass_fields__ if name != "checksum"}
    return BaselineParameters(**fields, checksum=hashlib.sha256(raw).hexdigest())


def lung_mask(labels: np.ndarray) -> np.ndarray:
    """The lungs the baseline scores: every voxel of a lung or lobe label of the gate's organ map."""
    return np.isin(labels, _LUNG_LABELS)


def local_lung_mean(hu: np.ndarray, lung: np.ndarray, spacing: tuple[float, float, float], kernel_mm: float) -> np.ndarray:
    """Mean HU of lung voxels in a ``kernel_mm`` cube around each voxel (``float32``, 0 outside ``lung``)."""
    size = _kernel_voxels(spacing, kernel_mm)
    weights = lung.astype(np.float32)
    total = ndimage.uniform_filter(np.where(lung, hu, 0).astype(np.float32), size=size, mode="constant")
    count = ndimage.uniform_filter(weights, size=size, mode="constant")
    mean = np.zeros(hu.shape, dtype=np.float32)
    np.divide(total, count, out=mean, where=lung & (count > 0))
    return mean


def lung_zscores(hu: np.ndarray, lung: np.ndarray, spacing: tuple[float, float, float], parameters: BaselineParameters) -> np.ndarray:
    """``z`` of the clipped local lung mean against normal lungs, on ``lung`` voxels (``float32``, 0 elsewhere)."""
    bounds = _bounding_slices(lung)
    z = np.zeros(hu.shape, dtype=np.float32)
    if bounds is None:
        return z
    crop_lung = lung[bounds]
    clipped = np.minimum(hu[bounds], np.float32(parameters.clip_hu_max)).astype(np.float32)
    mean = local_lung_mean(clipped, crop_lung, spacing, parameters.kernel_mm)
    crop = (mean - np.float32(parameters.lung_mean_hu)) / np.float32(parameters.lung_std_hu)
    crop[~crop_lung] = 0.0
    z[bounds] = crop
    return z


def anomaly_scores(hu: np.ndarray, lung: np.ndarray, spacing: tuple[float, float, float], parameters: BaselineParameters) -> np.ndarray:
    """The calibrated anomaly map in [0, 1] (``float32``, shape of ``hu``); 0 outside the lungs."""
    z = np.maximum(lung_zscores(hu, lung, spacing, parameters), np.float32(0.0))
    scores = 1.0 - np.power(np.float32(1.0 - parameters.voxel_threshold), z / np.float32(parameters.z_reference))
    scores[~lung] = 0.0
    return scores.astype(np.float32, copy=False)


def _kernel_voxels(spacing: tuple[float, float, float], kernel_mm: float) -> tuple[int, int, int]:
    # spacing is (di, dj, dk); arrays are (k, j, i).
    return tuple(max(1, int(round(kernel_mm / s))) for s in spacing[::-1])  # type: ignore[return-value]


def _bounding_slices(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    found = ndimage.find_objects(mask.astype(np.uint8))
    return found[0] if found and found[0] is not None else None
