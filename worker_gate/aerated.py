"""The lungs of the built-in label map trimmed to aerated lung plus the lesions it encloses.

The built-in segmenter works on a ~2.5 mm grid, so its lungs hold the pulmonary vessels, the hilum
and, at the border, partial volumes of chest wall and diaphragm. The screener's statistics are
calibrated on lungs drawn by the threshold rule of :mod:`worker_gate.lungmask` (air below
:data:`~worker_gate.lungmask.AIR_HU`, plus solid tissue at least 5 mm wide that the lung encloses:
nodules and masses), so the gate hands it lungs drawn the same way, at full resolution, inside the
built-in lobes:

* lobe voxels that are aerated or enclosed keep their lobe label;
* other (dense) lobe voxels -- vessels, fissures, bronchial walls, border partial volumes -- become
  ``lung_vessels`` (not counted as lung by :data:`shared.anatomy.LUNG_ANY`);
* enclosed tissue the built-in lobes missed joins its side as ``lung_left`` / ``lung_right``.
"""

from __future__ import annotations

import numpy as np

from shared.anatomy import LEFT_LUNG, RIGHT_LUNG, label_of
from shared.dicom.volume import Volume
from worker_gate.lungmask import AIR_HU, fill_enclosed
from worker_gate.organs.morphology import box

_SIDES = ((LEFT_LUNG, "lung_left"), (RIGHT_LUNG, "lung_right"))
_KEEP = ("trachea", "bronchi", "lung_vessels", "lung_left", "lung_right", *LEFT_LUNG, *RIGHT_LUNG)
"""Labels enclosed tissue never takes over (the other lung, airway lumen)."""


def trim_to_aerated(volume: Volume, labels: np.ndarray) -> np.ndarray:
    """``labels`` (``uint8`` ``(nz, ny, nx)``) with its lungs redrawn as the module doc says (a new array)."""
    out = labels.copy()
    # side code of every label (0 = free for enclosed tissue, 1/2 = left/right lobes, 3 = kept):
    # one table look-up instead of np.isin passes over the full-resolution volume
    code = np.zeros(256, dtype=np.uint8)
    code[[label_of(name) for name in _KEEP]] = 3
    for side, (lobes, _) in enumerate(_SIDES, start=1):
        code[[label_of(name) for name in lobes]] = side
    # everything happens inside the lobes' box (fill_enclosed adds only inside its mask's box),
    # found from the span of lobe ids: a superset of the lobes, cheap on the full volume
    ids = [label_of(name) for lobes, _ in _SIDES for name in lobes]
    span = (labels >= min(ids)) & (labels <= max(ids))
    if not span.any():
        return out
    sl = box(span)
    del span
    lung, hu, view = code[labels[sl]], volume.hu[sl], out[sl]
    vessel = label_of("lung_vessels")
    for side, (_, whole) in enumerate(_SIDES, start=1):
        mask = lung == side
        if not mask.any():
            continue
        inner = box(mask)
        side_mask, free = mask[inner], lung[inner] == 0
        kept = side_mask & (hu[inner] < AIR_HU)
        fill_enclosed(kept, volume.spacing)
        target = view[inner]
        target[side_mask & ~kept] = vessel
        target[kept & ~side_mask & free] = label_of(whole)
    return out
