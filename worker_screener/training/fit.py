"""After the descriptor: fit the density on normal tissue, choose it and calibrate it on validation.

1. Descriptors of density material (normal training phantoms' bodies, real tissue away from lesions),
   pooled with stride :data:`POOL_STRIDE` as in the paper, at most :data:`MAX_DESCRIPTORS`.
2. Each candidate in :data:`DENSITY_CANDIDATES` is fitted; the one with the best voxel AUROC inside the
   body on the validation phantoms is kept.
3. The voxel NLL is the sum of a choice of terms (:data:`TERM_CANDIDATES`): the descriptor density's NLL,
   the condition model's context NLL, the synthetic-anomaly segmenter's ``-log(1 - p)``, or a sum (their
   joint NLL if independent); the choice with the best validation voxel AUROC is kept.
4. Calibration landmarks from the validation normals' body NLL; the reference quantile is chosen among
   :data:`REFERENCE_QUANTILES` by validation study-level AUROC (ties: the strictest), and the study
   threshold is :data:`STUDY_MARGIN` times the highest validation-normal study score (at least
   :data:`MIN_STUDY_THRESHOLD_ML`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from shared.anatomy import ORGANS
from worker_localizer.findings import extract_findings, study_score
from worker_screener.model.calibration import Calibration
from worker_screener.model.condition import ConditionNet, context_nll
from worker_screener.model.density import ConditionalDensity
from worker_screener.model.inference import WINDOW, describe
from worker_screener.model.network import DescriptorNet
from worker_screener.model.preprocess import to_volume_grid
from worker_screener.model.synthetic import SyntheticNet, synthetic_nll
from worker_screener.training.corpus import Example, ValidationCase

POOL_STRIDE = (2, 3, 3)
MAX_DESCRIPTORS = 400_000
DENSITY_CANDIDATES: tuple[tuple[str, int], ...] = (("per-organ-group gmm-4", 4), ("per-organ-group gmm-8", 8))
"""An experiment on the validation set (descriptor of v1) ruled out one density for the whole body:
voxel AUROC 0.58 (diagonal Gaussian) / 0.54 (GMM-4) against 0.63 / 0.62 conditioned on organ group,
and inside the lungs 0.51 / 0.48 against 0.72 / 0.80."""
TERM_CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("descriptor",), ("context",), ("descriptor", "context"), ("synthetic",), ("context", "synthetic"),
)
REFERENCE_QUANTILES = (0.999, 0.9995, 0.9999)
STUDY_MARGIN = 1.25
MIN_STUDY_THRESHOLD_ML = 0.05
VOXEL_THRESHOLD = 0.7
MIN_FINDING_MM3 = 30.0


def pooled_descriptors(network: DescriptorNet, examples: Sequence[Example], *, device: torch.device, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors ``(N, D)`` of every example's density mask and their organ groups ``(N,)``, pooled and subsampled."""
    rng = np.random.default_rng(seed)
    chunks, groups = [], []
    for example in examples:
        if example.density_mask is None or example.groups is None:
            continue
        descriptors = describe(network, example.prepared.image, device=device).cpu()
        pool = tuple(slice(None, None, s) for s in POOL_STRIDE)
        mask = np.ascontiguousarray(example.density_mask[pool])
        chunks.append(descriptors[(slice(None), *pool)][:, torch.from_numpy(mask)].T.numpy())
        groups.append(example.groups[pool][mask])
    stacked, stacked_groups = np.concatenate(chunks), np.concatenate(groups)
    if len(stacked) > MAX_DESCRIPTORS:
        chosen = rng.choice(len(stacked), MAX_DESCRIPTORS, replace=False)
        stacked, stacked_groups = stacked[chosen], stacked_groups[chosen]
    return stacked, stacked_groups


def validation_descriptors(network: DescriptorNet, cases: Sequence[ValidationCase], *, device: torch.device) -> list[torch.Tensor]:
    """Body-voxel descriptors ``(N, D)`` (float16, CPU) of each validation case, computed once for every candidate."""
    return [describe(network, case.prepared.image, device=device)[:, torch.from_numpy(case.prepared.body).to(device)].T.half().cpu()
            for case in cases]


def validation_nll(density: ConditionalDensity, descriptors: Sequence[torch.Tensor], cases: Sequence[ValidationCase]) -> list[np.ndarray]:
    """Body-voxel NLL (model grid, ``nan`` outside the body) of each validation case."""
    maps = []
    for body_descriptors, case in zip(descriptors, cases):
        nll = np.full(case.prepared.body.shape, np.nan, dtype=np.float32)
        groups = torch.from_numpy(case.groups[case.prepared.body])
        nll[case.prepared.body] = density.nll(body_descriptors.float(), groups).numpy()
        maps.append(nll)
    return maps


def voxel_auroc(nll_maps: Sequence[np.ndarray], cases: Sequence[ValidationCase], *, seed: int = 0) -> float:
    """AUROC of NLL for lesion vs other body voxels over ``cases`` (normal voxels subsampled)."""
    rng = np.random.default_rng(seed)
    positives, negatives = [], []
    for nll, case in zip(nll_maps, cases):
        body = case.prepared.body
        positives.append(nll[body & case.lesion])
        normal = nll[body & ~case.lesion]
        negatives.append(normal[rng.choice(len(normal), min(len(normal), 50_000), replace=False)])
    pos, neg = np.concatenate(positives), np.concatenate(negatives)
    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


