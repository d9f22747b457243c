"""Calibration: per-voxel NLL -> anomaly score in [0, 1] with a fixed meaning across model versions.

    score = 1 - (1 - voxel_threshold) ** (max(nll - nll_median, 0) / (nll_reference - nll_median))

``nll_median`` and ``nll_reference`` are the median and the ``reference_quantile`` quantile of the NLL over
body voxels of the *validation* normal studies, so ``score >= voxel_threshold`` (0.7) means exactly "rarer
than all but ``1 - reference_quantile`` of normal tissue" whatever the model. The same form as the HU
baseline's calibration (:mod:`worker_screener.baseline`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Calibration:
    """The fitted NLL landmarks and the voxel threshold they map to."""

    nll_median: float
    nll_reference: float
    reference_quantile: float
    voxel_threshold: float = 0.7

    @classmethod
    def fit(cls, normal_nll: np.ndarray, *, reference_quantile: float, voxel_threshold: float = 0.7) -> Calibration:
        """Landmarks from the NLL of validation normal body voxels."""
        median, reference = np.quantile(normal_nll.astype(np.float64), [0.5, reference_quantile])
        return cls(nll_median=float(median), nll_reference=float(max(reference, median + 1e-3)),
                   reference_quantile=reference_quantile, voxel_threshold=voxel_threshold)

    def as_dict(self) -> dict[str, float]:
        """Plain values for the checkpoint and the model card."""
        return asdict(self)

    def scores(self, nll: torch.Tensor) -> torch.Tensor:
        """Calibrated scores in [0, 1] of ``nll`` (any shape)."""
        excess = (nll - self.nll_median).clamp(min=0) / (self.nll_reference - self.nll_median)
        return 1.0 - torch.pow(torch.tensor(1.0 - self.voxel_threshold, dtype=nll.dtype, device=nll.device), excess)
