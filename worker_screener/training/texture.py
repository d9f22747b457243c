"""Tissue texture augmentation: real fat, muscle and bone vary more, a few millimetres across, than the
phantoms' (which fill each tissue with one value plus scanner noise).

On the held-out real apex scan, the condition model's standardised residual of the local intensity is over 3
for 11.5 % of fat voxels, 9 % of soft-tissue voxels and 25–43 % of bone voxels, against 0.3 %, 0.3 % and
1–2 % on a normal validation phantom; real bone is also brighter than the model predicts (residual +64 to
+106 HU). :func:`textured` adds a smooth random field to each of those tissues of a training crop, and raises
bone above :data:`BONE_HU` by a random gain, so that the model learns how far normal tissue strays rather than
the phantoms' uniform values. Lung is left alone: the phantom generator models its texture
(:mod:`shared.phantoms.lung_texture`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from worker_screener.model.preprocess import HU_MAX, HU_MIN

FAT_HU = (-200.0, -40.0)
SOFT_HU = (-40.0, 100.0)
BONE_HU = 100.0
FIELD_SD_HU = {"fat": 40.0, "soft": 30.0, "bone": 80.0}
"""Largest SD (HU) of each tissue's field; each crop draws its own between 0 and this."""
BONE_GAIN = (1.0, 1.8)
"""Range of the factor on bone's HU above :data:`BONE_HU` (cortex and marrow vary with age and site)."""
CORRELATION_VOXELS = (0.7, 2.0)
"""Range of the field's Gaussian sigma on the model grid (about 1.5–5 mm)."""


def textured(image: np.ndarray, body: np.ndarray, rng: np.random.Generator, *, strength: float = 1.0) -> np.ndarray:
    """A copy of the windowed crop ``image`` ``(Z, Y, X)`` in [0, 1] with tissue texture inside ``body``, the fields' SD
    up to ``strength`` times :data:`FIELD_SD_HU`."""
    hu = image * (HU_MAX - HU_MIN) + HU_MIN
    bone = body & (hu > BONE_HU)
    tissues = {"fat": body & (hu > FAT_HU[0]) & (hu <= FAT_HU[1]), "soft": body & (hu > SOFT_HU[0]) & (hu <= SOFT_HU[1]), "bone": bone}
    changed = hu.copy()
    changed[bone] = BONE_HU + (hu[bone] - BONE_HU) * rng.uniform(*BONE_GAIN)
    sigma = rng.uniform(*CORRELATION_VOXELS)
    for name, tissue in tissues.items():
        field = ndimage.gaussian_filter(rng.standard_normal(image.shape).astype(np.float32), sigma)
        field *= rng.uniform(0.0, strength * FIELD_SD_HU[name]) / max(float(field.std()), 1e-6)
        changed[tissue] += field[tissue]
    out = image.copy()  # untouched voxels keep their exact values
    textured_tissue = tissues["fat"] | tissues["soft"] | bone
    out[textured_tissue] = np.clip((changed[textured_tissue] - HU_MIN) / (HU_MAX - HU_MIN), 0.0, 1.0)
    return out.astype(np.float32, copy=False)
