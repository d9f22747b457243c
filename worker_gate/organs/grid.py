"""The working grid of the organ segmenter: the volume reoriented to LPS axes and reduced to ~2.5 mm.

Every organ step works on a :class:`WorkGrid`, whose arrays are indexed ``[z, y, x]`` with ``z``
increasing towards the head (superior), ``y`` towards the back (posterior) and ``x`` towards the
patient's left: the LPS axes of DICOM PS3.3 C.7.6.2.1.1, so "left lung" means larger ``x``.
Volumes are brought to these axes by permuting and flipping array axes (the nearest LPS axis of each
direction cosine; gantry tilts of a few degrees are ignored), then reduced by block means so that one
working voxel covers ~``TARGET_MM``: organ shapes need no finer detail, and the reduction makes a
512x512x300 study ~60x smaller. Labels found on the working grid go back to the volume's own grid by
nearest-neighbour index maps (:meth:`WorkGrid.to_volume`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from shared.dicom.volume import Volume

TARGET_MM = 2.5
"""Working voxel size: a trachea (15-20 mm) is still 6-8 voxels wide, a rib 3-4."""

AIR_HU = -900.0
"""Below this a voxel is air (lumen of an airway, outside air); lung parenchyma lies above it."""

BONE_HU = 200.0
"""Above this a voxel is bone (or contrast-filled vessel, told apart by shape later)."""


@dataclass
class WorkGrid:
    """The volume on LPS-ordered ~2.5 mm axes, plus what is needed to map results back.

    ``hu``, ``air`` and ``bone`` have shape ``(nz, ny, nx)`` of the working grid; ``air``/``bone``
    are the fractions (0-1) of original voxels of each working voxel below ``AIR_HU`` / above
    ``BONE_HU``, which keep thin walls and thin ribs visible after averaging.
    """

    hu: np.ndarray
    air: np.ndarray
    bone: np.ndarray
    spacing: np.ndarray
    """``(dz, dy, dx)`` of the working grid in mm."""
    axes: tuple[int, int, int]
    """For working axis z, y, x: the volume array axis it came from."""
    flips: tuple[bool, bool, bool]
    """Whether that volume axis runs against +z/+y/+x."""
    index_maps: tuple[np.ndarray, np.ndarray, np.ndarray]
    """For working axis z, y, x: the working index of every (flipped) volume index along it."""
    source_shape: tuple[int, int, int]
    lps_x: np.ndarray
    """LPS x (mm) of every working x index, through the volume's centre."""

    @property
    def shape(self) -> tuple[int, int, int]:
        """Working array shape ``(nz, ny, nx)``."""
        return tuple(self.hu.shape)  # type: ignore[return-value]

    @property
    def voxel_ml(self) -> float:
        """Volume of one working voxel in ml."""
        return float(np.prod(self.spacing)) / 1000.0

    def mm(self, distance: float, axis: int) -> int:
        """A distance in mm as a whole number of working voxels along ``axis`` (at least 1)."""
        return max(1, int(round(distance / self.spacing[axis])))

    def to_volume(self, labels: np.ndarray) -> np.ndarray:
        """Map a working-grid label array back onto the volume's ``(nz, ny, nx)`` grid."""
        # the index maps are non-decreasing: repeating each working voxel is a cheap gather
        canonical = labels
        for axis in (2, 1, 0):
            counts = np.bincount(self.index_maps[axis], minlength=labels.shape[axis])
            canonical = np.repeat(canonical, counts, axis=axis)
        for axis, flip in enumerate(self.flips):
            if flip:
                canonical = np.flip(canonical, axis=axis)
        inverse = np.argsort(self.axes)
        return np.ascontiguousarray(np.transpose(canonical, inverse))


def lps_axes(volume: Volume) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """For LPS z, y, x: the ``hu`` array axis nearest to it and whether that axis runs backwards."""
    direction = volume.direction  # columns: i, j, k unit vectors in LPS
    array_axis_of_ijk = (2, 1, 0)  # hu[k, j, i]
    axes: list[int] = []
    flips: list[bool] = []
    for lps in (2, 1, 0):
        ijk = int(np.argmax(np.abs(direction[lps, :])))
        axes.append(array_axis_of_ijk[ijk])
        flips.append(bool(direction[lps, ijk] < 0))
    if len(set(axes)) != 3:
        raise ValueError("volume axes are too oblique to map onto LPS axes")
    return tuple(axes), tuple(flips)  # type: ignore[return-value]


