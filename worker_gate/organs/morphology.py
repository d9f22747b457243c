"""Morphology helpers shared by the organ steps, by distance transforms on bounding boxes for speed.

Openings and closings of radius r use two Euclidean distance transforms (exact balls in mm on
anisotropic grids) instead of structuring elements, whose cost grows with r cubed.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...]:
    """Bounding box of ``mask`` widened by ``margin`` voxels, clipped to the array."""
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(axis=0) - margin, 0)
    hi = np.minimum(idx.max(axis=0) + margin + 1, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest connected component of ``mask`` (face connectivity); empty when ``mask`` is."""
    labels, count = ndimage.label(mask)
    if count == 0:
        return np.zeros_like(mask)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def open_largest(zone: np.ndarray, radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """The part of ``zone`` reached by balls of ``radius_mm`` inside its largest such component.

    An opening restricted to one component: thin bridges (< 2 r) to neighbouring structures are cut,
    the blob keeps its own outline.
    """
    out = np.zeros_like(zone)
    if not zone.any():
        return out
    sl = box(zone, 1)
    sub = zone[sl]
    core = largest_component(ndimage.distance_transform_edt(sub, sampling=spacing) > radius_mm)
    if not core.any():
        return out
    # voxels within r of a core voxel (the ball centres) belong to the opening
    out[sl] = (ndimage.distance_transform_edt(~core, sampling=spacing) <= radius_mm + spacing.min()) & sub
    return out


def close(mask: np.ndarray, radius_mm: float, spacing: np.ndarray, *, coarsen: int = 1) -> np.ndarray:
    """Closing with a ball of ``radius_mm``; the array edge is extended, not taken as background.

    Extending the edge keeps an organ cut by the field of view closed at the cut. With ``coarsen``
    the closing runs on blocks of that many voxels a side (a block belongs to the mask when most
    of it does): a large radius needs no fine grid, and the cost falls with the cube of the factor.
    """
    if not mask.any():
        return mask.copy()
    pad = int(np.ceil(radius_mm / spacing.min())) + coarsen
    sl = box(mask, pad)
    padded = np.pad(mask[sl], pad, mode="edge")
    shape = padded.shape
    if coarsen > 1:
        extra = [(0, (-n) % coarsen) for n in shape]
        blocks = np.pad(padded, extra, mode="edge").astype(np.float32)
        for axis in range(3):
            blocks = np.add.reduceat(blocks, np.arange(0, blocks.shape[axis], coarsen), axis=axis)
        padded = blocks >= coarsen**3 / 2.0
    step = spacing * coarsen
    grown = ndimage.distance_transform_edt(~padded, sampling=step) <= radius_mm
    closed = ndimage.distance_transform_edt(grown, sampling=step) > radius_mm
    if coarsen > 1:
        for axis in range(3):
            closed = np.repeat(closed, coarsen, axis=axis)
        closed = closed[: shape[0], : shape[1], : shape[2]]
    out = np.zeros_like(mask)
    out[sl] = closed[pad:-pad, pad:-pad, pad:-pad]
    return out | mask


def fill_holes_2d(mask: np.ndarray, axes: tuple[int, ...] = (0,)) -> np.ndarray:
    """``mask`` with the holes of every slice along each of ``axes`` filled."""
    out = mask.copy()
    if not mask.any():
        return out
    sl = box(mask)
    sub = out[sl]
    for axis in axes:
        moved = np.moveaxis(sub, axis, 0)
        for k in np.flatnonzero(moved.any(axis=(1, 2))):
            moved[k] = ndimage.binary_fill_holes(moved[k])
    return out


def within(mask: np.ndarray, distance_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Voxels within ``distance_mm`` of ``mask`` (a dilation by a ball)."""
    out = np.zeros_like(mask)
    if not mask.any():
        return out
    sl = box(mask, int(np.ceil(distance_mm / spacing.min())) + 1)
    out[sl] = ndimage.distance_transform_edt(~mask[sl], sampling=spacing) <= distance_mm
    return out
