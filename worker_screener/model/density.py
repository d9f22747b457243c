"""Density of normal-tissue descriptors: a Gaussian mixture, ``-log p(descriptor)`` per voxel.

Fitted with scikit-learn's EM (full covariances; ``components=1`` with diagonal covariance is the
paper's diagonal Gaussian), evaluated in torch in chunks so a whole volume's descriptors never need a
second copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.mixture import GaussianMixture


@dataclass
class GaussianMixtureDensity:
    """``K`` components over ``D``-dim descriptors: log weights ``(K,)``, means ``(K, D)`` and the
    Cholesky factors of the precisions ``(K, D, D)`` (upper, as scikit-learn stores them)."""

    log_weights: torch.Tensor
    means: torch.Tensor
    precision_cholesky: torch.Tensor

    @classmethod
    def fit(cls, descriptors: np.ndarray, *, components: int, diagonal: bool = False, seed: int = 0) -> GaussianMixtureDensity:
        """EM on ``descriptors`` ``(N, D)`` of normal tissue."""
        mixture = GaussianMixture(
            n_components=components, covariance_type="diag" if diagonal else "full", reg_covar=1e-4,
            max_iter=200, random_state=seed,
        ).fit(descriptors.astype(np.float64))
        chol = mixture.precisions_cholesky_
        if diagonal:
            chol = np.stack([np.diag(row) for row in chol])
        return cls(
            log_weights=torch.tensor(np.log(mixture.weights_), dtype=torch.float32),
            means=torch.tensor(mixture.means_, dtype=torch.float32),
            precision_cholesky=torch.tensor(chol, dtype=torch.float32),
        )

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors for the checkpoint."""
        return {"log_weights": self.log_weights, "means": self.means, "precision_cholesky": self.precision_cholesky}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> GaussianMixtureDensity:
        """Inverse of :meth:`state`."""
        return cls(**{key: state[key].float() for key in ("log_weights", "means", "precision_cholesky")})

    def to(self, device: torch.device | str) -> GaussianMixtureDensity:
        """The same mixture on ``device``."""
        return GaussianMixtureDensity(*(t.to(device) for t in (self.log_weights, self.means, self.precision_cholesky)))

    @torch.inference_mode()
    def nll(self, descriptors: torch.Tensor, *, chunk: int = 262_144) -> torch.Tensor:
        """``-log p`` of descriptors ``(N, D)`` -> ``(N,)`` (float32)."""
        d = self.means.shape[1]
        log_det = torch.log(torch.diagonal(self.precision_cholesky, dim1=1, dim2=2)).sum(dim=1)  # (K,)
        constant = self.log_weights + log_det - 0.5 * d * math.log(2 * math.pi)
        out = torch.empty(descriptors.shape[0], dtype=torch.float32, device=descriptors.device)
        for start in range(0, descriptors.shape[0], chunk):
            x = descriptors[start:start + chunk].float()
            # y_k = (x - mu_k) @ U_k for every component: (K, n, D)
            y = torch.einsum("nd,kde->kne", x, self.precision_cholesky) - torch.einsum("kd,kde->ke", self.means, self.precision_cholesky)[:, None]
            log_prob = constant[:, None] - 0.5 * y.pow(2).sum(dim=2)
            out[start:start + chunk] = -torch.logsumexp(log_prob, dim=0)
        return out


@dataclass
class ConditionalDensity:
    """One :class:`GaussianMixtureDensity` per organ group (:mod:`worker_screener.model.context`)."""

    groups: dict[int, GaussianMixtureDensity]

    @classmethod
    def fit(cls, descriptors: np.ndarray, groups: np.ndarray, *, components: int, min_samples: int = 2000) -> ConditionalDensity:
        """A mixture per group with at least ``min_samples`` descriptors; rarer groups use the pooled one (key -1)."""
        fitted = {-1: GaussianMixtureDensity.fit(descriptors, components=components)}
        for group in np.unique(groups):
            chosen = descriptors[groups == group]
            if len(chosen) >= min_samples:
                fitted[int(group)] = GaussianMixtureDensity.fit(chosen, components=components)
        return cls(groups=fitted)

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors for the checkpoint: ``{group}.{name}``."""
        return {f"{group}.{key}": value for group, density in self.groups.items() for key, value in density.state().items()}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> ConditionalDensity:
        """Inverse of :meth:`state`."""
        keys = {name.rsplit(".", 1)[0] for name in state}
        return cls(groups={int(g): GaussianMixtureDensity.from_state({k.rsplit(".", 1)[1]: v for k, v in state.items() if k.rsplit(".", 1)[0] == g}) for g in keys})

    def to(self, device: torch.device | str) -> ConditionalDensity:
        """The same densities on ``device``."""
        return ConditionalDensity(groups={g: d.to(device) for g, d in self.groups.items()})

    @torch.inference_mode()
    def nll(self, descriptors: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """``-log p(descriptor | group)`` ``(N,)`` for descriptors ``(N, D)`` and their groups ``(N,)``."""
        out = torch.empty(descriptors.shape[0], dtype=torch.float32, device=descriptors.device)
        covered = torch.zeros(descriptors.shape[0], dtype=torch.bool, device=descriptors.device)
        for group, density in self.groups.items():
            if group < 0:
                continue
            chosen = groups == group
            if chosen.any():
                out[chosen] = density.nll(descriptors[chosen])
                covered |= chosen
        if not covered.all():
            out[~covered] = self.groups[-1].nll(descriptors[~covered])
        return out
