"""Fit the baseline screener's statistics on normal training phantoms: ``baseline_hu_zscore.json``.

    python -m worker_screener.fit_baseline [--out PATH]

1. Normal phantoms (:data:`TRAINING_SEEDS`, no pathology, two grid sizes so the statistics are not
   tied to one voxel size, both with pixels the gate accepts: coarser studies never reach the screener)
   are segmented by the default gate (built-in organs), whose lungs the screen stage is given.
2. ``lung_mean_hu`` / ``lung_std_hu``: mean and standard deviation of the local lung mean of the
   clipped HU (see :mod:`worker_screener.baseline`) over every lung voxel of every phantom.
3. ``z_reference``: :data:`NO_FINDING_MARGIN` times the highest *no-finding level* of the training
   phantoms — the ``z`` above which a phantom has no connected component of at least
   :data:`~worker_localizer.findings.MIN_FINDING_MM3` — so no training normal has a finding, with room
   to spare; the calibrated score is ``voxel_threshold`` (0.7) exactly there. (A voxel quantile, as in
   version 1, leaves by construction a few findings in most normal studies.)
4. ``study_threshold``: :data:`STUDY_THRESHOLD_ML`. By step 3 no training normal has a finding, so
   its study score (score-weighted finding volume, ml) is 0 and any finding of a few voxels' weight
   makes the verdict.

:data:`HELD_OUT_SEEDS` (never fitted on) report how many unseen normals still get a finding.
Evaluation seeds (tests, ``make eval``) overlap neither.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from shared.dicom.volume import Volume
from shared.phantoms import generate_phantom
from worker_gate.backend import BUILTIN
from worker_localizer.findings import CONNECTIVITY, MIN_FINDING_MM3
from worker_screener.baseline import PARAMETERS_PATH, BaselineParameters, local_lung_mean, lung_mask, lung_zscores

TRAINING_SEEDS: tuple[int, ...] = tuple(range(900_001, 900_031))
HELD_OUT_SEEDS: tuple[int, ...] = tuple(range(930_001, 930_016))
TRAINING_SHAPES: tuple[tuple[int, int, int], ...] = ((64, 320, 320), (96, 352, 352))
KERNEL_MM = 16.0
CLIP_HU_MAX = -300.0
NO_FINDING_MARGIN = 1.05
VOXEL_THRESHOLD = 0.7
STUDY_THRESHOLD_ML = 0.05
VERSION = "2"


def gate_lungs(volume: Volume) -> np.ndarray:
    """The lungs the screen stage is given: the default gate's organ labels."""
    return lung_mask(BUILTIN.segment(volume).labels)


def no_finding_level(z: np.ndarray, spacing: tuple[float, float, float], *, tolerance: float = 1e-3) -> float:
    """The lowest ``z`` level above which no component (the localizer's connectivity) reaches :data:`MIN_FINDING_MM3` (bisection)."""
    voxel_mm3 = float(np.prod(spacing))
    low, high = 0.0, float(z.max()) + tolerance
    while high - low > tolerance:
        level = (low + high) / 2
        components, count = ndimage.label(z >= level, structure=CONNECTIVITY)
        largest = np.bincount(components.ravel())[1:].max(initial=0) * voxel_mm3
        low, high = (level, high) if largest >= MIN_FINDING_MM3 else (low, level)
    return high


def normal_cases(seeds: tuple[int, ...], shapes: tuple[tuple[int, int, int], ...]) -> list[tuple[int, Volume, np.ndarray]]:
    """``(seed, volume, gate lungs)`` of the normal phantom of each seed (cycling through ``shapes``)."""
    cases = []
    for number, seed in enumerate(seeds):
        volume = generate_phantom(seed=seed, shape=shapes[number % len(shapes)]).volume
        cases.append((seed, volume, gate_lungs(volume)))
    return cases


def levels(cases: list[tuple[int, Volume, np.ndarray]], parameters: BaselineParameters) -> dict[str, float]:
    """Each case's no-finding level under ``parameters``' lung statistics."""
    return {str(seed): round(no_finding_level(lung_zscores(volume.hu, lung, volume.spacing, parameters), volume.spacing), 4)
            for seed, volume, lung in cases}


def fit(*, seeds: tuple[int, ...] = TRAINING_SEEDS, shapes: tuple[tuple[int, int, int], ...] = TRAINING_SHAPES) -> dict:
    """The parameter file's content, fitted on normal phantoms of ``seeds`` (cycling through ``shapes``)."""
    cases = normal_cases(seeds, shapes)
    values = np.concatenate([
        local_lung_mean(np.minimum(volume.hu, CLIP_HU_MAX), lung, volume.spacing, KERNEL_MM)[lung] for _, volume, lung in cases
    ]).astype(np.float64)
    mean, std = float(values.mean()), float(values.std())
    provisional = BaselineParameters(
        version=VERSION, kernel_mm=KERNEL_MM, clip_hu_max=CLIP_HU_MAX, lung_mean_hu=mean, lung_std_hu=std,
        no_finding_margin=NO_FINDING_MARGIN, z_reference=1.0, voxel_threshold=VOXEL_THRESHOLD, study_threshold=0.0,
        score_unit="ml", checksum="",
    )
    training_levels = levels(cases, provisional)
    z_reference = NO_FINDING_MARGIN * max(training_levels.values())
    print(f"{len(cases)} training normals: no-finding levels {min(training_levels.values()):.2f}-{max(training_levels.values()):.2f}", flush=True)
    held_out_levels = levels(normal_cases(HELD_OUT_SEEDS, shapes), provisional)
    return {
        "version": VERSION,
        "kernel_mm": KERNEL_MM,
        "clip_hu_max": CLIP_HU_MAX,
        "lung_mean_hu": round(mean, 3),
        "lung_std_hu": round(std, 3),
        "no_finding_margin": NO_FINDING_MARGIN,
        "z_reference": round(z_reference, 4),
        "voxel_threshold": VOXEL_THRESHOLD,
        "study_threshold": STUDY_THRESHOLD_ML,
        "score_unit": "ml",
        "fitted_on": {
            "generator": "shared.phantoms.generate_phantom (normal, no pathology)",
            "seeds": [seeds[0], seeds[-1]],
            "shapes": [list(shape) for shape in shapes],
            "lung_voxels": int(values.size),
            "no_finding_levels": training_levels,
            "command": "python -m worker_screener.fit_baseline",
        },
        "held_out": {
            "seeds": [HELD_OUT_SEEDS[0], HELD_OUT_SEEDS[-1]],
            "no_finding_levels": held_out_levels,
            "normals_with_a_finding": sum(level > z_reference for level in held_out_levels.values()),
        },
    }


def main() -> None:
    """Fit and write the parameter file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PARAMETERS_PATH)
    args = parser.parse_args()
    started = time.perf_counter()
    parameters = fit()
    args.out.write_text(json.dumps(parameters, indent=2) + "\n")
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s: "
          f"mean {parameters['lung_mean_hu']} std {parameters['lung_std_hu']} z_ref {parameters['z_reference']} "
          f"study threshold {parameters['study_threshold']} ml")


if __name__ == "__main__":
    main()