def study_scores(nll_maps: Sequence[np.ndarray], cases: Sequence[ValidationCase], calibration: Calibration) -> list[float]:
    """The localizer's study score (ml) of each case under ``calibration``, on the phantom's own grid."""
    names = {organ.label: organ.name for organ in ORGANS}
    result = []
    for nll, case in zip(nll_maps, cases):
        scores = torch.nan_to_num(calibration.scores(torch.from_numpy(nll)), nan=0.0).numpy()
        volume = case.phantom.volume
        findings = extract_findings(
            scores=to_volume_grid(scores, case.prepared), labels=case.phantom.labels, names=names,
            affine=volume.affine, sop_instance_uids=[], voxel_threshold=calibration.voxel_threshold,
            min_volume_mm3=MIN_FINDING_MM3,
        )
        result.append(study_score(findings, affine=volume.affine))
    return result


def choose_density(
    network: DescriptorNet, descriptors: np.ndarray, groups: np.ndarray, cases: Sequence[ValidationCase], *,
    device: torch.device, log: Callable[[str], None] = print,
) -> tuple[str, ConditionalDensity, list[np.ndarray], dict[str, float]]:
    """Fit every candidate; keep the best by validation voxel AUROC. Returns its name, itself, its NLL maps
    and every candidate's AUROC."""
    lesion_cases = [case for case in cases if not case.normal]
    described = validation_descriptors(network, cases, device=device)
    best, table = None, {}
    for name, components in DENSITY_CANDIDATES:
        density = ConditionalDensity.fit(descriptors, groups, components=components)
        nll = validation_nll(density, described, cases)
        auroc = voxel_auroc([m for m, c in zip(nll, cases) if not c.normal], lesion_cases)
        table[name] = round(auroc, 4)
        log(f"density {name}: validation voxel AUROC {auroc:.4f}")
        if best is None or auroc > best[0]:
            best = (auroc, name, density, nll)
    assert best is not None
    return best[1], best[2], best[3], table


def choose_terms(
    descriptor_nll: Sequence[np.ndarray], condition: ConditionNet, cases: Sequence[ValidationCase], *,
    synthetic: SyntheticNet | None = None, device: torch.device, log: Callable[[str], None] = print,
) -> tuple[tuple[str, ...], list[np.ndarray], dict[str, float]]:
    """Keep the :data:`TERM_CANDIDATES` entry (of those whose networks are given) with the best validation voxel
    AUROC. Returns it, its NLL maps and every candidate's AUROC."""
    networks = {"context": (condition, context_nll), "synthetic": (synthetic, synthetic_nll)}
    parts = {"descriptor": list(descriptor_nll)}
    for term, (network, nll_of) in networks.items():
        if network is not None:
            parts[term] = [np.where(case.prepared.body, nll_of(network, case.prepared.image, device=device, window=WINDOW).cpu().numpy(),
                                    np.nan).astype(np.float32) for case in cases]
    lesion = [not case.normal for case in cases]
    best, table = None, {}
    for terms in (candidate for candidate in TERM_CANDIDATES if set(candidate) <= set(parts)):
        maps = [sum(parts[term][i] for term in terms) for i in range(len(cases))]
        auroc = voxel_auroc([m for m, keep in zip(maps, lesion) if keep], [c for c, keep in zip(cases, lesion) if keep])
        table[" + ".join(terms)] = round(auroc, 4)
        log(f"voxel NLL {' + '.join(terms)}: validation voxel AUROC {auroc:.4f}")
        if best is None or auroc > best[0]:
            best = (auroc, terms, maps)
    assert best is not None
    return best[1], best[2], table


def calibrate(nll_maps: Sequence[np.ndarray], cases: Sequence[ValidationCase], *, log: Callable[[str], None] = print) -> tuple[Calibration, float, dict]:
    """The calibration and study threshold (see module doc), with the validation figures behind them."""
    normal_nll = np.concatenate([m[c.prepared.body] for m, c in zip(nll_maps, cases) if c.normal])
    labels = np.array([0 if c.normal else 1 for c in cases])
    best = None
    for quantile in REFERENCE_QUANTILES:
        calibration = Calibration.fit(normal_nll, reference_quantile=quantile, voxel_threshold=VOXEL_THRESHOLD)
        scores = study_scores(nll_maps, cases, calibration)
        auroc = float(roc_auc_score(labels, scores))
        log(f"calibration q={quantile}: validation study AUROC {auroc:.4f}")
        if best is None or auroc >= best[0]:
            best = (auroc, calibration, scores)
    assert best is not None
    auroc, calibration, scores = best
    normal_scores = [s for s, label in zip(scores, labels) if label == 0]
    threshold = max(STUDY_MARGIN * max(normal_scores), MIN_STUDY_THRESHOLD_ML)
    flagged = [s > threshold for s, label in zip(scores, labels) if label == 1]
    figures = {"study_auroc": round(auroc, 4), "study_scores_ml": {c.phantom.params.seed: round(s, 4) for c, s in zip(cases, scores)},
               "sensitivity_at_threshold": round(float(np.mean(flagged)), 4), "study_margin": STUDY_MARGIN}
    return calibration, threshold, figures
