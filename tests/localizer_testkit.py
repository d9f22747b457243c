"""Phantoms with known lesions for the localizer tests: two solid round lesions deep in the lungs
(one large enough to make the study pathologic under the baseline's calibrated rule, one small) and
their ground truth. Imported by ``test_localizer_*`` (``from localizer_testkit import ...``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline_testkit import phantom, with_round_lesion, write_series
from shared.anatomy import LEFT_LUNG_ANY, RIGHT_LUNG_ANY
from shared.dicom.volume import Volume

LESIONS = (("right", 40.0), ("left", 12.0))
"""(lung, diameter in mm) of the lesions of :func:`lesion_study`."""
SHAPE = (64, 320, 320)
"""(nz, ny, nx): 1.47 mm pixels, fine enough for the gate's resolution check, small enough for CI."""


@dataclass
class TrueLesion:
    """One lesion the phantom carries: its lung (every organ name that denotes part of it, lobes
    included: whether the gate splits lobes is its business), centroid (mm, LPS) and voxels."""

    organs: tuple[str, ...]
    centre_mm: np.ndarray
    mask: np.ndarray


@dataclass
class LesionStudy:
    """A CT series on disk and the lesions painted into it."""

    volume: Volume
    files: list[Path]
    lesions: list[TrueLesion]


def lesion_study(folder: Path, *, seed: int = 3) -> LesionStudy:
    """The phantom of ``seed`` with the :data:`LESIONS`, written as a DICOM series under ``folder``."""
    base = phantom(seed=seed, shape=SHAPE)
    lesions = []
    for side, diameter_mm in LESIONS:
        volume, centre_mm = with_round_lesion(base, side=side, diameter_mm=diameter_mm)
        lesions.append(TrueLesion(organs=RIGHT_LUNG_ANY if side == "right" else LEFT_LUNG_ANY, centre_mm=centre_mm, mask=_sphere(volume, centre_mm, diameter_mm)))
        base = dataclasses.replace(base, volume=volume)
    return LesionStudy(volume=base.volume, files=write_series(base.volume, folder), lesions=lesions)


def normal_study(folder: Path, *, seed: int = 970_001) -> tuple[Volume, list[Path]]:
    """A normal phantom written under ``folder``; the default seed is none that any screener was fitted,
    validated or calibrated on (``worker_screener.fit_baseline``, ``worker_screener.training.corpus``)."""
    volume = phantom(seed=seed, shape=SHAPE).volume
    return volume, write_series(volume, folder)


def _sphere(volume: Volume, centre_mm: np.ndarray, diameter_mm: float) -> np.ndarray:
    grid = np.indices(volume.shape, dtype=np.float32)
    centre_ijk = np.linalg.solve(volume.affine, np.append(centre_mm, 1.0))[:3]
    spacing_kji = np.asarray(volume.spacing[::-1])
    distance2 = sum(((grid[axis] - centre) * spacing_kji[axis]) ** 2 for axis, centre in enumerate(centre_ijk[::-1]))
    return distance2 <= (diameter_mm / 2) ** 2
