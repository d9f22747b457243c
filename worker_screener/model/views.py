"""Training pairs for dense self-supervision: two overlapping, differently augmented views of one CT at
different voxel spacings, and the voxel-to-voxel correspondence between them in patient space.

A view is a ``VIEW_SIZE`` crop resampled (trilinear, :func:`torch.nn.functional.grid_sample`) from the
prepared volume at ``scale`` times the model spacing around ``centre`` (voxel coordinates ``(z, y, x)``
of the prepared volume): view voxel ``v`` shows the point ``centre + scale * (v - (VIEW_SIZE - 1) / 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

VIEW_SIZE: tuple[int, int, int] = (32, 64, 64)
SCALE_RANGE = (0.8, 1.25)
MAX_SHIFT = 0.35
"""Second view's centre moves by up to this fraction of the first view's extent, per axis."""


@dataclass(frozen=True)
class View:
    """Where a view lies in its prepared volume."""

    centre: torch.Tensor  # (3,) float, (z, y, x)
    scale: float

    def to_volume(self, voxels: torch.Tensor) -> torch.Tensor:
        """View voxel coordinates ``(N, 3)`` -> prepared-volume coordinates."""
        return self.centre + self.scale * (voxels - _half())

    def from_volume(self, points: torch.Tensor) -> torch.Tensor:
        """Prepared-volume coordinates ``(N, 3)`` -> view voxel coordinates (possibly outside the view)."""
        return (points - self.centre) / self.scale + _half()


def sample_views(body_points: np.ndarray, rng: np.random.Generator) -> tuple[View, View]:
    """Two overlapping views; the first centred on a random body voxel from ``body_points`` ``(N, 3)``."""
    centre = torch.tensor(body_points[rng.integers(len(body_points))], dtype=torch.float32)
    first = View(centre=centre, scale=float(rng.uniform(*SCALE_RANGE)))
    extent = torch.tensor(VIEW_SIZE, dtype=torch.float32) * first.scale
    shift = torch.tensor(rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=3), dtype=torch.float32) * extent
    return first, View(centre=centre + shift, scale=float(rng.uniform(*SCALE_RANGE)))


def render_view(volume: torch.Tensor, view: View) -> torch.Tensor:
    """Resample ``volume`` ``(1, 1, Z, Y, X)`` into the view ``(1, 1, *VIEW_SIZE)``; outside is air (0)."""
    axes = [torch.arange(n, dtype=torch.float32) for n in VIEW_SIZE]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    points = view.to_volume(grid)
    return F.grid_sample(volume, _normalised(points, volume.shape[2:]).reshape(1, *VIEW_SIZE, 3),
                         mode="bilinear", padding_mode="zeros", align_corners=True)


def matched_voxels(
    first: View, second: View, body: torch.Tensor, rng: np.random.Generator, count: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``count`` voxels of the first view inside the body ``(Z, Y, X)`` and the second view, as integer
    voxels of the first ``(N, 3)`` and continuous voxels of the second ``(N, 3)`` (same patient points)."""
    candidates = torch.from_numpy(np.stack([rng.integers(0, n, size=count * 4) for n in VIEW_SIZE], axis=1)).float()
    points = first.to_volume(candidates)
    inside_body = _nearest(body, points)
    other = second.from_volume(points)
    limit = torch.tensor(VIEW_SIZE, dtype=torch.float32) - 1
    keep = inside_body & (other >= 0).all(dim=1) & (other <= limit).all(dim=1)
    return candidates[keep][:count].long(), other[keep][:count]


def gather_first(descriptors: torch.Tensor, voxels: torch.Tensor) -> torch.Tensor:
    """Descriptors ``(1, D, *VIEW_SIZE)`` at integer ``voxels`` ``(N, 3)`` -> ``(N, D)``."""
    return descriptors[0][:, voxels[:, 0], voxels[:, 1], voxels[:, 2]].T


def gather_second(descriptors: torch.Tensor, voxels: torch.Tensor) -> torch.Tensor:
    """Descriptors ``(1, D, *VIEW_SIZE)`` interpolated at continuous ``voxels`` ``(N, 3)`` -> ``(N, D)``."""
    grid = _normalised(voxels, VIEW_SIZE).reshape(1, -1, 1, 1, 3)
    return F.grid_sample(descriptors, grid, mode="bilinear", align_corners=True)[0, :, :, 0, 0].T


def augment(view: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Brightness, contrast, gamma, blur and noise, mild enough that ground glass stays unlike lung."""
    out = view.clamp(0, 1) ** float(rng.uniform(0.85, 1.15))
    out = (out - 0.5) * float(rng.uniform(0.9, 1.1)) + 0.5 + float(rng.uniform(-0.03, 0.03))
    if rng.random() < 0.3:
        out = F.avg_pool3d(F.pad(out, (1, 1, 1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return out + float(rng.uniform(0.0, 0.02)) * torch.randn_like(out)


def _half() -> torch.Tensor:
    return (torch.tensor(VIEW_SIZE, dtype=torch.float32) - 1) / 2


def _normalised(points: torch.Tensor, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """``(N, 3)`` (z, y, x) voxel coordinates -> grid_sample's (x, y, z) in [-1, 1] (align_corners=True)."""
    size = torch.tensor([max(n - 1, 1) for n in shape], dtype=torch.float32)
    return (2 * points / size - 1).flip(-1)


def _nearest(mask: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    index = points.round().long()
    limit = torch.tensor(mask.shape) - 1
    inside = (index >= 0).all(dim=1) & (index <= limit).all(dim=1)
    index = torch.minimum(index.clamp(min=0), limit)
    return inside & mask[index[:, 0], index[:, 1], index[:, 2]]
