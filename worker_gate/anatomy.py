"""Anatomy check: "do we see lungs and a heart?", judged on the backend's organ volumes.

Both lungs within :data:`LUNG_ML` and (for backends that segment it) the heart within
:data:`HEART_ML` -> pass; otherwise the study does not look like a chest CT (``no_chest_anatomy``)
and the checks name what was missing with the volumes measured. Lobes count as their lung
(:data:`shared.anatomy.LEFT_LUNG_ANY`), so lobar and whole-lung label maps are judged alike.
"""

from __future__ import annotations

from shared.anatomy import LEFT_LUNG_ANY, RIGHT_LUNG_ANY
from shared.report import GateCheck
from worker_gate.backend import GateBackend, Segmentation

LUNG_ML = (100.0, 6000.0)
"""Each lung: above airway-only air and a scan that grazes the lung base, below any adult lung."""
HEART_ML = (100.0, 2000.0)
"""The heart (with the great vessels' roots): a child's heart is ~100 ml, an enlarged adult's < 2 l."""

NO_CHEST_DETAIL = "does not look like a chest CT; it cannot be processed"


def anatomy_checks(segmentation: Segmentation, *, backend: GateBackend) -> tuple[list[GateCheck], list[str]]:
    """The organ checks and what is wrong, e.g. "no heart found" (empty when the anatomy passes)."""
    found = segmentation.found
    measured = [
        ("lung_left_ml", "left lung", sum(found.get(name, 0.0) for name in LEFT_LUNG_ANY), LUNG_ML),
        ("lung_right_ml", "right lung", sum(found.get(name, 0.0) for name in RIGHT_LUNG_ANY), LUNG_ML),
    ]
    if backend.finds_heart:
        measured.append(("heart_ml", "heart", found.get("heart", 0.0), HEART_ML))
    checks = [
        GateCheck(name=name, passed=low <= ml <= high, value=round(ml, 1), expected=f"{low:g}-{high:g}",
                  detail=None if low <= ml <= high else _why(display, ml, low))
        for name, display, ml, (low, high) in measured
    ]
    checks.append(GateCheck(
        name="organs_found", passed=True, value={name: ml for name, ml in found.items() if name != "body"},
        expected=f"organs segmented by the {backend.name} backend (ml)", detail="; ".join(segmentation.notes) or None,
    ))
    return checks, [check.detail for check in checks if not check.passed and check.detail]


def _why(display: str, ml: float, low: float) -> str:
    return f"no {display} found" if ml < low else f"{display} implausibly large"
