"""Bone voxels as CT shows them: partial-volume edge, thin cortex, trabecular core."""

from __future__ import annotations

import numpy as np

from shared.phantoms.geometry import Grid
from shared.phantoms.tissues import Tissue as T

CORTEX_MM = 0.8
"""Cortex under the voxels that the bone surface cuts."""


def bone_tissue(grid: Grid, in_plane: np.ndarray, along_z: np.ndarray | float) -> np.ndarray:
    """Tissue of bone voxels from their depth (mm) below the bone surface, in-plane and along ``z``.

    Cortex is thinner than a voxel, so on real CT it seldom shows its full density: a voxel the
    surface cuts through (its centre within half a voxel or half a slice of it) holds bone in
    proportion to that depth, which two edge classes approximate; the next :data:`CORTEX_MM` are
    cortex, the rest trabecular bone.
    """
    half_px, half_z = grid.spacing[0] / 2, grid.spacing[2] / 2
    along_z = np.asarray(along_z)
    share = np.minimum(in_plane / half_px, along_z / half_z)
    cortex = (in_plane < half_px + CORTEX_MM) | (along_z < half_z + CORTEX_MM)
    inner = np.where(cortex, T.CORTICAL_BONE, T.TRABECULAR_BONE)
    return np.where(share < 0.5, T.BONE_EDGE_OUTER,
                    np.where(share < 1.0, T.BONE_EDGE_INNER, inner)).astype(np.uint8)
