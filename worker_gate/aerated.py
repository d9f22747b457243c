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

_SIDES = ((LEFT_LUNG, "lung_left"), (RIGHT_LUNG, "lung_right"))
_KEEP = ("trachea", "bronchi", "lung_vessels", "lung_left", "lung_right", *LEFT_LUNG, *RIGHT_LUNG)
"""Labels enclosed tissue never takes over (the other lung, airway lumen)."""


def trim_to_aerated(volume: Volume, labels: np.ndarray) -> np.ndarray:
    """``labels`` (``uint8`` ``(nz, ny, nx)``) with its lungs redrawn as the module doc says (a new array)."""
    out = labels.copy()
    vessel = label_of("lung_vessels")
    free = ~np.isin(labels, [label_of(name) for name in _KEEP])
    for lobes, whole in _SIDES:
        side = np.isin(labels, [label_of(name) for name in lobes])
        if not side.any():
            continue
        kept = side & (volume.hu < AIR_HU)
        fill_enclosed(kept, volume.spacing)
        out[side & ~kept] = vessel
        out[kept & ~side & free] = label_of(whole)
    return out