def _block_sums(values: np.ndarray, factors: tuple[int, int, int], dtype: type) -> np.ndarray:
    """Sums over non-overlapping blocks of a ``(nz, ny, nx)`` array whose shape the factors divide.

    One axis at a time, as sums of strided views (numpy reduces a tiny trailing axis slowly).
    """
    out = values
    for axis, f in ((2, factors[2]), (1, factors[1]), (0, factors[0])):
        parts = [out[(slice(None),) * axis + (slice(k, None, f),)] for k in range(f)]
        total = parts[0].astype(dtype, copy=True)
        for part in parts[1:]:
            total += part
        out = total
    return out


def _reduce(hu: np.ndarray, factors: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block means of HU and the block fractions below ``AIR_HU`` and above ``BONE_HU``.

    The array end is padded by edge replication to a multiple of the factors; a few working slices
    are padded and converted to float at a time, which keeps the copies small.
    """
    shape = tuple(-(-n // f) for n, f in zip(hu.shape, factors))
    mean, air, bone = (np.empty(shape, dtype=np.float32) for _ in range(3))
    per_block = float(np.prod(factors))
    step = max(1, 32 // factors[0])
    for z0 in range(0, shape[0], step):
        chunk = hu[z0 * factors[0]:(z0 + step) * factors[0]]
        pad = [(0, (-n) % f) for n, f in zip(chunk.shape, factors)]
        if any(p for _, p in pad):
            chunk = np.pad(chunk, pad, mode="edge")
        mean[z0:z0 + step] = _block_sums(chunk.astype(np.float32), factors, np.float32) / per_block
        air[z0:z0 + step] = _block_sums(chunk < AIR_HU, factors, np.uint16) / per_block
        bone[z0:z0 + step] = _block_sums(chunk > BONE_HU, factors, np.uint16) / per_block
    return mean, air, bone


def _stretch_z(values: np.ndarray, nz: int) -> np.ndarray:
    """Linear interpolation along axis 0 to ``nz`` slices, the slab edges kept in place."""
    n = values.shape[0]
    centres = (np.arange(nz) + 0.5) * n / nz - 0.5
    k0 = np.clip(np.floor(centres).astype(np.intp), 0, n - 1)
    k1 = np.minimum(k0 + 1, n - 1)
    w = np.clip(centres - k0, 0.0, 1.0).astype(np.float32)[:, None, None]
    return values[k0] * (1.0 - w) + values[k1] * w


def make_grid(volume: Volume, *, target_mm: float = TARGET_MM) -> WorkGrid:
    """Reorient ``volume`` to LPS axes and reduce it to a ~``target_mm`` working grid."""
    axes, flips = lps_axes(volume)
    hu = np.transpose(volume.hu, axes)
    hu = hu[tuple(slice(None, None, -1) if f else slice(None) for f in flips)]
    ijk_spacing = volume.spacing
    source_spacing = np.array([ijk_spacing[2 - a] for a in axes], dtype=np.float64)  # hu axis a <-> ijk 2-a
    factors = tuple(max(1, int(round(target_mm / s))) for s in source_spacing)
    blocked_spacing = source_spacing * factors
    mean_hu, air, bone = _reduce(hu, factors)
    # Thick slices (e.g. 5 mm) are interpolated to ~target_mm so that 3-D morphology is near-isotropic.
    if blocked_spacing[0] > 1.5 * target_mm:
        nz = int(round(mean_hu.shape[0] * blocked_spacing[0] / target_mm))
        mean_hu, air, bone = (_stretch_z(a, nz) for a in (mean_hu, air, bone))
    extent = np.ceil(np.array(hu.shape) / factors) * blocked_spacing
    spacing = extent / np.array(mean_hu.shape)
    index_maps = tuple(
        np.minimum(((np.arange(n) + 0.5) * s / w).astype(np.intp), m - 1)
        for n, s, w, m in zip(hu.shape, source_spacing, spacing, mean_hu.shape)
    )
    return WorkGrid(
        hu=mean_hu, air=air, bone=bone, spacing=spacing, axes=axes, flips=flips,
        index_maps=index_maps, source_shape=tuple(volume.hu.shape),  # type: ignore[arg-type]
        lps_x=_lps_x(volume, axes[2], flips[2], spacing[2] / source_spacing[2], mean_hu.shape[2]),
    )


def _lps_x(volume: Volume, axis: int, flip: bool, step: float, n: int) -> np.ndarray:
    """LPS x (mm) of the centres of ``n`` working voxels along the x axis, ``step`` volume voxels wide."""
    centres = (np.arange(n) + 0.5) * step - 0.5  # in (flipped) volume voxels along that array axis
    if flip:
        centres = volume.hu.shape[axis] - 1 - centres
    ijk = np.tile((np.array(volume.hu.shape[::-1], dtype=float) - 1) / 2, (n, 1))
    ijk[:, 2 - axis] = centres  # hu[k, j, i]: array axis a is ijk component 2 - a
    return volume.index_to_lps(ijk)[:, 0]
