"""Organ segmentation backends of the gate and how one is selected.

* ``builtin`` (default): :func:`worker_gate.organs.segment_organs`, classical image processing that
  needs no downloaded weights: lungs split into lobes, airway, heart, aorta, bones, liver...; its
  lobes are trimmed to aerated lung plus enclosed lesions (:mod:`worker_gate.aerated`).
* ``baseline``: the threshold lung mask of :mod:`worker_gate.lungmask` (body and whole lungs, no
  heart), kept as the yardstick the others are measured against.
* ``totalsegmentator``: the TotalSegmentator package in fast mode with its installed weights
  (:mod:`worker_gate.totalseg`); never downloads, never sends usage statistics. Selecting it where
  the package or a model file is missing raises :class:`BackendUnavailable` saying what is missing.
* ``auto``: ``totalsegmentator`` where its package and weights are installed, else ``builtin``.

``CTRIAGE_GATE_BACKEND`` picks one; the worker logs the active backend when it starts.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from shared.anatomy import BY_LABEL, label_of
from shared.config import get_settings
from shared.dicom.volume import Volume
from shared.report import ModelInfo
from worker_gate.aerated import trim_to_aerated
from worker_gate.lungmask import body_outline, segment_baseline
from worker_gate.organs import segment_organs

BACKENDS = ("builtin", "baseline", "totalsegmentator", "auto")


class BackendUnavailable(RuntimeError):
    """The configured gate backend cannot run in this installation."""


@dataclass
class Segmentation:
    """What a backend found: a ``uint8`` label map ``(nz, ny, nx)`` with :mod:`shared.anatomy` ids."""

    labels: np.ndarray
    found: dict[str, float]
    """Organ name -> volume in ml, for every label present."""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GateBackend:
    """One organ segmenter as the gate uses it."""

    name: str
    display: str
    model: ModelInfo
    finds_heart: bool
    """False for the baseline lung mask: the anatomy check then judges the lungs alone."""
    segment: Callable[[Volume], Segmentation]


def label_counts(labels: np.ndarray) -> np.ndarray:
    """Voxels per label id (256 counts) of a ``uint8`` label map."""
    # slice by slice: bincount widens its input to int64, which for a whole volume costs ~1 s
    return sum((np.bincount(plane.ravel(), minlength=256) for plane in labels), np.zeros(256, dtype=np.int64))


def _builtin(volume: Volume) -> Segmentation:
    # organ volumes as segmented (lungs with their vessels); the label map's lungs are trimmed for the screener
    result = segment_organs(volume, lobes=True)
    return Segmentation(labels=trim_to_aerated(volume, result.labels), found=result.found, notes=result.notes)


def _baseline(volume: Volume) -> Segmentation:
    mask = segment_baseline(volume)
    found = {"lung_left": round(mask.left_ml, 1), "lung_right": round(mask.right_ml, 1)}
    return Segmentation(labels=mask.labels, found={k: v for k, v in found.items() if v > 0})


BUILTIN = GateBackend(
    name="builtin", display="built-in organ segmenter (no weights)",
    model=ModelInfo(stage="gate", name="builtin-organs", version="1"), finds_heart=True, segment=_builtin,
)
BASELINE = GateBackend(
    name="baseline", display="baseline threshold lung mask",
    model=ModelInfo(stage="gate", name="baseline-tags-hu-threshold", version="1"), finds_heart=False,
    segment=_baseline,
)


def _totalsegmentator(volume: Volume) -> Segmentation:
    from worker_gate.totalseg import run_totalsegmentator, to_anatomy

    labels = to_anatomy(run_totalsegmentator(volume))
    # organ volumes as TotalSegmentator drew them; the label map's lungs are trimmed for the screener
    counts = label_counts(labels)
    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    found = {BY_LABEL[i].name: round(float(counts[i]) * voxel_ml, 1) for i in np.flatnonzero(counts[1:]) + 1}
    labels[(labels == 0) & body_outline(volume.hu)] = label_of("body")
    return Segmentation(labels=trim_to_aerated(volume, labels), found=found)


def totalsegmentator_problem() -> str | None:
    """Why TotalSegmentator cannot run here (package or model files missing); ``None`` when it can."""
    if importlib.util.find_spec("totalsegmentator") is None:
        return ("the totalsegmentator package is not installed; install it (it needs torch) with its weights, "
                "or set CTRIAGE_GATE_BACKEND=builtin")
    from worker_gate.totalseg import missing_weights, weights_dir

    missing = missing_weights()
    if missing:
        return (f"its fast-mode weights are not installed under {weights_dir()} (missing: {'; '.join(missing)}); "
                "ctriage never lets TotalSegmentator download them: install them with "
                "`totalseg_download_weights -t total_fast` (same TOTALSEG_HOME_DIR / TOTALSEG_WEIGHTS_PATH as the "
                "worker), or set CTRIAGE_GATE_BACKEND=builtin")
    return None


def _totalsegmentator_backend() -> GateBackend:
    problem = totalsegmentator_problem()
    if problem:
        raise BackendUnavailable(f"gate backend 'totalsegmentator' cannot run: {problem}")
    from worker_gate.totalseg import device, disable_usage_stats, weights_dir

    disable_usage_stats()
    return GateBackend(
        name="totalsegmentator", display=f"TotalSegmentator fast, task total, on {device()}, weights in {weights_dir()}",
        model=ModelInfo(stage="gate", name="totalsegmentator-total-fast",
                        version=importlib.metadata.version("TotalSegmentator")),
        finds_heart=True, segment=_totalsegmentator,
    )


def select_backend(name: str | None = None) -> GateBackend:
    """The backend named (default ``CTRIAGE_GATE_BACKEND``); ``BackendUnavailable`` if it cannot run here."""
    chosen = (name or get_settings().gate_backend).strip().lower()
    if chosen == "builtin":
        return BUILTIN
    if chosen == "baseline":
        return BASELINE
    if chosen == "totalsegmentator":
        return _totalsegmentator_backend()
    if chosen == "auto":
        try:
            return _totalsegmentator_backend()
        except BackendUnavailable:
            return BUILTIN
    raise BackendUnavailable(f"unknown gate backend {chosen!r}; choose one of {', '.join(BACKENDS)}")


def describe_active_backend() -> str:
    """One log line: the active backend and, when it is not TotalSegmentator, why not."""
    backend = select_backend()
    line = f"gate backend: {backend.name} ({backend.display})"
    if backend.name != "totalsegmentator":
        problem = totalsegmentator_problem()
        line += f"; TotalSegmentator not usable: {problem}" if problem else "; TotalSegmentator is installed (not selected)"
    return line
