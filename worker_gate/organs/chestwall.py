"""Chest wall soft tissue: muscle and subcutaneous fat outside the thoracic cavity.

At the levels of the lungs, body tissue outside the cavity (the convex hull of the lungs, widened
by ``CAVITY_MARGIN_MM`` for the pleura and intercostal spaces) that is no bone is chest wall; fat
density there is subcutaneous fat (and the little intermuscular fat), the rest skeletal muscle
(breast tissue too, which a density rule cannot tell apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from worker_gate.organs.grid import WorkGrid

FAT_HU = (-200.0, -30.0)
"""Working-grid density of fat."""

CAVITY_MARGIN_MM = 5.0


@dataclass
class ChestWall:
    """Chest wall tissues on the working grid."""

    muscle: np.ndarray
    fat: np.ndarray


def find_chest_wall(
    grid: WorkGrid, *, body: np.ndarray, cavity: np.ndarray, exclude: np.ndarray, under_lung: np.ndarray,
) -> ChestWall:
    """Skeletal muscle and subcutaneous fat at the levels of the thoracic cavity (not under a lung: abdomen)."""
    levels = cavity.any(axis=(1, 2))
    if not levels.any():
        empty = np.zeros(grid.shape, dtype=bool)
        return ChestWall(empty, empty.copy())
    grown = np.zeros_like(cavity)
    margin = grid.mm(CAVITY_MARGIN_MM, 2)
    for z in np.flatnonzero(levels):
        grown[z] = ndimage.binary_dilation(cavity[z], iterations=margin)
    wall = body & ~grown & ~exclude & ~under_lung & levels[:, None, None]
    fat = wall & (grid.hu >= FAT_HU[0]) & (grid.hu < FAT_HU[1])
    muscle = wall & (grid.hu >= FAT_HU[1]) & (grid.hu < 200.0)
    return ChestWall(muscle, fat)
