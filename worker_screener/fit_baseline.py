"""Fit the baseline screener's statistics on normal training phantoms: ``baseline_hu_zscore.json``.

    python -m worker_screener.fit_baseline [--out PATH]

1. Normal phantoms (:data:`TRAINING_SEEDS`, no pathology, two grid sizes so the statistics are not
   tied to one voxel size) are segmented with the baseline gate's lung mask, exactly as at inference.
2. ``lung_mean_hu`` / ``lung_std_hu``: mean and standard deviation of the local lung mean of the
   clipped HU (see :mod:`worker_screener.baseline`) over every lung voxel of every phantom.
3. ``z_reference``: the ``z_quantile`` quantile of ``z`` over those voxels; the calibrated score is
   ``voxel_threshold`` (0.7) exactly there.
4. ``study_threshold``: the baseline localizer's study score (score-weighted finding volume, ml) on
   each training phantom; the threshold is :data:`STUDY_MARGIN` times the largest, and at least
   :data:`MIN_STUDY_THRESHOLD_ML`, so every training normal is called normal with room to spare.

Evaluation seeds (tests, ``make eval``) never overlap :data:`TRAINING_SEEDS`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from shared.phantoms import generate_phantom
from worker_gate.lungmask import LABEL_LUNG_LEFT, LABEL_LUNG_RIGHT, segment_baseline
from worker_localizer.findings import extract_findings, study_score
from worker_screener.baseline import PARAMETERS_PATH, BaselineParameters, anomaly_scores, local_lung_mean

TRAINING_SEEDS: tuple[int, ...] = tuple(range(900_001, 900_011))
TRAINING_SHAPES: tuple[tuple[int, int, int], ...] = ((96, 160, 160), (128, 256, 256))
KERNEL_MM = 16.0
CLIP_HU_MAX = -300.0
Z_QUANTILE = 0.9999
VOXEL_THRESHOLD = 0.7
STUDY_MARGIN = 1.5
MIN_STUDY_THRESHOLD_ML = 0.05
VERSION = "1"


def fit(*, seeds: tuple[int, ...] = TRAINING_SEEDS, shapes: tuple[tuple[int, int, int], ...] = TRAINING_SHAPES) -> dict:
    """The parameter file's content, fitted on normal phantoms of ``seeds`` (cycling through ``shapes``)."""
    cases = []
    for number, seed in enumerate(seeds):
        shape = shapes[number % len(shapes)]
        volume = generate_phantom(seed=seed, shape=shape).volume
        lung = np.isin(segment_baseline(volume).labels, (LABEL_LUNG_LEFT, LABEL_LUNG_RIGHT))
        means = local_lung_mean(np.minimum(volume.hu, CLIP_HU_MAX), lung, volume.spacing, KERNEL_MM)[lung]
        cases.append((seed, shape, volume, lung, means))
        print(f"seed {seed} {shape}: {lung.sum()} lung voxels, local mean {means.mean():.1f} +- {means.std():.1f} HU", flush=True)

    values = np.concatenate([case[4] for case in cases]).astype(np.float64)
    mean, std = float(values.mean()), float(values.std())
    z_reference = float(np.quantile((values - mean) / std, Z_QUANTILE))
    provisional = BaselineParameters(
        version=VERSION, kernel_mm=KERNEL_MM, clip_hu_max=CLIP_HU_MAX, lung_mean_hu=mean, lung_std_hu=std, z_quantile=Z_QUANTILE,
        z_reference=z_reference, voxel_threshold=VOXEL_THRESHOLD, study_threshold=0.0, score_unit="ml", checksum="",
    )
    study_scores = {}
    for seed, _shape, volume, lung, _means in cases:
        scores = anomaly_scores(volume.hu, lung, volume.spacing, provisional)
        findings = extract_findings(
            scores=scores, labels=lung.astype(np.uint8), names={1: "lung"}, affine=volume.affine,
            sop_instance_uids=[], voxel_threshold=VOXEL_THRESHOLD,
        )
        study_scores[str(seed)] = round(study_score(findings, affine=volume.affine), 4)
    study_threshold = max(STUDY_MARGIN * max(study_scores.values()), MIN_STUDY_THRESHOLD_ML)
    return {
        "version": VERSION,
        "kernel_mm": KERNEL_MM,
        "clip_hu_max": CLIP_HU_MAX,
        "lung_mean_hu": round(mean, 3),
        "lung_std_hu": round(std, 3),
        "z_quantile": Z_QUANTILE,
        "z_reference": round(z_reference, 4),
        "voxel_threshold": VOXEL_THRESHOLD,
        "study_threshold": round(study_threshold, 4),
        "score_unit": "ml",
        "fitted_on": {
            "generator": "shared.phantoms.generate_phantom (normal, no pathology)",
            "seeds": list(seeds),
            "shapes": [list(shape) for shape in shapes],
            "lung_voxels": int(values.size),
            "study_scores_ml": study_scores,
            "study_margin": STUDY_MARGIN,
            "command": "python -m worker_screener.fit_baseline",
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
