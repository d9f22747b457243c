"""Dense VICReg (Bardes et al., ICLR 2022; dense form as in Goncharov et al., arXiv 2502.08321).

Applied to descriptors of the *same patient-space points* seen in two views: invariance pulls the two
together, variance keeps every dimension's spread above ``gamma`` (no collapse), covariance decorrelates
the dimensions (no redundant descriptors).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

INVARIANCE_WEIGHT, VARIANCE_WEIGHT, COVARIANCE_WEIGHT = 25.0, 25.0, 1.0


def vicreg_loss(a: torch.Tensor, b: torch.Tensor, *, gamma: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of matched rows ``a``, ``b`` ``(N, P)``; returns it and its three terms (for the log)."""
    invariance = F.mse_loss(a, b)
    variance = _variance(a, gamma) + _variance(b, gamma)
    covariance = _covariance(a) + _covariance(b)
    loss = INVARIANCE_WEIGHT * invariance + VARIANCE_WEIGHT * variance + COVARIANCE_WEIGHT * covariance
    return loss, {"inv": invariance.item(), "var": variance.item(), "cov": covariance.item()}


def _variance(x: torch.Tensor, gamma: float) -> torch.Tensor:
    std = torch.sqrt(x.var(dim=0) + 1e-4)
    return F.relu(gamma - std).mean()


def _covariance(x: torch.Tensor) -> torch.Tensor:
    n, d = x.shape
    centred = x - x.mean(dim=0)
    cov = (centred.T @ centred) / (n - 1)
    off_diagonal = cov - torch.diag(torch.diag(cov))
    return off_diagonal.pow(2).sum() / d
