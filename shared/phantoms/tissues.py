"""Tissue classes of the phantom and their Hounsfield units per contrast phase.

The anatomy is drawn as a tissue map (which material fills each voxel) beside the organ label map
(which organ it belongs to); HU come from the tissue map through :func:`tissue_hu`. Nominal values
follow published CT attenuation ranges and were tuned against the real scans in
``../shared/data/ct`` with ``bench/phantom_hu.py``.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Tissue(IntEnum):
    """Materials of the tissue map (uint8)."""

    AIR = 0
    LUNG = 1
    FAT = 2
    MUSCLE = 3
    SKIN = 4
    CORTICAL_BONE = 5
    TRABECULAR_BONE = 6
    CARTILAGE = 7
    CSF = 8
    DISC = 9
    BLOOD_LEFT = 10
    """Oxygenated blood: pulmonary veins, left atrium and ventricle, aorta."""
    BLOOD_RIGHT = 11
    """Venous blood: venae cavae, right atrium and ventricle, pulmonary arteries."""
    MYOCARDIUM = 12
    LIVER = 13
    SPLEEN = 14
    STOMACH_WALL = 15
    STOMACH_CONTENT = 16
    FISSURE = 17
    AIRWAY_WALL = 18
    FLUID = 19
    SOFT_TISSUE = 20
    TABLE_FOAM = 21
    TABLE_SHELL = 22
    BONE_EDGE_OUTER = 23
    """A voxel the bone surface cuts through, mostly outside the bone: a little cortex in it."""
    BONE_EDGE_INNER = 24
    """A voxel the bone surface cuts through, mostly inside the bone: more cortex in it."""


CONTRAST_PHASES = ("none", "arterial", "venous")
LUNG_BLOOD_FRACTION = 0.09
"""Share of a lung voxel that is capillary and small-vessel blood (pulmonary blood volume is about
a tenth of the body's): contrast raises lung density by this share of the blood's enhancement,
about +25 HU in CT angiography."""

# (mean, random spread) per tissue; phase-specific entries override the non-contrast ones.
_NOMINAL: dict[Tissue, tuple[float, float]] = {
    Tissue.AIR: (-1000.0, 0.0),
    Tissue.LUNG: (-860.0, 20.0),  # replaced by AnatomyParams.lung_hu
    Tissue.FAT: (-100.0, 8.0),
    Tissue.MUSCLE: (45.0, 5.0),
    Tissue.SKIN: (35.0, 5.0),
    Tissue.CORTICAL_BONE: (620.0, 60.0),
    Tissue.TRABECULAR_BONE: (190.0, 35.0),
    Tissue.BONE_EDGE_OUTER: (360.0, 30.0),
    Tissue.BONE_EDGE_INNER: (450.0, 40.0),
    Tissue.CARTILAGE: (130.0, 30.0),
    Tissue.CSF: (20.0, 5.0),
    Tissue.DISC: (90.0, 10.0),
    Tissue.BLOOD_LEFT: (40.0, 4.0),
    Tissue.BLOOD_RIGHT: (40.0, 4.0),
    Tissue.MYOCARDIUM: (45.0, 4.0),
    Tissue.LIVER: (58.0, 6.0),
    Tissue.SPLEEN: (48.0, 4.0),
    Tissue.STOMACH_WALL: (45.0, 5.0),
    Tissue.STOMACH_CONTENT: (15.0, 8.0),
    Tissue.FISSURE: (-200.0, 50.0),
    Tissue.AIRWAY_WALL: (60.0, 15.0),
    Tissue.FLUID: (12.0, 6.0),
    Tissue.SOFT_TISSUE: (40.0, 5.0),
    Tissue.TABLE_FOAM: (-700.0, 100.0),
    Tissue.TABLE_SHELL: (250.0, 50.0),
}
_PHASE: dict[str, dict[Tissue, tuple[float, float]]] = {
    "none": {},
    "arterial": {
        Tissue.BLOOD_LEFT: (390.0, 60.0),
        Tissue.BLOOD_RIGHT: (200.0, 60.0),
        Tissue.MYOCARDIUM: (100.0, 10.0),
        Tissue.LIVER: (75.0, 8.0),
        Tissue.SPLEEN: (110.0, 15.0),
        Tissue.STOMACH_WALL: (90.0, 10.0),
        Tissue.MUSCLE: (50.0, 5.0),
    },
    "venous": {
        Tissue.BLOOD_LEFT: (165.0, 20.0),
        Tissue.BLOOD_RIGHT: (155.0, 20.0),
        Tissue.MYOCARDIUM: (100.0, 10.0),
        Tissue.LIVER: (105.0, 10.0),
        Tissue.SPLEEN: (115.0, 10.0),
        Tissue.STOMACH_WALL: (80.0, 10.0),
        Tissue.MUSCLE: (55.0, 5.0),
    },
}


def tissue_hu(*, phase: str, rng: np.random.Generator, lung_hu: float) -> np.ndarray:
    """HU of every :class:`Tissue` for one phantom (``float32``, indexed by tissue id)."""
    if phase not in _PHASE:
        raise ValueError(f"unknown contrast phase {phase!r}; expected one of {CONTRAST_PHASES}")
    table = {**_NOMINAL, **_PHASE[phase]}
    hu = np.zeros(len(Tissue), dtype=np.float32)
    for tissue in Tissue:
        mean, spread = table[tissue]
        hu[tissue] = mean + spread * float(rng.uniform(-1.0, 1.0))
    blood = (hu[Tissue.BLOOD_LEFT] + hu[Tissue.BLOOD_RIGHT]) / 2
    unenhanced = (_NOMINAL[Tissue.BLOOD_LEFT][0] + _NOMINAL[Tissue.BLOOD_RIGHT][0]) / 2
    hu[Tissue.LUNG] = lung_hu + LUNG_BLOOD_FRACTION * (blood - unenhanced)
    return hu
