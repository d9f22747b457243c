"""Upper abdomen: the liver under the right lung base.

The liver is the largest blob of soft tissue (``LIVER_HU``) under the right lung's base (below the
diaphragm in its own column, see :func:`worker_gate.organs.thorax.below_diaphragm`), reaching at
most ``LEFT_REACH_MM`` to the patient's left of the midline (the left lobe), once an opening has
cut its contacts with the abdominal wall, the heart and the stomach. Stomach and spleen are not
separated: the rest of the abdomen stays "body".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worker_gate.organs.grid import WorkGrid
from worker_gate.organs.morphology import open_largest

LIVER_HU = (10.0, 300.0)
"""Working-grid density of liver, plain or contrast-enhanced."""

LIVER_OPEN_MM = 7.5
"""Radius of the opening that cuts the liver from the tissue it touches."""

LEFT_REACH_MM = 40.0

MIN_LIVER_ML = 50.0
"""A smaller blob is not a liver (the scan ends at the dome)."""


@dataclass
class Abdomen:
    """Upper-abdominal organs on the working grid."""

    liver: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """All abdominal organs found."""
        return self.liver


def find_abdomen(
    grid: WorkGrid, *, body: np.ndarray, below_diaphragm: np.ndarray, exclude: np.ndarray, midline_x: float,
) -> Abdomen:
    """Liver on the working grid (empty when the scan shows none)."""
    x = np.arange(grid.shape[2])[None, None, :]
    zone = body & below_diaphragm & ~exclude & (grid.hu > LIVER_HU[0]) & (grid.hu < LIVER_HU[1])
    zone &= x < midline_x + grid.mm(LEFT_REACH_MM, 2)
    empty = np.zeros(grid.shape, dtype=bool)
    if not zone.any():
        return Abdomen(empty)
    liver = open_largest(zone, LIVER_OPEN_MM, grid.spacing)
    if liver.sum() * grid.voxel_ml < MIN_LIVER_ML:
        return Abdomen(empty)
    return Abdomen(liver)
