"""The CT volume every stage works on, and its coordinate conventions.

Conventions (used everywhere in ctriage; do not invent others):

* ``Volume.hu`` is a ``float32`` or ``int16`` array of shape ``(nz, ny, nx)`` = (slice, row, column),
  in Hounsfield units after RescaleSlope/RescaleIntercept.
* Index order for geometry is DICOM's ``(i, j, k)`` = (column, row, slice), so that
  ``hu[k, j, i]`` is the voxel at index ``(i, j, k)``.
* ``Volume.affine`` is a 4x4 matrix mapping ``(i, j, k, 1)`` to patient coordinates in mm, LPS
  (DICOM PS3.3 C.7.6.2.1.1): column 0 = row direction cosine x column spacing, column 1 = column
  direction cosine x row spacing, column 2 = slice normal x slice spacing, column 3 = the position
  of the first voxel's centre (ImagePositionPatient of the first slice).
* ``spacing`` is ``(di, dj, dk)`` in mm, in the same (column, row, slice) order.
* Slice ``k`` of the array is ``meta.sop_instance_uids[k]`` (empty for synthetic or NIfTI input).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class VolumeMeta:
    """DICOM identity and descriptive tags of the series a volume came from (may hold PHI)."""

    study_instance_uid: str = ""
    series_instance_uid: str = ""
    frame_of_reference_uid: str = ""
    sop_class_uid: str = ""
    sop_instance_uids: list[str] = field(default_factory=list)
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_date: str = ""
    study_time: str = ""
    study_id: str = ""
    accession_number: str = ""
    study_description: str = ""
    series_description: str = ""
    series_number: int | None = None
    modality: str = ""
    body_part_examined: str = ""
    protocol_name: str = ""
    manufacturer: str = ""
    convolution_kernel: str = ""
    slice_thickness: float | None = None
    image_type: list[str] = field(default_factory=list)
    transfer_syntax_uid: str = ""


@dataclass
class Volume:
    """A CT volume in HU with its voxel-to-patient (LPS) geometry; see the module doc for axes."""

    hu: np.ndarray
    affine: np.ndarray
    meta: VolumeMeta = field(default_factory=VolumeMeta)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.hu.ndim != 3:
            raise ValueError(f"Volume.hu must be 3-D (nz, ny, nx), got shape {self.hu.shape}")
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.affine.shape != (4, 4):
            raise ValueError(f"Volume.affine must be 4x4, got {self.affine.shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(nz, ny, nx)``."""
        return tuple(self.hu.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size ``(di, dj, dk)`` in mm (column, row, slice)."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix whose columns are the unit vectors of the i, j and k axes in LPS."""
        return self.affine[:3, :3] / np.asarray(self.spacing)

    @property
    def origin(self) -> tuple[float, float, float]:
        """LPS position (mm) of voxel ``(0, 0, 0)``'s centre."""
        return tuple(float(v) for v in self.affine[:3, 3])  # type: ignore[return-value]

    def index_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """Map ``(..., 3)`` indices ``(i, j, k)`` to LPS mm."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Map ``(..., 3)`` LPS mm to fractional indices ``(i, j, k)``."""
        xyz = np.asarray(xyz, dtype=np.float64)
        return (xyz - self.affine[:3, 3]) @ np.linalg.inv(self.affine[:3, :3]).T


def affine_from(
    *, spacing: tuple[float, float, float], origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    direction: np.ndarray | None = None,
) -> np.ndarray:
    """Build a 4x4 LPS affine from spacing ``(di, dj, dk)``, origin and a 3x3 direction (default axial)."""
    d = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64)
    affine = np.eye(4)
    affine[:3, :3] = d * np.asarray(spacing, dtype=np.float64)
    affine[:3, 3] = origin
    return affine
