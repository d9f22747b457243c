"""Trachea and main bronchi: the air column entering the chest from above, grown by thresholds.

The seed is the topmost slice holding a round, central pocket of air inside the body that persists
over the next ~15 mm (the trachea, or the pharynx above it when the neck is scanned). From it the
airway is grown in 3-D through voxels darker than a threshold that is raised step by step from
-975 HU; the first step at which the grown volume jumps (the classic leak of region growing into
lung parenchyma through a thin bronchial wall) ends the growth and the previous step is kept.
The carina is the highest slice where the grown airway falls apart into two branches; above it is
trachea, below it bronchi.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from worker_gate.organs.grid import AIR_HU, WorkGrid

GROW_THRESHOLDS_HU = (-975.0, -950.0, -925.0, -900.0, -875.0, -850.0, -825.0, -800.0)
"""Region-growing thresholds tried in turn (working-grid mean density)."""

LEAK_FACTOR = 1.6
LEAK_ML = 40.0
"""A step that grows the airway by more than this factor and this volume is a leak into the lung."""

MAX_AIRWAY_ML = 250.0
"""More than this is not a trachea with its main bronchi (the pharynx may add a little)."""

SEED_AREA_MM2 = (60.0, 900.0)
"""Cross-section of a trachea: ~8-30 mm wide."""


@dataclass
class Airway:
    """The airway tree found on the working grid."""

    trachea: np.ndarray
    bronchi: np.ndarray
    carina_z: int | None
    """Working slice of the carina (the trachea's split), ``None`` when not in the scan."""
    seed: tuple[int, int, int] | None

    @property
    def mask(self) -> np.ndarray:
        """Trachea and bronchi together."""
        return self.trachea | self.bronchi


def _seed(grid: WorkGrid, body: np.ndarray) -> tuple[int, int, int] | None:
    """``(z, y, x)`` of a voxel of the trachea in the highest slice that shows it, or ``None``."""
    lumen = (grid.hu < AIR_HU) & body
    area_px = np.array(SEED_AREA_MM2) / (grid.spacing[1] * grid.spacing[2])
    persist = grid.mm(15.0, 0)
    candidates: list[tuple[int, float, float] | None] = []
    for z in range(grid.shape[0]):
        if not body[z].any():
            candidates.append(None)
            continue
        ys, xs = np.nonzero(body[z])
        cx, half = (xs.min() + xs.max()) / 2.0, (xs.max() - xs.min()) / 2.0
        y0, y1 = ys.min(), ys.max()
        labels, count = ndimage.label(lumen[z])
        best = None
        for index, sl in enumerate(ndimage.find_objects(labels), start=1):
            region = labels[sl] == index
            area = region.sum()
            if not area_px[0] <= area <= area_px[1]:
                continue
            ry, rx = np.argwhere(region).mean(axis=0) + (sl[0].start, sl[1].start)
            height, width = region.shape
            round_enough = area >= 0.45 * height * width and max(height, width) <= 2.5 * min(height, width)
            central = abs(rx - cx) <= 0.25 * half and y0 + 0.1 * (y1 - y0) <= ry <= y0 + 0.7 * (y1 - y0)
            if round_enough and central and (best is None or abs(rx - cx) < abs(best[1] - cx)):
                best = (z, rx, ry)
        candidates.append(best)
    for z in range(grid.shape[0] - 1, -1, -1):
        run = [candidates[k] for k in range(z, max(-1, z - persist - 1), -1)]
        if len(run) > persist and all(c is not None for c in run):
            xs = [c[1] for c in run]
            if max(xs) - min(xs) <= grid.mm(15.0, 2):
                # seed a few slices below the top, where the column is established
                k = z - persist // 2
                c = candidates[k]
                return k, int(round(c[2])), int(round(c[1]))
    return None


def _grow(grid: WorkGrid, body: np.ndarray, seed: tuple[int, int, int]) -> np.ndarray:
    """The largest leak-free region of dark voxels connected to ``seed``."""
    kept = np.zeros(grid.shape, dtype=bool)
    max_voxels = MAX_AIRWAY_ML / grid.voxel_ml
    previous = 0
    for threshold in GROW_THRESHOLDS_HU:
        dark = (grid.hu < threshold) & body
        if not dark[seed]:
            continue
        labels, _ = ndimage.label(dark)
        region = labels == labels[seed]
        size = int(region.sum())
        leak = size > LEAK_FACTOR * previous and (size - previous) * grid.voxel_ml > LEAK_ML
        if size > max_voxels or (previous and leak):
            break
        kept, previous = region, size
    return kept


def _carina(airway: np.ndarray, grid: WorkGrid, seed_z: int) -> int | None:
    """Highest slice below the seed where the airway is two large branches side by side."""
    min_area = 20.0 / (grid.spacing[1] * grid.spacing[2])  # a main bronchus lumen is > 20 mm2
    zs = np.flatnonzero(airway[:seed_z].any(axis=(1, 2)))
    for z in zs[::-1]:
        labels, count = ndimage.label(airway[z])
        if count < 2:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        if (sizes >= min_area).sum() >= 2:
            return int(z)
    return None


def find_airway(grid: WorkGrid, body: np.ndarray) -> Airway:
    """Trachea and main bronchi on the working grid (empty masks when no trachea is seen)."""
    empty = np.zeros(grid.shape, dtype=bool)
    seed = _seed(grid, body)
    if seed is None:
        return Airway(empty, empty.copy(), None, None)
    airway = _grow(grid, body, seed)
    carina = _carina(airway, grid, seed[0])
    trachea, bronchi = airway.copy(), empty.copy()
    if carina is not None:
        trachea[: carina + 1] = False
        bronchi[: carina + 1] = airway[: carina + 1]
    return Airway(trachea, bronchi, carina, seed)
