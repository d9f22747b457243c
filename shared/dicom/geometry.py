"""Slice geometry of a series: order along the slice normal, spacing, gaps, duplicates, gantry tilt.

DICOM PS3.3 C.7.6.2.1.1: ImageOrientationPatient gives the row and column direction cosines of a
plane; their cross product is the slice normal. Slices are ordered by the projection of
ImagePositionPatient onto that normal (InstanceNumber is never used: it need not follow position).
With gantry tilt the planes are tilted but the table still moves along the patient axis, so the
step between slice positions is not parallel to the normal; the affine then takes the real step as
its k column (a sheared, non-orthogonal grid) so that index-to-patient mapping stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shared.dicom import header
from shared.dicom.errors import LoadError, Reason
from shared.dicom.frames import Frame

DUPLICATE_TOLERANCE_MM = 0.01
"""Slices closer than this along the normal are the same slice."""
UNIFORM_TOLERANCE = 0.01
"""Gaps within this fraction of the nominal spacing (or 0.01 mm) count as uniform."""
MAX_BRIDGED_GAP = 5.0
"""Largest gap, in nominal spacings, filled by interpolation; larger holes make a volume unusable."""
TILT_WARNING_DEGREES = 0.1
_OBLIQUE_DEGREES = 30.0  # a plane further than this from every patient axis is 'oblique'


@dataclass
class SlicePlan:
    """Kept frames in slice order and the volume grid they fill.

    When ``grid_lower`` is ``None`` the frames are the grid, one slice each. Otherwise output slice
    ``k`` is ``(1 - w) * frames[lower[k]] + w * frames[lower[k] + 1]`` with ``w = grid_weight[k]``
    (``w == 0``: an exact copy of ``frames[lower[k]]``).
    """

    frames: list[Frame]
    affine: np.ndarray
    grid_lower: np.ndarray | None = None
    grid_weight: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def n_slices(self) -> int:
        """Number of slices of the output volume."""
        return len(self.frames) if self.grid_lower is None else len(self.grid_lower)


def orientation_label(orientation: np.ndarray | None) -> str | None:
    """'axial', 'coronal', 'sagittal' or 'oblique' for an ImageOrientationPatient; None when absent."""
    if orientation is None:
        return None
    normal = np.cross(orientation[:3], orientation[3:])
    norm = np.linalg.norm(normal)
    if norm == 0:
        return None
    normal = np.abs(normal / norm)
    axis = int(np.argmax(normal))
    if np.degrees(np.arccos(min(1.0, normal[axis]))) > _OBLIQUE_DEGREES:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def plan_slices(frames: list[Frame]) -> SlicePlan:
    """Order, de-duplicate and grid the frames of one series; ``INCONSISTENT_GEOMETRY`` if unusable."""
    row, column, normal, pixel_spacing = _common_plane(frames)
    positions = np.stack([f.position for f in frames])  # type: ignore[misc]
    along = positions @ normal
    order = np.lexsort((
        [f.index for f in frames], [f.instance.sop_instance_uid for f in frames], along,
    ))
    keep = [int(order[0])]
    for index in order[1:]:
        if along[index] - along[keep[-1]] >= DUPLICATE_TOLERANCE_MM:
            keep.append(int(index))
    warnings: list[str] = []
    if len(keep) < len(frames):
        warnings.append(
            f"{len(frames) - len(keep)} duplicate slice(s) at the same position as another were dropped "
            "(one kept per position)"
        )
    kept = [frames[i] for i in keep]
    positions, along = positions[keep], along[keep]
    affine = np.eye(4)
    affine[:3, 0] = row * pixel_spacing[1]  # PixelSpacing[1] is the distance between columns
    affine[:3, 1] = column * pixel_spacing[0]
    affine[:3, 3] = positions[0]
    if len(kept) == 1:
        affine[:3, 2] = normal * (kept[0].slice_thickness or 1.0)
        return SlicePlan(kept, affine, warnings=warnings)

    plan = _grid(kept, along, warnings)
    step_along = (along[-1] - along[0]) / (plan.n_slices - 1)
    affine[:3, 2] = _slice_step(positions, along, normal, step_along, min(pixel_spacing), warnings)
    plan.affine = affine
    return plan


def _common_plane(frames: list[Frame]) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    missing = sum(f.position is None or f.orientation is None or f.pixel_spacing is None for f in frames)
    if missing:
        raise LoadError(
            Reason.INCONSISTENT_GEOMETRY,
            f"{missing} of {len(frames)} slices lack ImagePositionPatient, ImageOrientationPatient or PixelSpacing",
            slices_without_geometry=missing,
        )
    datasets = {id(f.instance): f.instance.dataset for f in frames}.values()
    sizes = {(header.integer(ds, "Rows", 0), header.integer(ds, "Columns", 0)) for ds in datasets}
    if len(sizes) > 1:
        raise LoadError(Reason.INCONSISTENT_GEOMETRY, f"slices differ in matrix size: {sorted(sizes)}")
    orientations = np.stack([f.orientation for f in frames])  # type: ignore[misc]
    if np.abs(orientations - orientations[0]).max() > 1e-3:
        raise LoadError(Reason.INCONSISTENT_GEOMETRY, "slices differ in ImageOrientationPatient")
    spacings = np.array([f.pixel_spacing for f in frames])
    if np.abs(spacings - spacings[0]).max() > 1e-3 * spacings[0].max():
        raise LoadError(Reason.INCONSISTENT_GEOMETRY, "slices differ in PixelSpacing")
    if np.any(spacings[0] <= 0):
        raise LoadError(Reason.INCONSISTENT_GEOMETRY, f"PixelSpacing {spacings[0].tolist()} is not positive")
    row, column = orientations[0][:3], orientations[0][3:]
    norms = np.linalg.norm(row), np.linalg.norm(column)
    if min(norms) < 1e-6 or abs(row @ column) / (norms[0] * norms[1]) > 1e-3:
        raise LoadError(Reason.INCONSISTENT_GEOMETRY, "ImageOrientationPatient cosines are not orthogonal unit vectors")
    row, column = row / norms[0], column / norms[1]
    return row, column, np.cross(row, column), (float(spacings[0][0]), float(spacings[0][1]))


def _grid(kept: list[Frame], along: np.ndarray, warnings: list[str]) -> SlicePlan:
    gaps = np.diff(along)
    nominal = float(np.median(gaps))
    tolerance = max(0.01, UNIFORM_TOLERANCE * nominal)
    if np.all(np.abs(gaps - nominal) <= tolerance):
        return SlicePlan(kept, np.eye(4), warnings=warnings)
    largest = float(gaps.max())
    if largest > MAX_BRIDGED_GAP * nominal + tolerance:
        raise LoadError(
            Reason.INCONSISTENT_GEOMETRY,
            f"a gap of {largest:.3g} mm between slices exceeds {MAX_BRIDGED_GAP:g} x the {nominal:.3g} mm spacing",
            largest_gap_mm=round(largest, 3), spacing_mm=round(nominal, 3),
        )
    n_slices = int(round((along[-1] - along[0]) / nominal)) + 1
    step = (along[-1] - along[0]) / (n_slices - 1)
    targets = along[0] + np.arange(n_slices) * step
    lower = np.clip(np.searchsorted(along, targets, side="right") - 1, 0, len(kept) - 2)
    weight = (targets - along[lower]) / (along[lower + 1] - along[lower])
    snap = 0.01 * step  # grid slices this close to a real slice copy it (and keep its UID)
    upper_hit = np.abs(targets - along[lower + 1]) <= snap
    lower[upper_hit] += 1
    weight[upper_hit] = 0.0
    weight[np.abs(targets - along[lower]) <= snap] = 0.0
    filled = int(np.count_nonzero(weight))
    ratios = gaps / nominal
    if np.all(np.abs(ratios - np.round(ratios)) <= 0.05):
        holes = ratios > 1.5
        warnings.append(
            f"missing slices: {int(holes.sum())} gap(s) of up to {largest:.3g} mm in a {nominal:.3g} mm series; "
            f"{filled} slice(s) filled by linear interpolation (SOPInstanceUID empty there)"
        )
    else:
        warnings.append(
            f"uneven slice spacing: gaps from {gaps.min():.3g} to {largest:.3g} mm (median {nominal:.3g}); "
            f"resampled to a uniform {step:.3g} mm, {filled} slice(s) interpolated (SOPInstanceUID empty there)"
        )
    return SlicePlan(kept, np.eye(4), grid_lower=lower, grid_weight=weight, warnings=warnings)


def _slice_step(
    positions: np.ndarray, along: np.ndarray, normal: np.ndarray, step_along: float, pixel: float,
    warnings: list[str],
) -> np.ndarray:
    """The affine's k column: the displacement from one grid slice to the next."""
    per_mm = (positions[-1] - positions[0]) / (along[-1] - along[0])  # displacement per mm along normal
    off_line = positions - positions[0] - np.outer(along - along[0], per_mm)
    worst = float(np.linalg.norm(off_line, axis=1).max())
    if worst > max(0.05, 0.25 * pixel):
        raise LoadError(
            Reason.INCONSISTENT_GEOMETRY,
            f"slice positions do not lie on one line (off by up to {worst:.3g} mm)",
            off_line_mm=round(worst, 3),
        )
    tilt = float(np.degrees(np.arccos(np.clip(per_mm @ normal / np.linalg.norm(per_mm), -1.0, 1.0))))
    if tilt < 1e-3:
        return normal * step_along
    if tilt >= TILT_WARNING_DEGREES:
        warnings.append(
            f"gantry tilt: slice positions step {tilt:.2f} degrees off the slice normal; the affine's k axis "
            "follows the real positions (a sheared grid, not orthogonal to the slice plane): resample before "
            "assuming orthogonal axes"
        )
    return per_mm * step_along
