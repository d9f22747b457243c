"""Rasterise DICOM RT Structure Set contours to a voxel mask on a CT grid.

An RT Structure Set (PS3.3 A.19) stores each ROI as planar polygons: ROI Contour Sequence
(3006,0039) > Contour Sequence (3006,0040) > Contour Data (3006,0050), triplets ``x, y, z`` in mm in
the patient coordinate system (LPS) of the referenced Frame of Reference (PS3.3 C.8.8.6). A voxel
belongs to the ROI when its centre lies inside the polygon drawn on its slice. Several contours on one
slice combine by the even-odd rule, so an inner contour cuts a hole (PS3.3 C.8.8.6.3 leaves holes to
this convention; it is what common planning systems write).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

from shared.dicom.volume import Volume

_PLANE_TOLERANCE = 0.25  # of a slice spacing: a contour must lie on a slice of the target grid


@dataclass(frozen=True)
class Contour:
    """One closed planar polygon of an ROI: ``points`` is ``(n, 3)`` LPS mm."""

    points: np.ndarray


def read_roi_contours(*, rtstruct: Path, roi_name: str) -> tuple[str, list[Contour]]:
    """``(FrameOfReferenceUID, closed planar contours)`` of the ROI named ``roi_name``."""
    ds = pydicom.dcmread(str(rtstruct))
    if ds.get("Modality") != "RTSTRUCT":
        raise ValueError(f"{rtstruct.name} is not an RT Structure Set (Modality {ds.get('Modality')!r})")
    numbers = {int(roi.ROINumber): roi for roi in ds.StructureSetROISequence if roi.ROIName == roi_name}
    if len(numbers) != 1:
        names = sorted(str(roi.ROIName) for roi in ds.StructureSetROISequence)
        raise ValueError(f"{rtstruct.name}: need exactly one ROI named {roi_name!r}, found ROIs {names}")
    (number, roi), = numbers.items()
    contours = [
        Contour(points=np.asarray(item.ContourData, dtype=np.float64).reshape(-1, 3))
        for roi_contour in ds.ROIContourSequence if int(roi_contour.ReferencedROINumber) == number
        for item in roi_contour.get("ContourSequence", [])
        if item.ContourGeometricType == "CLOSED_PLANAR"  # POINT and OPEN_PLANAR enclose no volume
    ]
    return str(roi.ReferencedFrameOfReferenceUID), contours


def rasterise_contours(*, contours: list[Contour], volume: Volume) -> np.ndarray:
    """Boolean ``(nz, ny, nx)`` mask on ``volume``'s grid: voxel centres inside the contours."""
    from skimage.draw import polygon  # scikit-image: only the real-data tools need it

    nz, ny, nx = volume.shape
    mask = np.zeros((nz, ny, nx), dtype=bool)
    for contour in contours:
        ijk = volume.lps_to_index(contour.points)
        k = float(np.median(ijk[:, 2]))
        if np.ptp(ijk[:, 2]) > 2 * _PLANE_TOLERANCE or abs(k - round(k)) > _PLANE_TOLERANCE:
            raise ValueError(f"a contour at slice index {k:.2f} does not lie on a slice of the CT grid")
        if not 0 <= round(k) < nz:
            raise ValueError(f"a contour at slice index {k:.2f} lies outside the CT's {nz} slices")
        rows, cols = polygon(ijk[:, 1], ijk[:, 0], shape=(ny, nx))
        plane = np.zeros((ny, nx), dtype=bool)
        plane[rows, cols] = True
        mask[round(k)] ^= plane
    return mask


def rasterise_roi(*, rtstruct: Path, roi_name: str, volume: Volume) -> np.ndarray:
    """Boolean ``(nz, ny, nx)`` mask of ROI ``roi_name`` on ``volume``'s grid."""
    frame_of_reference, contours = read_roi_contours(rtstruct=rtstruct, roi_name=roi_name)
    if volume.meta.frame_of_reference_uid and volume.meta.frame_of_reference_uid != frame_of_reference:
        raise ValueError(f"{rtstruct.name} refers to another Frame of Reference than the CT series")
    if not contours:
        raise ValueError(f"{rtstruct.name}: ROI {roi_name!r} has no closed planar contour")
    return rasterise_contours(contours=contours, volume=volume)


def polygon_area_mm2(contour: Contour) -> float:
    """Area enclosed by a planar contour (shoelace formula in the contour's own plane)."""
    centred = contour.points - contour.points.mean(axis=0)
    cross = np.cross(centred, np.roll(centred, -1, axis=0)).sum(axis=0)
    return float(np.linalg.norm(cross) / 2)


def polygon_perimeter_mm(contour: Contour) -> float:
    """Length of a closed contour's boundary."""
    return float(np.linalg.norm(contour.points - np.roll(contour.points, -1, axis=0), axis=1).sum())
