"""Lung lobes by an anatomical prior: fissures are planes anchored at the carina, not detected.

Fissures are 1 mm sheets that a 2.5 mm working grid (and many 5 mm scans) cannot show, so the lobes
are approximated by where the fissures usually run (Netter; Gray's Anatomy):

* the **oblique fissure** (both lungs) runs from the back of the lung, level with the upper
  thoracic spine, down and forward to the anterior diaphragm; modelled in each lung as a plane,
  constant across x, that crosses the carina's coronal plane ``OBLIQUE_DROP_MM`` below the carina
  and rises ``OBLIQUE_SLOPE`` mm per mm backwards (~50 degrees). Behind and below it: lower lobe;
* the **horizontal fissure** (right lung only) runs level, ``HORIZONTAL_DROP_MM`` below the carina,
  from the front of the lung back to the oblique fissure: in front of the oblique fissure and
  below the horizontal one lies the middle lobe.

The two drops were set so that, averaged over four real chest CTs of ``../shared/data/ct``, the
lobes take the shares CT volumetry usually reports (upper/middle/lower about 39/16/45 % of the
right lung, upper/lower about 52/48 % of the left): measured 39/16/45 and 51/49.

When the carina is outside the scan the caller estimates it from the lung apex; when the scan shows
neither, the anchor is put at the top of the scan (lower lobes and, on the right, the middle lobe
then dominate, as in a basal slab). The split is approximate: a finding near a fissure may be
named after the neighbouring lobe.
"""

from __future__ import annotations

import numpy as np

from worker_gate.organs.grid import WorkGrid

OBLIQUE_SLOPE = 1.2
"""Rise of the oblique fissure (mm up per mm backwards): ~50 degrees from the horizontal."""

OBLIQUE_DROP_MM = 40.0
HORIZONTAL_DROP_MM = 40.0


def split_lobes(
    grid: WorkGrid, *, left: np.ndarray, right: np.ndarray, carina_z: int | None, carina_y: float | None,
) -> dict[str, np.ndarray]:
    """Masks of the five lobes (names of :data:`shared.anatomy.LUNG_LOBES`) on the working grid."""
    lungs = left | right
    if not lungs.any():
        return {}
    dz, dy = grid.spacing[0], grid.spacing[1]
    if carina_z is None:
        carina_z = grid.shape[0] - 1
    if carina_y is None:
        carina_y = float(np.argwhere(lungs)[:, 1].mean())
    z = (np.arange(grid.shape[0]) - carina_z)[:, None, None] * dz  # mm above the carina
    y = (np.arange(grid.shape[1]) - carina_y)[None, :, None] * dy  # mm behind the carina
    lower = z + OBLIQUE_DROP_MM < OBLIQUE_SLOPE * y
    below_horizontal = z < -HORIZONTAL_DROP_MM
    return {
        "lung_upper_lobe_left": left & ~lower,
        "lung_lower_lobe_left": left & lower,
        "lung_upper_lobe_right": right & ~lower & ~below_horizontal,
        "lung_middle_lobe_right": right & ~lower & below_horizontal,
        "lung_lower_lobe_right": right & lower,
    }
