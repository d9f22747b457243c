"""Density of normal-tissue descriptors given the organ group: a small conditional normalizing flow.

The alternative to one Gaussian mixture per organ group (:mod:`worker_screener.model.density`) that
``python -m bench density`` measures against it (it does not ship: see that benchmark). RealNVP affine
couplings (Dinh et al., *Density estimation using Real NVP*, arXiv 1605.08803) whose scale and shift
networks also see the organ group one-hot, so one flow serves every group. The descriptors are
standardised first (training mean and SD), then

    log p(x | g) = log N(f(x; g); 0, I) + log |det df/dx|

with ``f`` the stack of couplings, each transforming one half of the (reversed) coordinates given the
other half. ``tanh``-bounded log scales keep the fit stable on a CPU in a few minutes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from worker_screener.model.context import GROUPS


class AffineCoupling(nn.Module):
    """``y = [x_a, x_b * exp(s(x_a, g)) + t(x_a, g)]`` over a ``(N, D)`` batch; returns ``y`` and ``log|det|`` ``(N,)``."""

    def __init__(self, dim: int, conditions: int, hidden: int) -> None:
        super().__init__()
        self.half = dim // 2
        self.net = nn.Sequential(nn.Linear(self.half + conditions, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 2 * (dim - self.half)))
        nn.init.zeros_(self.net[-1].weight)  # starts as the identity
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kept, changed = x[:, :self.half], x[:, self.half:]
        log_scale, shift = self.net(torch.cat([kept, condition], dim=1)).chunk(2, dim=1)
        log_scale = torch.tanh(log_scale)
        return torch.cat([kept, changed * log_scale.exp() + shift], dim=1), log_scale.sum(dim=1)


class ConditionalFlow(nn.Module):
    """``-log p(descriptor | organ group)`` for ``(N, D)`` descriptors and ``(N,)`` groups (indices into :data:`GROUPS`)."""

    def __init__(self, dim: int, *, layers: int = 6, hidden: int = 128) -> None:
        super().__init__()
        self.dim = dim
        self.couplings = nn.ModuleList(AffineCoupling(dim, len(GROUPS), hidden) for _ in range(layers))
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def log_prob(self, descriptors: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """``log p`` ``(N,)``."""
        condition = nn.functional.one_hot(groups.long(), len(GROUPS)).to(descriptors.dtype)
        z = (descriptors - self.mean) / self.scale
        log_det = -torch.log(self.scale).sum().expand(len(z))
        for coupling in self.couplings:
            z, step = coupling(z.flip(1), condition)  # reversing the coordinates alternates the halves
            log_det = log_det + step
        return -0.5 * (z.pow(2).sum(dim=1) + self.dim * math.log(2 * math.pi)) + log_det

    @torch.inference_mode()
    def nll(self, descriptors: torch.Tensor, groups: torch.Tensor, *, chunk: int = 262_144) -> torch.Tensor:
        """``-log p(descriptor | group)`` ``(N,)`` (float32), in chunks."""
        return torch.cat([-self.log_prob(descriptors[i:i + chunk].float(), groups[i:i + chunk])
                          for i in range(0, len(descriptors), chunk)]) if len(descriptors) else descriptors.new_zeros(0)

    @classmethod
    def fit(cls, descriptors: np.ndarray, groups: np.ndarray, *, steps: int = 3000, batch: int = 4096, lr: float = 1e-3,
            seed: int = 0, log: Callable[[str], None] = print) -> ConditionalFlow:
        """Maximum likelihood on ``descriptors`` ``(N, D)`` of normal tissue and their ``groups`` ``(N,)`` (AdamW, cosine)."""
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        x, g = torch.from_numpy(descriptors.astype(np.float32)), torch.from_numpy(groups.astype(np.int64))
        flow = cls(x.shape[1])
        flow.mean.copy_(x.mean(dim=0))
        flow.scale.copy_(x.std(dim=0).clamp(min=1e-4))
        optimizer = torch.optim.AdamW(flow.parameters(), lr=lr, weight_decay=1e-5)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
        for step in range(steps):
            chosen = torch.randint(len(x), (batch,), generator=generator)
            loss = -flow.log_prob(x[chosen], g[chosen]).mean() / flow.dim
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            if step % 500 == 0 or step == steps - 1:
                log(f"flow step {step}: NLL per dimension {loss.item():.4f}")
        return flow.eval()
