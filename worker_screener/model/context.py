"""Anatomical context for the density: the organ group of every voxel, from the gate's organ label map.

The density is fitted per group (the paper's *condition model* in its simplest form): soft tissue is
ordinary in the mediastinum and anomalous inside the lung, which one density over the whole body
cannot tell apart.
"""

from __future__ import annotations

import numpy as np

from shared.anatomy import BY_NAME

GROUPS: tuple[str, ...] = ("other", "lung", "mediastinum", "bone", "abdomen")
_MEMBERS = {
    "lung": ("lung_upper_lobe_left", "lung_lower_lobe_left", "lung_upper_lobe_right", "lung_middle_lobe_right",
             "lung_lower_lobe_right", "lung_left", "lung_right", "trachea", "bronchi", "lung_vessels"),
    "mediastinum": ("heart", "aorta", "pulmonary_artery", "esophagus", "superior_vena_cava", "mediastinum"),
    "bone": ("sternum", "ribs", "costal_cartilages", "vertebrae", "scapula_left", "scapula_right", "clavicula_left", "clavicula_right"),
    "abdomen": ("liver", "stomach", "spleen"),
}
GROUP_OF_LABEL = np.zeros(256, dtype=np.uint8)
"""Organ label id -> index into :data:`GROUPS` (unlisted labels and background: ``other``)."""
for _group, _names in _MEMBERS.items():
    for _name in _names:
        GROUP_OF_LABEL[BY_NAME[_name].label] = GROUPS.index(_group)


def groups_on_model_grid(labels: np.ndarray, box: tuple[slice, slice, slice], shape: tuple[int, int, int]) -> np.ndarray:
    """Organ groups ``shape`` (model grid) from an organ label map on the volume grid (nearest neighbour)."""
    crop = labels[box]
    index = [np.clip(np.round(np.linspace(0, n - 1, m)).astype(np.intp), 0, n - 1) for n, m in zip(crop.shape, shape)]
    return GROUP_OF_LABEL[crop[np.ix_(*index)]]
