"""The phantom's voxel grid in body coordinates, and shape primitives drawn inside bounding boxes.

Body coordinates are millimetres with the axes of DICOM patient coordinates (LPS: ``x`` towards
the patient's left, ``y`` posterior, ``z`` superior) but centred on the thorax: ``x = y = 0`` is the
body outline's centre and ``z = 0`` the top of the right hemidiaphragm. ``Grid.lps_offset`` moves
them to scanner (LPS) coordinates. Arrays are ``(nz, ny, nx)`` as in :mod:`shared.dicom.volume`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from shared.dicom.volume import affine_from

Box = tuple[slice, slice, slice]


@dataclass(frozen=True)
class Grid:
    """An axial voxel grid: ``shape`` ``(nz, ny, nx)``, ``spacing`` ``(dx, dy, dz)`` mm."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    """Body coordinates ``(x, y, z)`` of voxel ``(0, 0, 0)``'s centre."""
    lps_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @cached_property
    def x(self) -> np.ndarray:
        """Body ``x`` (mm) of each column, shape ``(nx,)``."""
        return (self.origin[0] + self.spacing[0] * np.arange(self.shape[2])).astype(np.float32)

    @cached_property
    def y(self) -> np.ndarray:
        """Body ``y`` (mm) of each row, shape ``(ny,)``."""
        return (self.origin[1] + self.spacing[1] * np.arange(self.shape[1])).astype(np.float32)

    @cached_property
    def z(self) -> np.ndarray:
        """Body ``z`` (mm) of each slice, shape ``(nz,)``."""
        return (self.origin[2] + self.spacing[2] * np.arange(self.shape[0])).astype(np.float32)

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in millilitres."""
        return float(np.prod(self.spacing)) / 1000.0

    @property
    def affine(self) -> np.ndarray:
        """The LPS affine of :class:`shared.dicom.volume.Volume` for this grid."""
        origin = tuple(o + d for o, d in zip(self.origin, self.lps_offset))
        return affine_from(spacing=self.spacing, origin=origin)

    def to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Fractional ``(i, j, k)`` of body points ``(..., 3)``."""
        return (np.asarray(xyz, dtype=np.float64) - self.origin) / self.spacing

    def to_lps(self, xyz: np.ndarray) -> np.ndarray:
        """LPS mm of body points ``(..., 3)``."""
        return np.asarray(xyz, dtype=np.float64) + self.lps_offset

    def box(self, lo: np.ndarray, hi: np.ndarray) -> Box | None:
        """Slices ``(k, j, i)`` covering body points ``lo..hi`` (x, y, z), clipped; None when empty."""
        a = np.floor(self.to_index(lo)).astype(int)
        b = np.ceil(self.to_index(hi)).astype(int) + 1
        n = (self.shape[2], self.shape[1], self.shape[0])
        a = np.clip(a, 0, n)
        b = np.clip(b, 0, n)
        if np.any(b <= a):
            return None
        return (slice(a[2], b[2]), slice(a[1], b[1]), slice(a[0], b[0]))

    def coords(self, box: Box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable body ``(x, y, z)`` of a box: shapes ``(1,1,nx')``, ``(1,ny',1)``, ``(nz',1,1)``."""
        return (
            self.x[box[2]][None, None, :],
            self.y[box[1]][None, :, None],
            self.z[box[0]][:, None, None],
        )


def segment_distance(
    grid: Grid, box: Box, p0: np.ndarray, p1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distance (mm) of each box voxel to segment ``p0-p1`` and the segment parameter ``t`` in [0, 1]."""
    x, y, z = grid.coords(box)
    d = np.asarray(p1, dtype=np.float32) - np.asarray(p0, dtype=np.float32)
    length2 = float(d @ d)
    rx, ry, rz = x - np.float32(p0[0]), y - np.float32(p0[1]), z - np.float32(p0[2])
    if length2 < 1e-9:
        t = np.zeros((1, 1, 1), dtype=np.float32)
    else:
        t = np.clip((rx * d[0] + ry * d[1] + rz * d[2]) / np.float32(length2), 0.0, 1.0)
    dist2 = (rx - t * d[0]) ** 2 + (ry - t * d[1]) ** 2 + (rz - t * d[2]) ** 2
    return np.sqrt(dist2), t


def capsule_box(grid: Grid, p0: np.ndarray, p1: np.ndarray, radius: float) -> Box | None:
    """Bounding box of a capsule of ``radius`` around segment ``p0-p1``."""
    lo = np.minimum(p0, p1) - radius
    hi = np.maximum(p0, p1) + radius
    return grid.box(lo, hi)


def ellipsoid_q(
    grid: Grid, box: Box, center: np.ndarray, radii: np.ndarray, rotation: np.ndarray | None = None
) -> np.ndarray:
    """Normalised squared radius ``q`` (``q <= 1`` inside) of an ellipsoid over a box.

    ``rotation`` is a 3x3 matrix whose rows are the ellipsoid's axes in body coordinates.
    """
    x, y, z = grid.coords(box)
    dx, dy, dz = x - np.float32(center[0]), y - np.float32(center[1]), z - np.float32(center[2])
    r = np.eye(3) if rotation is None else np.asarray(rotation)
    q = np.zeros(np.broadcast_shapes(dx.shape, dy.shape, dz.shape), dtype=np.float32)
    for axis in range(3):
        u = dx * np.float32(r[axis, 0]) + dy * np.float32(r[axis, 1]) + dz * np.float32(r[axis, 2])
        q += (u / np.float32(radii[axis])) ** 2
    return q


def ellipsoid_box(grid: Grid, center: np.ndarray, radii: np.ndarray) -> Box | None:
    """Bounding box of an ellipsoid, whatever its rotation (a sphere of its largest radius)."""
    r = float(np.max(radii))
    c = np.asarray(center, dtype=np.float64)
    return grid.box(c - r, c + r)


def rotation_towards(axis: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """Rows of an orthonormal frame whose first axis is ``axis``; ``roll`` turns the other two (rad)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    helper = np.array([0.0, 0.0, 1.0]) if abs(a[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    b = np.cross(a, helper)
    b /= np.linalg.norm(b)
    c = np.cross(a, b)
    cr, sr = np.cos(roll), np.sin(roll)
    return np.stack([a, cr * b + sr * c, -sr * b + cr * c])


def smooth_polyline(points: np.ndarray, step_mm: float) -> np.ndarray:
    """Catmull-Rom spline through control points ``(n, 3)``, resampled about every ``step_mm``."""
    p = np.asarray(points, dtype=np.float64)
    ext = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    out = []
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        n = max(2, int(np.ceil(np.linalg.norm(p2 - p1) / step_mm)))
        t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
        out.append(
            0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                   + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
        )
    out.append(p[-1:])
    return np.vstack(out)
