"""Training of the synthetic-anomaly segmenter (:mod:`worker_screener.model.synthetic`) on normal volumes.

Each step crops :data:`~worker_screener.training.crops.CROP` voxels from ``batch`` normal volumes (random flips left-right) and draws
0-3 anomalies into each (:func:`draw_anomalies`); the loss is the binary cross-entropy of the body voxels
against where the drawing changed the local intensity. Only normal volumes are used, and none of the
drawn anomalies is one of the phantom generator's pathologies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from worker_screener.model.preprocess import PreparedVolume
from worker_screener.model.synthetic import SyntheticConfig, SyntheticNet
from worker_screener.training.crops import random_crop, train_on_crops

RADIUS_VOXELS = (1.2, 14.0)
"""Semi-axes of a drawn blob (log-uniform), voxels of the model grid: 2.4-28 mm in plane. Blobs up to 60 mm
together with a fourth kind (the blob's own content blurred) lifted validation voxel AUROC from 0.45 to
0.52 but made the network call 20 % of the held-out real apex scan unusual (0.02 % with these settings)."""
VISIBLE_CHANGE = 0.03
"""A voxel is a target where its 3x3x3 mean moved by more than this (about 40 HU in the window)."""
POSITIVE_WEIGHT = 3.0
"""Weight of anomalous voxels in the loss: they are a few per cent of a crop."""


def draw_anomalies(image: np.ndarray, body: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``image`` ``(Z, Y, X)`` in [0, 1] with 0-3 anomalies drawn inside ``body``, and the target mask of the voxels
    whose local intensity they visibly changed. Each anomaly is a soft-edged, randomly deformed ellipsoid
    blended in with one of: a constant intensity with noise (any tissue, or soft tissue/fluid), a shift of
    the intensity up or down, or the content of another place in the same crop."""
    drawn, target = image.copy(), np.zeros(image.shape, dtype=bool)
    inside = np.argwhere(body)
    count = int(rng.choice(4, p=[0.15, 0.45, 0.25, 0.15]))
    for _ in range(count if len(inside) else 0):
        centre = inside[rng.integers(len(inside))]
        weight, box = _blob(centre, image.shape, rng)
        weight *= body[box]
        before = drawn[box]
        kind = rng.random()
        if kind < 0.45:
            level = rng.uniform(0.0, 1.0) if rng.random() < 0.5 else rng.uniform(0.55, 0.85)
            content, alpha = level + rng.normal(0.0, rng.uniform(0.005, 0.03), before.shape), rng.uniform(0.4, 1.0)
        elif kind < 0.75:
            content, alpha = before + rng.choice((-1.0, 1.0)) * rng.uniform(0.04, 0.35), 1.0
        else:
            shift = tuple(int(s) for s in inside[rng.integers(len(inside))] - centre)
            content, alpha = np.roll(drawn, tuple(-s for s in shift), axis=(0, 1, 2))[box], rng.uniform(0.5, 1.0)
        after = before + alpha * weight * (np.clip(content, 0.0, 1.0) - before)
        changed = np.abs(ndimage.uniform_filter(after, 3) - ndimage.uniform_filter(before, 3)) > VISIBLE_CHANGE
        drawn[box] = after
        target[box] |= changed & body[box]
    return drawn.astype(np.float32), target


def _blob(centre: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Soft membership in [0, 1] of a randomly rotated, deformed ellipsoid around ``centre``, on its bounding box."""
    radii = np.exp(rng.uniform(*np.log(RADIUS_VOXELS), 3)) * np.array([0.8, 1.0, 1.0])
    reach = radii.max() * 1.6 + 2
    low, high = np.maximum(centre - reach, 0).astype(int), np.minimum(centre + reach + 1, shape).astype(int)
    box = tuple(slice(a, b) for a, b in zip(low, high))
    offsets = np.stack(np.meshgrid(*[np.arange(a, b) - c for a, b, c in zip(low, high, centre)], indexing="ij"), axis=-1)
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    distance = np.sqrt((((offsets @ rotation) / radii) ** 2).sum(axis=-1))
    wobble = ndimage.zoom(rng.normal(size=(3, 3, 3)), np.array(distance.shape) / 3, order=1, grid_mode=True, mode="nearest")
    distance *= 1 + 0.25 * wobble[tuple(slice(0, n) for n in distance.shape)]
    softness = rng.uniform(0.05, 0.3)
    return 0.5 * (1 + np.tanh((1 - distance) / (2 * softness))), box


def train_synthetic(
    volumes: Sequence[PreparedVolume], *, minutes: float, device: torch.device, seed: int = 0, batch: int = 2,
    learning_rate: float = 2e-3, max_steps: int | None = None, config: SyntheticConfig = SyntheticConfig(),
    log: Callable[[str], None] = print,
) -> tuple[SyntheticNet, dict]:
    """Train a segmenter from scratch on normal ``volumes``; returns it (eval mode, CPU) and a summary."""
    torch.manual_seed(seed)
    network = SyntheticNet(config).to(device)
    positive_weight = torch.tensor(POSITIVE_WEIGHT, device=device)

    def loss(network: SyntheticNet, image: torch.Tensor, body: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(network(image)[body], target[body].float(), pos_weight=positive_weight)

    summary = train_on_crops(network, volumes, name="synthetic-anomaly", sample=_anomalous_crop, loss=loss, minutes=minutes,
                             device=device, seed=seed, batch=batch, learning_rate=learning_rate, max_steps=max_steps, log=log)
    return network, {**summary, "config": config.as_dict(), "radius_voxels": RADIUS_VOXELS, "visible_change": VISIBLE_CHANGE,
                     "positive_weight": POSITIVE_WEIGHT}


def _anomalous_crop(volume: PreparedVolume, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image with anomalies, body, target) crops of :data:`~worker_screener.training.crops.CROP`."""
    image, body = random_crop(volume, rng)
    drawn, target = draw_anomalies(image, body, rng)
    return drawn, body, target
