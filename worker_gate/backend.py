"""Organ segmentation backends of the gate and how one is selected.

* ``builtin`` (default): :func:`worker_gate.organs.segment_organs`, classical image processing that
  needs no downloaded weights: lungs split into lobes, airway, heart, aorta, bones, liver...; its
  lobes are trimmed to aerated lung plus enclosed lesions (:mod:`worker_gate.aerated`).
* ``baseline``: the threshold lung mask of :mod:`worker_gate.lungmask` (body and whole lungs, no
  heart), kept as the yardstick the others are measured against.
* ``totalsegmentator``: the TotalSegmentator package with its weights (``TOTALSEG_HOME_DIR`` /
  ``TOTALSEG_WEIGHTS_PATH``). Its adapter is not written yet: selecting it raises
  :class:`BackendUnavailable`, saying whether the package is missing or only the adapter.

``CTRIAGE_GATE_BACKEND`` picks one; the worker logs the active backend when it starts.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.config import get_settings
from shared.dicom.volume import Volume
from shared.report import ModelInfo
from worker_gate.aerated import trim_to_aerated
from worker_gate.lungmask import segment_baseline
from worker_gate.organs import segment_organs

BACKENDS = ("builtin", "baseline", "totalsegmentator")


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


def select_backend(name: str | None = None) -> GateBackend:
    """The backend named (default ``CTRIAGE_GATE_BACKEND``); ``BackendUnavailable`` if it cannot run here."""
    chosen = (name or get_settings().gate_backend).strip().lower()
    if chosen == "builtin":
        return BUILTIN
    if chosen == "baseline":
        return BASELINE
    if chosen == "totalsegmentator":
        if importlib.util.find_spec("totalsegmentator") is None:
            raise BackendUnavailable(
                "gate backend 'totalsegmentator' is selected but the totalsegmentator package is not installed; "
                "install it (it needs torch) with its weights, or set CTRIAGE_GATE_BACKEND=builtin"
            )
        raise BackendUnavailable(
            "gate backend 'totalsegmentator': the package is installed but ctriage's adapter for it is not "
            "written yet; set CTRIAGE_GATE_BACKEND=builtin"
        )
    raise BackendUnavailable(f"unknown gate backend {chosen!r}; choose one of {', '.join(BACKENDS)}")


def totalsegmentator_weights() -> Path | None:
    """The folder of TotalSegmentator weights named by its environment variables, if it exists."""
    for variable in ("TOTALSEG_WEIGHTS_PATH", "TOTALSEG_HOME_DIR"):
        folder = os.environ.get(variable)
        if folder and Path(folder).is_dir():
            return Path(folder)
    return None


def describe_active_backend() -> str:
    """One log line: the active backend and whether TotalSegmentator weights are present."""
    backend = select_backend()
    weights = totalsegmentator_weights()
    extra = f"; TotalSegmentator weights found at {weights} (not selected)" if weights and backend.name != "totalsegmentator" else ""
    return f"gate backend: {backend.name} ({backend.display}){extra}"
