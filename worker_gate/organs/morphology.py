"""Morphology helpers shared by the organ steps, by distance transforms on bounding boxes for speed.

Openings and closings of radius r use two Euclidean distance transforms (exact balls in mm on
anisotropic grids) instead of structuring elements, whose cost grows with r cubed.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...]:
    """Bounding box of ``mask`` (not empty) widened by ``margin`` voxels, clipped to the array."""
    # from the mask's projections, each on the part of the mask already boxed: no index arrays
    found: list[slice] = []
    sub = mask
    for axis in range(mask.ndim):
        hit = np.flatnonzero(sub.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        found.append(slice(int(hit[0]), int(hit[-1]) + 1))
        sub = sub[(slice(None),) * axis + (found[-1],)]
    return tuple(slice(max(s.start - margin, 0), min(s.stop + margin, n)) for s, n in zip(found, mask.shape))


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
    sub = out[box(mask)]
    for axis in axes:
        # a hole is background not reaching the slice's edge (4-connected, as binary_fill_holes
        # propagates): one labelling of all slices at once instead of a fill per slice
        plane = np.zeros((3, 3, 3), dtype=bool)
        plane[1] = ndimage.generate_binary_structure(2, 1)
        background, count = ndimage.label(~sub, structure=np.moveaxis(plane, 0, axis))
        edge = np.ones(count + 1, dtype=bool)
        edge[1:] = False
        for other in (a for a in range(3) if a != axis):
            for end in (0, -1):
                edge[np.take(background, end, axis=other).ravel()] = True
        sub |= ~edge[background]
    return out


def within(mask: np.ndarray, distance_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Voxels within ``distance_mm`` of ``mask`` (a dilation by a ball)."""
    out = np.zeros_like(mask)
    if not mask.any():
        return out
    sl = box(mask, int(np.ceil(distance_mm / spacing.min())) + 1)
    out[sl] = ndimage.distance_transform_edt(~mask[sl], sampling=spacing) <= distance_mm
    return out


def sweep(mask: np.ndarray, axis: int, lo: int, hi: int, *, every: bool = False) -> np.ndarray:
    """Whether any (``every``: all) of ``mask[p + d]``, ``lo <= d <= hi`` along ``axis``, is set.

    A binary max (min) filter over a window that voxels beyond the array see as unset; shifted
    views combined in place cost far less than scipy's filters on large boolean arrays.
    """
    out = np.full(mask.shape, every)
    for offset in range(lo, hi + 1):
        _merge(out, mask, offset, axis, every=every)
    return out


def disk_2d(mask: np.ndarray, radius: int, *, erode: bool = False) -> np.ndarray:
    """Dilation (``erode``: erosion) of every slice along axis 0 by a disk of ``radius`` voxels.

    The disk (``dy**2 + dx**2 <= radius**2``) is the union of its rows: the mask is swept along x
    by each row's half width, then the rows are stacked along y. Beyond the array is background,
    as in ``scipy.ndimage.binary_erosion``'s default border.
    """
    widths = [math.isqrt(radius * radius - dy * dy) for dy in range(radius + 1)]
    rows = {0: mask}
    swept = mask.copy()
    for w in range(1, radius + 1):
        _merge(swept, mask, w, 2, every=erode)
        _merge(swept, mask, -w, 2, every=erode)
        if w in widths:
            rows[w] = swept.copy()
    out = rows[widths[0]].copy()
    for dy in range(1, radius + 1):
        _merge(out, rows[widths[dy]], dy, 1, every=erode)
        _merge(out, rows[widths[dy]], -dy, 1, every=erode)
    return out


def _merge(out: np.ndarray, src: np.ndarray, offset: int, axis: int, *, every: bool) -> None:
    """``out[p] = out[p] and/or src[p + offset]`` along ``axis``, in place; beyond ``src`` is unset."""
    n = src.shape[axis]
    lo, hi = max(0, -offset), min(n, n - offset)  # where p + offset lies inside the array

    def part(a: int, b: int) -> tuple[slice, ...]:
        return (slice(None),) * axis + (slice(a, b),)

    if lo < hi:
        target = out[part(lo, hi)]
        (np.logical_and if every else np.logical_or)(target, src[part(lo + offset, hi + offset)], out=target)
    if every:
        out[part(0, lo)] = False
        out[part(max(hi, lo), n)] = False
