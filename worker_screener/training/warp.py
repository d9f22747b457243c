"""Shape augmentation: a smooth random warp of a training crop, so that the condition model sees anatomy
that is not where the phantom generator always puts it.

On the real scans that are not evaluation cases, three quarters of v6's unusual body voxels on the apex
scan (two thirds on the upper abdomen) are bone, and there the model predicts soft tissue: the residual of
the local intensity is +114 to +165 HU at the median with a predicted SD of 23–32 HU, where bone it does
expect is off by +15 to +65 HU. Real clavicles, scapulae and ribs are shaped and placed less regularly
than the phantoms'. :func:`warped` moves every voxel of a crop by a smooth random displacement (a few
millimetres, varying over a few centimetres), which bends, thins and thickens bone and shifts it against
its neighbours.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DISPLACEMENT_VOXELS = 3.0
"""Largest SD of the displacement along each axis, in model-grid voxels (2–2.5 mm each)."""
CONTROL_SPACING = 8
"""Voxels between the random control points the displacement is interpolated from (16–20 mm)."""


def warped(image: np.ndarray, body: np.ndarray, rng: np.random.Generator, *, strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The crop ``image`` ``(Z, Y, X)`` and its ``body`` mask moved by one smooth random displacement field whose SD
    is up to ``strength`` times :data:`DISPLACEMENT_VOXELS` (drawn per crop); borders repeat their edge values."""
    shape = image.shape
    sd = rng.uniform(0.0, strength * DISPLACEMENT_VOXELS)
    control = torch.from_numpy(rng.standard_normal((1, 3, *(n // CONTROL_SPACING + 2 for n in shape))).astype(np.float32) * sd)
    displacement = F.interpolate(control, size=shape, mode="trilinear", align_corners=True)[0]  # (3, Z, Y, X) voxels
    axes = torch.meshgrid(*(torch.arange(n, dtype=torch.float32) for n in shape), indexing="ij")
    # grid_sample wants (x, y, z) in [-1, 1]
    grid = torch.stack([(axes[a] + displacement[a]) * 2 / (shape[a] - 1) - 1 for a in (2, 1, 0)], dim=-1)[None]
    stacked = torch.from_numpy(np.stack([image, body.astype(np.float32)]))[None]
    moved = F.grid_sample(stacked, grid, mode="bilinear", padding_mode="border", align_corners=True)[0].numpy()
    return moved[0], moved[1] >= 0.5
