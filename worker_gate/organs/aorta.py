"""The descending thoracic aorta, followed slice by slice beside the spine.

The descending aorta is the round vessel to the left of and in front of the vertebral bodies, from
the aortic arch down through the diaphragm. It is found at the carina (or mid-thorax) as the
largest disk of non-fat tissue in a window beside the vertebral body, then tracked up and down as
a stack of circles that move with the spine (:func:`_track`). The ascending aorta and the arch are
not tracked: they stay in the mediastinum (or the heart, for the aortic root).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from worker_gate.organs.grid import WorkGrid
from worker_gate.organs.morphology import box

AORTA_RADIUS_MM = (6.0, 20.0)
"""Radius of the descending thoracic aorta (adults: ~10-15 mm)."""

BLOOD_TOLERANCE_HU = 60.0
"""The tracked aorta's voxels are preferably this close to the density of its first cross-section
(or within -60 % / +40 % of it in contrast scans, whose enhancement fades along the vessel)."""

MIN_FILL = 0.7
"""Share of a tracked circle that must be vessel-like tissue."""

AORTA_STEP_MM = 4.0
"""Largest shift of the aortic centre from one working slice to the next, relative to the spine."""


def _disk(radius: float, shape: tuple[int, int], centre: tuple[float, float]) -> np.ndarray:
    y, x = np.ogrid[: shape[0], : shape[1]]
    return (y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= radius**2


def _best_disk(soft: np.ndarray, window: np.ndarray, rmin: float) -> tuple[float, float, float] | None:
    """Centre ``(y, x)`` and radius of the largest disk of ``soft`` centred in ``window``."""
    if not window.any():
        return None
    sl = box(window, int(np.ceil(3 * rmin)) + 8)
    dist = np.where(window[sl], ndimage.distance_transform_edt(soft[sl]), 0.0)
    if dist.max() < rmin:
        return None
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(y + sl[0].start), float(x + sl[1].start), float(dist[y, x])


def _best_circle(mask: np.ndarray, near: np.ndarray, radii: list[float]) -> tuple[float, float, float, float] | None:
    """``(y, x, r, fill)`` of the circle centred in ``near`` that is most filled by ``mask`` inside
    and least around it (a ring 1-2 voxels wide): a round vessel, not the edge of a larger blob."""
    if not near.any():
        return None
    reach = int(np.ceil(max(radii))) + 3
    sl = box(near, reach)
    sub = mask[sl].astype(np.float32)
    centres = np.argwhere(near[sl])  # row-major, as argmax scans
    best = None
    for r in radii:
        k = int(np.ceil(r)) + 2
        yy, xx = np.mgrid[-k:k + 1, -k:k + 1]
        d2 = yy**2 + xx**2
        disk = (d2 <= r**2).astype(np.float32)
        ring = ((d2 > r**2) & (d2 <= (r + 2) ** 2)).astype(np.float32)
        # the disk and ring means at the candidate centres only (a correlation there, zeros beyond the box)
        # in double, then float32, as scipy's correlate computes and stores them
        windows = sliding_window_view(np.pad(sub, k), (2 * k + 1, 2 * k + 1))[centres[:, 0], centres[:, 1]]
        windows = windows.astype(np.float64)
        fill = np.tensordot(windows, (disk / disk.sum()).astype(np.float64), axes=2).astype(np.float32)
        around = np.tensordot(windows, (ring / ring.sum()).astype(np.float64), axes=2).astype(np.float32)
        score = fill - around
        i = int(np.argmax(score))
        if best is None or score[i] > best[0]:
            best = (float(score[i]), float(centres[i, 0] + sl[0].start), float(centres[i, 1] + sl[1].start), r,
                    float(fill[i]))
    return None if best is None else best[1:]


def _track(grid: WorkGrid, soft: np.ndarray, start: tuple[int, float, float, float], canal_xy: np.ndarray,
           allowed: np.ndarray, preferred: np.ndarray) -> np.ndarray:
    """The descending aorta followed as a stack of circles from the ``start`` disk, up and down.

    It runs alongside the spine, so each slice's centre is searched within ``AORTA_STEP_MM`` of the
    previous centre carried along with the spinal canal (and inside ``allowed``), radius within a
    voxel of the previous one. The circle chosen is the one best filled by ``soft`` and least
    surrounded by it, or by ``preferred`` (blood as dense as at the start: not the oesophagus
    beside it) when that circle is as large (a dissection's true lumen alone is smaller); the
    track ends where no circle is at least ``MIN_FILL`` filled.
    """
    aorta = np.zeros(grid.shape, dtype=bool)
    ny, nx = grid.shape[1:]
    yy, xx = np.mgrid[:ny, :nx]
    px = grid.spacing[2]
    rmin, rmax = (r / px for r in AORTA_RADIUS_MM)
    step = AORTA_STEP_MM / px
    z0, y0, x0, r0 = start
    aorta[z0] = _disk(r0, (ny, nx), (y0, x0)) & soft[z0]
    for direction in (-1, 1):
        y, x, r = y0, x0, r0
        z = z0 + direction
        while 0 <= z < grid.shape[0]:
            shift = canal_xy[z] - canal_xy[z - direction]
            y, x = y + shift[1], x + shift[0]
            near = ((yy - y) ** 2 + (xx - x) ** 2 <= step**2) & allowed[z]
            radii = [q for q in (r - 1.0, r, r + 1.0) if rmin <= q <= rmax] or [r]
            found = _best_circle(soft[z], near, radii)
            better = _best_circle(preferred[z], near, radii)
            if found is None or found[3] < MIN_FILL:
                found = None
            if better is not None and better[3] >= MIN_FILL and (found is None or better[2] >= found[2]):
                found = better
            if found is None:
                break
            y, x, r, _ = found
            aorta[z] = _disk(r, (ny, nx), (y, x)) & soft[z]
            z += direction
    return aorta


def descending_aorta(grid: WorkGrid, tissue: np.ndarray, canal_xy: np.ndarray, start_z: int) -> np.ndarray:
    """The descending aorta, tracked from ``start_z`` beside the vertebral bodies."""
    ny, nx = grid.shape[1:]
    yy, xx = np.mgrid[:ny, :nx]
    px, py = grid.spacing[2], grid.spacing[1]
    # 5-60 mm to the patient's left of the canal, 5-65 mm in front of it (beside the vertebral body)
    cx = canal_xy[:, 0][:, None, None]
    cy = canal_xy[:, 1][:, None, None]
    allowed = (xx >= cx + 5 / px) & (xx <= cx + 60 / px) & (yy >= cy - 65 / py) & (yy <= cy - 5 / py)
    first = _best_disk(tissue[start_z], allowed[start_z], AORTA_RADIUS_MM[0] / px)
    if first is None:
        return np.zeros(grid.shape, dtype=bool)
    y, x, r = first
    r = min(r, AORTA_RADIUS_MM[1] / px)
    # blood keeps its density along the vessel: prefer voxels as dense as the first disk's, which
    # parts the aorta from the oesophagus in contrast scans (a dissection's false lumen is not as
    # dense, hence only a preference)
    blood = float(np.median(grid.hu[start_z][_disk(r, (ny, nx), (y, x)) & tissue[start_z]]))
    low, high = blood - max(BLOOD_TOLERANCE_HU, 0.6 * abs(blood)), blood + max(BLOOD_TOLERANCE_HU, 0.4 * abs(blood))
    like_blood = tissue & (grid.hu >= low) & (grid.hu <= high)
    return _track(grid, tissue, (start_z, y, x, r), canal_xy, allowed, like_blood)
