"""The held-out evaluation's uncertainty: a study AUROC comes with an interval, and a new model version is
compared with the last one on the same studies."""

from __future__ import annotations

import numpy as np
import pytest

from bench.statistics import auroc_difference, auroc_interval, bootstrap_aurocs

TRUTH = np.r_[np.zeros(50, bool), np.ones(50, bool)]


def _scores(separation: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=TRUTH.size) + separation * TRUTH


def test_interval_brackets_the_estimate_and_narrows_with_more_studies():
    scores = _scores(1.0, seed=1)
    interval = auroc_interval(TRUTH, scores)
    assert interval.low < interval.estimate < interval.high
    assert 0.05 < interval.high - interval.low < 0.3  # a hundred studies leave a wide interval
    larger = np.tile(TRUTH, 4)
    wide_interval = auroc_interval(larger, np.random.default_rng(1).normal(size=larger.size) + larger)
    assert wide_interval.high - wide_interval.low < 0.75 * (interval.high - interval.low)


def test_every_draw_keeps_normal_and_abnormal_studies_and_a_perfect_scorer_stays_perfect():
    draws = bootstrap_aurocs(TRUTH, TRUTH.astype(float)[None], resamples=200)
    assert draws.shape == (200, 1) and (draws == 1.0).all()
    with pytest.raises(ValueError, match="both normal and abnormal"):
        bootstrap_aurocs(np.ones(5, bool), np.arange(5.0)[None])


def test_paired_difference_is_zero_against_itself_and_finds_a_clearly_better_model():
    weak, strong = _scores(0.3, seed=2), _scores(2.5, seed=3)
    itself = auroc_difference(TRUTH, weak, weak)
    assert itself.estimate == itself.low == itself.high == 0.0
    better = auroc_difference(TRUTH, strong, weak)
    assert better.low > 0 and better.estimate > 0.2
    worse = auroc_difference(TRUTH, weak, strong)
    assert worse.high < 0 and worse.estimate == pytest.approx(-better.estimate)


def test_pairing_makes_the_difference_of_two_close_models_more_certain_than_their_intervals():
    base = _scores(1.0, seed=4)
    nudged = base + 0.2 * TRUTH  # the same model, a little better on every abnormal study
    difference = auroc_difference(TRUTH, nudged, base)
    single = auroc_interval(TRUTH, base)
    assert difference.low > 0, "a uniform improvement is certain however noisy the studies are"
    assert difference.high - difference.low < 0.5 * (single.high - single.low)
