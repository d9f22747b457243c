"""The descriptor network: a small 3D UNet (MONAI building blocks) giving every voxel a descriptor."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from monai.networks.nets import UNet
from torch import nn


@dataclass(frozen=True)
class DescriptorConfig:
    """Shape of the descriptor network; stored in the checkpoint so a file rebuilds its own network."""

    descriptor_dim: int = 24
    channels: tuple[int, ...] = (16, 32, 64, 128)
    strides: tuple[int, ...] = (2, 2, 2)
    projector_dim: int = 128

    def as_dict(self) -> dict:
        """Plain values for the checkpoint."""
        return asdict(self)


class DescriptorNet(nn.Module):
    """``(B, 1, Z, Y, X)`` image in [0, 1] -> ``(B, D, Z, Y, X)`` descriptors, D = ``descriptor_dim``.

    Batch normalisation (not instance normalisation): at inference its running statistics make a voxel's
    descriptor independent of which sliding window it was computed in. Spatial sizes must be multiples
    of ``prod(strides)``.
    """

    def __init__(self, config: DescriptorConfig = DescriptorConfig()) -> None:
        super().__init__()
        self.config = config
        self.unet = UNet(
            spatial_dims=3, in_channels=1, out_channels=config.descriptor_dim, channels=config.channels,
            strides=config.strides, num_res_units=0, norm="batch",
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.unet(image)


class Projector(nn.Module):
    """VICReg's expander, applied to sampled descriptors ``(N, D) -> (N, P)``; used only in training."""

    def __init__(self, config: DescriptorConfig = DescriptorConfig()) -> None:
        super().__init__()
        d, p = config.descriptor_dim, config.projector_dim
        self.layers = nn.Sequential(nn.Linear(d, p), nn.BatchNorm1d(p), nn.ReLU(inplace=True), nn.Linear(p, p))

    def forward(self, descriptors: torch.Tensor) -> torch.Tensor:
        return self.layers(descriptors)
