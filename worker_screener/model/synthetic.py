"""The synthetic-anomaly segmenter: a network that has learned what *normal* looks like by finding
anomalies drawn into normal scans.

Self-supervised anomaly detection with synthetic anomalies (foreign patch interpolation, Tan et al.,
arXiv 2011.04197; natural synthetic anomalies, Schlüter et al., arXiv 2109.15222; the MOOD challenge's
leading methods): generic anomalies (blobs of any intensity, intensity shifts, patches moved from
elsewhere in the scan; :mod:`worker_screener.training.synthetic`) are drawn into normal volumes, and a
3D UNet learns to segment them. None of them is a pathology of the phantom generator, so the network
learns departures from normal anatomy in general, not the evaluation's lesion types.

The voxel's evidence is ``softplus(logit) = -log(1 - p)``: the negative log-likelihood of "normal" under
the network's probability ``p``, so it is a term of the screener's voxel NLL like the others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from monai.networks.nets import UNet
from torch import nn

from worker_screener.model.preprocess import extend_to_window


@dataclass(frozen=True)
class SyntheticConfig:
    """Shape of the segmenter; stored in the checkpoint."""

    channels: tuple[int, ...] = (16, 32, 64, 128)
    strides: tuple[int, ...] = (2, 2, 2)
    res_units: int = 1

    def as_dict(self) -> dict:
        """Plain values for the checkpoint."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> SyntheticConfig:
        """Inverse of :meth:`as_dict` (lists from JSON or torch back to tuples)."""
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})


class SyntheticNet(nn.Module):
    """``(B, 1, Z, Y, X)`` prepared image -> ``(B, 1, Z, Y, X)`` logit that the voxel is anomalous. Spatial sizes
    must be multiples of ``prod(strides)``."""

    def __init__(self, config: SyntheticConfig = SyntheticConfig()) -> None:
        super().__init__()
        self.config = config
        self.unet = UNet(spatial_dims=3, in_channels=1, out_channels=1, channels=config.channels, strides=config.strides,
                         num_res_units=config.res_units, norm="batch")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.unet(image)


@torch.inference_mode()
def synthetic_nll(network: SyntheticNet, image: np.ndarray, *, device: torch.device, window: tuple[int, int, int]) -> torch.Tensor:
    """Per-voxel ``-log(1 - p)`` ``(Z, Y, X)`` (on ``device``) of a prepared image ``(Z, Y, X)``, the network run in
    sliding ``window`` s with Gaussian blending (a short or cropped scan's border planes repeated to
    fill one, :func:`~worker_screener.model.preprocess.extend_to_window`)."""
    image, inside = extend_to_window(image, window)
    tensor = torch.from_numpy(image)[None, None].to(device)
    logits = sliding_window_inference(tensor, roi_size=window, sw_batch_size=1, predictor=network, overlap=0.25,
                                      mode="gaussian", sw_device=device, device=device)
    return F.softplus(logits[(0, 0, *inside)])
