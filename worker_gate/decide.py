"""The gate's decision on an assembled volume: passport check, then the anatomy check.

Pure (a volume in, a verdict out), so real scans stored in any format can be judged as the worker
judges DICOM studies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.dicom.errors import Reason
from shared.dicom.volume import Volume
from shared.report import GateCheck
from worker_gate.anatomy import NO_CHEST_DETAIL, anatomy_checks
from worker_gate.backend import GateBackend, Segmentation
from worker_gate.passport import MAX_PIXEL_MM, passport_checks


@dataclass
class GateVerdict:
    """Accepted (with the organ segmentation) or refused with a reason; every check with its value."""

    accepted: bool
    checks: list[GateCheck] = field(default_factory=list)
    reason: Reason | None = None
    detail: str | None = None
    segmentation: Segmentation | None = None


def check_volume(volume: Volume, *, backend: GateBackend, max_pixel_mm: float = MAX_PIXEL_MM) -> GateVerdict:
    """Judge ``volume``: tags and geometry first (no segmentation when they refuse), then the organs."""
    checks, refusal = passport_checks(volume, max_pixel_mm=max_pixel_mm)
    if refusal is not None:
        failed = next(check for check in checks if not check.passed)
        detail = f"{failed.name} is {failed.value!r}, expected {failed.expected}"
        return GateVerdict(accepted=False, checks=checks, reason=refusal, detail=detail)
    segmentation = backend.segment(volume)
    organ_checks, missing = anatomy_checks(segmentation, backend=backend)
    checks += organ_checks
    if missing:
        return GateVerdict(
            accepted=False, checks=checks, reason=Reason.NO_CHEST_ANATOMY,
            detail=f"{NO_CHEST_DETAIL}: {', '.join(missing)}", segmentation=segmentation,
        )
    return GateVerdict(accepted=True, checks=checks, segmentation=segmentation)
