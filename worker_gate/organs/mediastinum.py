"""Heart, descending aorta and the rest of the mediastinum, from the space between the lungs.

The mediastinum is the part of the thoracic cavity (the per-slice convex hull of both lungs) that
is neither lung, airway nor spine. In it:

* the **descending aorta** (:mod:`worker_gate.organs.aorta`), tracked beside the spine;
* the **heart** is the largest blob of non-fat tissue below the carina, above the diaphragm, in
  front of the aorta and the spine, once thin connections (vessels, oesophagus) are cut by an
  opening, then followed slice by slice down to its apex (see :func:`_propagate_heart`); it
  includes its contrast-filled chambers, since the cavity's dense voxels were not taken for bone;
* everything else inside the cavity is "mediastinum" (fat, great vessels, oesophagus, nodes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from worker_gate.organs.aorta import descending_aorta
from worker_gate.organs.grid import WorkGrid
from worker_gate.organs.morphology import open_largest

FAT_HU = -30.0
"""Denser than this is non-fat soft tissue (blood, muscle, contrast)."""

HEART_OPEN_MM = 7.5
"""Radius of the opening that cuts the heart from the vessels and organs it touches."""

HEART_WIDENING = 1.15
"""From one slice to the next the heart widens by at most this factor."""

MAX_CAPPED = 2
"""Slices in a row where the heart met a wider organ, after which it is taken to have ended."""

MIN_HEART_ML = 100.0
"""Smaller blobs are not taken for the heart (even a 30 mm slab through a heart holds more)."""

HEART_BELOW_CARINA_MM = 15.0
"""The heart (atria, ventricles) starts about this far below the carina."""


@dataclass
class Mediastinum:
    """Heart, aorta and the remaining mediastinum on the working grid."""

    heart: np.ndarray
    aorta: np.ndarray
    mediastinum: np.ndarray


def _propagate_heart(zone: np.ndarray, core: np.ndarray) -> np.ndarray:
    """The heart followed slice by slice from its widest slice in ``core``, within ``zone``.

    Going down, the heart narrows to its apex while the liver and stomach, which it rests on, are
    islands of their own at first (lung or fat around them in that slice) and join it only lower:
    each slice keeps the ``zone`` components touching the slice above. Where they are more than
    ``HEART_WIDENING`` wider than it, the heart has met another organ: only the part within a voxel
    of the slice above is kept, and after ``MAX_CAPPED`` such slices in a row the heart has ended.
    Going up, the same rules keep the great vessels out.
    """
    heart = np.zeros_like(zone)
    areas = core.sum(axis=(1, 2))
    if not areas.any():
        return heart
    start = int(np.argmax(areas))
    heart[start] = core[start]
    for direction in (-1, 1):
        z = start + direction
        capped = 0
        while 0 <= z < zone.shape[0]:
            previous = heart[z - direction]
            labels, _ = ndimage.label(zone[z])
            ids = np.unique(labels[previous & (labels > 0)])
            if ids.size == 0:
                break
            layer = np.isin(labels, ids)
            if layer.sum() > HEART_WIDENING * previous.sum():
                capped += 1
                if capped > MAX_CAPPED:
                    break
                layer &= ndimage.binary_dilation(previous)
            else:
                capped = 0
            heart[z] = layer
            z += direction
    return heart


def find_mediastinum(
    grid: WorkGrid, *, body: np.ndarray, cavity: np.ndarray, lungs: np.ndarray, airway: np.ndarray,
    bone: np.ndarray, solid_bone: np.ndarray, spine_region: np.ndarray, canal_xy: np.ndarray, carina_z: int | None,
    below_diaphragm: np.ndarray, under_lung: np.ndarray,
) -> Mediastinum:
    """Heart, descending aorta and mediastinum on the working grid (empty where not found).

    ``bone`` is all bone found; ``solid_bone`` leaves out what merely touches a vertebra, where
    the aorta is looked for.
    """
    empty = np.zeros(grid.shape, dtype=bool)
    inside = cavity & body & ~lungs & ~airway & ~bone & ~spine_region
    if not inside.any():
        return Mediastinum(empty, empty.copy(), empty.copy())
    soft = inside & (grid.hu > FAT_HU)
    zs = np.flatnonzero(cavity.any(axis=(1, 2)))
    aorta = empty.copy()
    if np.isfinite(canal_xy).all():
        at_carina = carina_z is not None and 0 <= carina_z < grid.shape[0] and cavity[carina_z].any()
        start = carina_z if at_carina else int(np.median(zs))
        # the descending aorta continues below the cavity into the abdomen; track it there too
        tissue = body & ~lungs & ~airway & ~solid_bone & (grid.hu > FAT_HU)
        aorta = descending_aorta(grid, tissue, canal_xy, start)
    heart_zone = soft & ~aorta & ~below_diaphragm
    if carina_z is not None:  # (possibly estimated below the scan's first slice)
        heart_zone[max(0, carina_z - grid.mm(HEART_BELOW_CARINA_MM, 0) + 1):] = False
    if np.isfinite(canal_xy).all():
        # in front of the vertebral bodies
        y = np.arange(grid.shape[1])[None, :, None]
        heart_zone &= y < (canal_xy[:, 1] - grid.mm(20.0, 1))[:, None, None]
    core = open_largest(heart_zone, HEART_OPEN_MM, grid.spacing)
    if core.sum() * grid.voxel_ml < MIN_HEART_ML:
        core = empty.copy()  # a great vessel or a node, not a heart
    heart = _propagate_heart(heart_zone, core) | core
    # what lies under a lung is abdomen (or, under the lingula, pericardial fat): not mediastinum
    mediastinum = inside & ~heart & ~aorta & ~below_diaphragm & ~under_lung
    return Mediastinum(heart, aorta, mediastinum)
