"""The condition model: what the anatomy around a voxel says the voxel should look like.

Screener (Goncharov et al., arXiv 2502.08321) conditions its density on a *condition model*: the same
kind of UNet, fed block-masked images, so that it encodes anatomical context rather than the voxel's own
appearance. Here the condition model predicts, for every voxel of a masked block, a Gaussian mixture
(:attr:`ConditionConfig.components`; one Gaussian in the shipped model) over the voxel's *local intensity*
(the 3x3x3 mean of the windowed image on the model grid), and the voxel's anomaly evidence is its
negative log-likelihood: soft tissue where the context expects aerated lung, fluid where it expects lung
base, a node where it expects mediastinal fat. No organ labels are needed, so the score does not
inherit the gate's segmentation errors.

At inference, for each of :attr:`ConditionConfig.scoring_offsets`, two passes with complementary
checkerboards of :attr:`ConditionConfig.block` blocks (``(Z, Y, X)`` voxels of the model grid) hide every
voxel exactly once; a voxel's NLL is the mean, over the offsets, of its NLL in the pass that hid it.
Shifting the second checkerboard by half a block puts every voxel once near a block's edge (where the
context is close) and once near its middle, which evens out the block pattern a single checkerboard
leaves in the map.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from monai.networks.nets import UNet
from torch import nn

from worker_screener.model.preprocess import extend_to_window

LOG_VAR_RANGE = (-14.0, 4.0)


@dataclass(frozen=True)
class ConditionConfig:
    """Shape of the condition network and its masking; stored in the checkpoint."""

    channels: tuple[int, ...] = (16, 32, 64, 128)
    strides: tuple[int, ...] = (2, 2, 2)
    components: int = 1
    """Gaussians in the predicted mixture (1: a single Gaussian; 3 measured worse, see the model card)."""
    block: tuple[int, int, int] = (8, 16, 16)
    """Masked block at inference (20 x 32 x 32 mm on the model grid): larger than a nodule."""
    training_blocks: tuple[tuple[int, int, int], ...] = ((6, 12, 12), (8, 16, 16), (12, 24, 24))
    scoring_offsets: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (4, 8, 8))
    """Checkerboard offsets (voxels) of the inference passes, two passes each. On the validation phantoms
    (v2's network) adding the half-block shift raised study AUROC from 0.735 to 0.770 and voxel AUROC from
    0.644 to 0.661 (body) and 0.467 to 0.521 (lungs), for twice the network passes (2.96 s to 4.40 s on the 512x512x300 bench)."""

    def as_dict(self) -> dict:
        """Plain values for the checkpoint."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ConditionConfig:
        """Inverse of :meth:`as_dict` (lists from JSON or torch back to tuples)."""
        def tuples(value):
            return tuple(tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
        return cls(**{key: tuples(value) for key, value in values.items()})


class ConditionNet(nn.Module):
    """``(B, 2, Z, Y, X)`` (masked image, mask) -> ``(B, 3K, Z, Y, X)``: the mixture's weight logits, means and
    log variances (K channels each, K = ``components``) for the local intensity. Spatial sizes must be
    multiples of ``prod(strides)``."""

    def __init__(self, config: ConditionConfig = ConditionConfig()) -> None:
        super().__init__()
        self.config = config
        self.unet = UNet(spatial_dims=3, in_channels=2, out_channels=3 * config.components, channels=config.channels,
                         strides=config.strides, num_res_units=0, norm="batch")

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.unet(inputs)
        k = self.config.components
        return torch.cat([out[:, :2 * k], out[:, 2 * k:].clamp(*LOG_VAR_RANGE)], dim=1)


def checkerboard(shape: tuple[int, ...], block: tuple[int, ...], *, offset: tuple[int, ...] = (0, 0, 0), phase: int = 0) -> np.ndarray:
    """Boolean ``shape`` mask: blocks of ``block`` voxels in a 3D checkerboard, ``phase`` 0 or 1 picks the colour."""
    index = [(np.arange(n) + o) // b for n, b, o in zip(shape, block, offset)]
    parity = index[0][:, None, None] + index[1][None, :, None] + index[2][None, None, :]
    return (parity % 2) == phase


def masked_input(image: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """Network input ``(B, 2, ...)`` from an image ``(B, 1, ...)`` and the voxels to hide ``(B, 1, ...)``."""
    return torch.cat([image * ~hidden, hidden.to(image.dtype)], dim=1)


def local_intensity(image: torch.Tensor) -> torch.Tensor:
    """The target: the 3x3x3 mean of ``image`` ``(B, 1, ...)`` (noise averaged, lesion contrast kept)."""
    return F.avg_pool3d(image, 3, stride=1, padding=1, count_include_pad=False)


def mixture_nll(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``-log sum_k w_k N(target; mean_k, exp(log_var_k))`` per voxel for ``prediction`` ``(B, 3K, ...)`` (as
    :class:`ConditionNet` gives it) and ``target`` ``(B, 1, ...)`` -> ``(B, 1, ...)``."""
    logits, mean, log_var = prediction.chunk(3, dim=1)
    log_normal = -0.5 * (log_var + (target - mean) ** 2 / log_var.exp() + math.log(2 * math.pi))
    return -torch.logsumexp(torch.log_softmax(logits, dim=1) + log_normal, dim=1, keepdim=True)


@torch.inference_mode()
def context_nll(network: ConditionNet, image: np.ndarray, *, device: torch.device, window: tuple[int, int, int]) -> torch.Tensor:
    """Per-voxel NLL ``(Z, Y, X)`` (on ``device``) of a prepared image's local intensity given its masked context
    (mean over the config's scoring offsets), the network run in sliding ``window`` s (a short or cropped scan's
    border planes repeated to fill one, :func:`~worker_screener.model.preprocess.extend_to_window`)."""
    image, inside = extend_to_window(image, window)
    tensor = torch.from_numpy(image)[None, None].to(device)
    target = local_intensity(tensor)
    total = torch.zeros_like(tensor)
    offsets = network.config.scoring_offsets
    for offset in offsets:
        aligned = tuple(o - part.start for o, part in zip(offset, inside))  # the blocks stay where they are on the scan itself
        for phase in (0, 1):
            hidden = torch.from_numpy(checkerboard(image.shape, network.config.block, offset=aligned, phase=phase))[None, None].to(device)
            prediction = sliding_window_inference(masked_input(tensor, hidden), roi_size=window, sw_batch_size=1,
                                                  predictor=network, overlap=0.25, mode="gaussian", sw_device=device, device=device)
            total += torch.where(hidden, mixture_nll(prediction, target), 0.0)
    return total[(0, 0, *inside)] / len(offsets)
