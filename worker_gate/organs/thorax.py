"""Regions of the thorax derived from the lungs: the space between them and the space below them.

``between_lungs`` is, slice by slice, the convex hull of both lungs: the thoracic cavity that holds
the mediastinum (heart, great vessels, trachea, oesophagus) and, at its back, part of the spine.
``diaphragm_height`` estimates the diaphragm under every column from the lung bases, and
``below_diaphragm`` marks what lies under it: liver, stomach and spleen.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import convex_hull_image


def slice_hulls(mask: np.ndarray) -> np.ndarray:
    """Boolean ``(nz, ny, nx)``: the convex hull of ``mask`` in every axial slice."""
    hull = np.zeros_like(mask)
    for z in np.flatnonzero(mask.any(axis=(1, 2))):
        ys, xs = np.nonzero(mask[z])
        box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        hull[z][box] = convex_hull_image(mask[z][box])
    return hull


def between_lungs(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Boolean ``(nz, ny, nx)``: per-slice convex hull of both lungs, where both lungs are present."""
    both = left.any(axis=(1, 2)) & right.any(axis=(1, 2))
    return slice_hulls((left | right) & both[:, None, None])


SMOOTH_VOXELS = 7
"""Width of the median filter smoothing the diaphragm height map (~17 mm on the working grid)."""

CUT_BASE_SHARE = {"right": 0.3, "left": 0.03}
"""A lung whose first (lowest) slice holds more than this share of its largest cross-section is
cut by the scan above its base (see :func:`diaphragm_height`)."""


def under_lung(lungs: np.ndarray) -> np.ndarray:
    """Boolean ``(nz, ny, nx)``: voxels below the lowest lung voxel of their column."""
    has_lung = lungs.any(axis=0)
    lowest = np.argmax(lungs, axis=0)
    z = np.arange(lungs.shape[0])[:, None, None]
    return has_lung[None] & (z < lowest[None])


def diaphragm_height(left: np.ndarray, right: np.ndarray, *, left_band: int, right_band: int) -> np.ndarray:
    """``(ny, nx)`` working z of the diaphragm under each column (NaN where no lung base is seen).

    Under a lung the diaphragm is the lung's lowest voxel, but only in columns where that lowest
    voxel is near the lung's deepest point (within the band): higher lung bottoms rest on the heart,
    not the diaphragm (the lingula on the left, the middle lobe's front on the right). Between the
    lungs, under the heart, the height is interpolated along x (coronal rows) between the two sides.

    A scan often ends below the domes but above the posterior recesses, which then reach its first
    slice: columns whose lung does are skipped, the others still show the dome. Under the right
    lung that is safe up to ``CUT_BASE_SHARE["right"]`` of its largest cross-section in the first
    slice (the recesses' crescents); more means the scan ends above the base. The left lung's
    lingula, resting on the heart, would pass for a dome in a scan cut through the heart, so the
    left lung counts only when it is clear of the first slice.
    """
    ny, nx = left.shape[1:]
    height = np.full((ny, nx), np.nan)
    for lung, band, side in ((right, right_band, "right"), (left, left_band, "left")):
        has_lung = lung.any(axis=0)
        areas = lung.sum(axis=(1, 2))
        if not has_lung.any() or areas[0] > CUT_BASE_SHARE[side] * areas.max():
            continue  # no lung, or the scan ends above this lung's base
        lowest = np.argmax(lung, axis=0).astype(float)  # first True along z = lowest lung voxel
        has_lung &= lowest > 0  # the lung goes on below the scan: no dome seen in this column
        if not has_lung.any():
            continue
        base = has_lung & (lowest <= lowest[has_lung].min() + band)
        height = np.where(base & ~(height <= lowest), lowest, height)
    rows = np.flatnonzero(np.isfinite(height).any(axis=1))
    if rows.size == 0:
        return height
    xs = np.arange(nx)
    filled = np.empty_like(height)
    for y in rows:
        known = np.isfinite(height[y])
        filled[y] = np.interp(xs, xs[known], height[y, known])
    # rows in front of or behind every lung base take the nearest row's profile; a median across
    # neighbouring rows and columns keeps one odd row from cutting a band out of the heart
    nearest = rows[np.abs(np.arange(ny)[:, None] - rows[None, :]).argmin(axis=1)]
    return ndimage.median_filter(filled[nearest], size=SMOOTH_VOXELS, mode="nearest")


def below_diaphragm(height: np.ndarray, shape: tuple[int, int, int], margin: int) -> np.ndarray:
    """Boolean ``shape``: voxels more than ``margin`` slices under the diaphragm height of their column."""
    z = np.arange(shape[0])[:, None, None]
    return np.isfinite(height)[None] & (z < np.nan_to_num(height, nan=-1.0)[None] - margin)
