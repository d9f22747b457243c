"""Sampling uncertainty of study-level AUROC on a held-out set of a hundred studies, where one study more or
less on the wrong side moves the AUROC by a few hundredths: a stratified bootstrap (Efron & Tibshirani,
*An Introduction to the Bootstrap*, 1993, ch. 13), paired when two scorers rated the same studies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95 % percentile-bootstrap interval."""

    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"estimate": round(self.estimate, 4), "low": round(self.low, 4), "high": round(self.high, 4)}


def bootstrap_aurocs(truth: np.ndarray, scores: np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """AUROC of each scorer's row of ``scores`` ``(M, N)`` against ``truth`` ``(N,)`` on ``resamples`` bootstrap draws of
    the N studies, normal and abnormal drawn separately so that every draw keeps both; the same draws for every
    row, so differences are paired. Returns ``(resamples, M)``."""
    truth, scores = np.asarray(truth, dtype=bool), np.atleast_2d(np.asarray(scores, dtype=float))
    normal, abnormal = np.flatnonzero(~truth), np.flatnonzero(truth)
    if not normal.size or not abnormal.size:
        raise ValueError("an AUROC needs both normal and abnormal studies")
    rng = np.random.default_rng(seed)
    draws = np.empty((resamples, len(scores)))
    for index in range(resamples):
        chosen = np.r_[rng.choice(normal, normal.size), rng.choice(abnormal, abnormal.size)]
        draws[index] = [roc_auc_score(truth[chosen], row[chosen]) for row in scores]
    return draws


def auroc_interval(truth: np.ndarray, scores: np.ndarray, **bootstrap) -> Interval:
    """Study AUROC of ``scores`` ``(N,)`` with its 95 % interval."""
    draws = bootstrap_aurocs(truth, scores[None], **bootstrap)[:, 0]
    return Interval(float(roc_auc_score(truth, scores)), *map(float, np.percentile(draws, [2.5, 97.5])))


def auroc_difference(truth: np.ndarray, scores: np.ndarray, earlier: np.ndarray, **bootstrap) -> Interval:
    """AUROC of ``scores`` minus that of ``earlier`` (both ``(N,)``, the same studies) with its paired 95 % interval."""
    draws = bootstrap_aurocs(truth, np.stack([scores, earlier]), **bootstrap)
    estimate = roc_auc_score(truth, scores) - roc_auc_score(truth, earlier)
    return Interval(float(estimate), *map(float, np.percentile(draws[:, 0] - draws[:, 1], [2.5, 97.5])))
