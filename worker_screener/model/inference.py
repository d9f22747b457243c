"""Score a whole volume: preprocessing; the voxel NLL, the sum of the screener's terms (the density NLL of
sliding-window descriptors given the organ group from the gate's label map, the condition model's NLL of
the local intensity given the masked context, and/or the synthetic-anomaly segmenter's ``-log(1 - p)``);
calibration; the map back on the input grid."""

from __future__ import annotations

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from worker_screener.model.checkpoint import Screener
from worker_screener.model.condition import context_nll
from worker_screener.model.context import groups_on_model_grid
from worker_screener.model.network import DescriptorNet
from worker_screener.model.preprocess import PreparedVolume, extend_to_window, prepare, to_volume_grid
from worker_screener.model.synthetic import synthetic_nll

WINDOW: tuple[int, int, int] = (64, 128, 128)
OVERLAP = 0.25


@torch.inference_mode()
def describe(network: DescriptorNet, image: np.ndarray, *, device: torch.device) -> torch.Tensor:
    """Descriptors ``(D, Z, Y, X)`` of a prepared image ``(Z, Y, X)`` (sliding window, Gaussian blending; a short
    or cropped scan's border planes repeated to fill one)."""
    image, inside = extend_to_window(image, WINDOW)
    tensor = torch.from_numpy(image)[None, None].to(device)
    out = sliding_window_inference(tensor, roi_size=WINDOW, sw_batch_size=1, predictor=network,
                                   overlap=OVERLAP, mode="gaussian", sw_device=device, device=device)
    return out[(0, slice(None), *inside)]


@torch.inference_mode()
def voxel_nll(screener: Screener, prepared: PreparedVolume, groups: np.ndarray) -> np.ndarray:
    """NLL ``(Z, Y, X)`` on the model grid given each voxel's organ group; body voxels only (``nan`` outside)."""
    body = torch.from_numpy(prepared.body).to(screener.device)
    total = torch.zeros(int(body.sum()), dtype=torch.float32, device=screener.device)
    if "descriptor" in screener.terms:
        descriptors = describe(screener.network, prepared.image, device=screener.device)
        total += screener.density.nll(descriptors[:, body].T, torch.from_numpy(groups).to(screener.device)[body])
        del descriptors
    if "context" in screener.terms:
        assert screener.condition is not None, "a context term needs the condition network"
        total += context_nll(screener.condition, prepared.image, device=screener.device, window=WINDOW)[body]
    if "synthetic" in screener.terms:
        assert screener.synthetic is not None, "a synthetic term needs the synthetic-anomaly network"
        total += synthetic_nll(screener.synthetic, prepared.image, device=screener.device, window=WINDOW)[body]
    nll = torch.full(prepared.body.shape, float("nan"), dtype=torch.float32, device=screener.device)
    nll[body] = total
    return nll.cpu().numpy()


def score_volume(screener: Screener, hu: np.ndarray, spacing: tuple[float, float, float], labels: np.ndarray) -> np.ndarray:
    """Calibrated anomaly scores in [0, 1] on the grid of ``hu`` ``(nz, ny, nx)`` given the gate's organ
    ``labels`` on the same grid; 0 outside the body."""
    prepared = prepare(hu, spacing)
    groups = groups_on_model_grid(labels, prepared.box, prepared.image.shape)
    nll = torch.from_numpy(voxel_nll(screener, prepared, groups))
    scores = torch.nan_to_num(screener.calibration.scores(nll), nan=0.0).numpy()
    return np.clip(to_volume_grid(scores, prepared), 0.0, 1.0)
