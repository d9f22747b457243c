"""Training of the condition model (:mod:`worker_screener.model.condition`) on normal tissue, within a time budget.

Each step crops :data:`CROP` voxels from ``batch`` normal volumes (random flips left-right), hides a
checkerboard of blocks (size drawn from the config's training blocks, random offset and colour) and
minimises the mixture NLL of the hidden body voxels' local intensity. Only normal volumes are used:
the model must learn what normal anatomy predicts, never what a lesion looks like.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from worker_screener.model.condition import ConditionConfig, ConditionNet, checkerboard, local_intensity, masked_input, mixture_nll
from worker_screener.model.preprocess import PreparedVolume
from worker_screener.training.crops import CROP, random_crop, train_on_crops


def train_condition(
    volumes: Sequence[PreparedVolume], *, minutes: float, device: torch.device, seed: int = 0, batch: int = 2,
    learning_rate: float = 2e-3, max_steps: int | None = None, config: ConditionConfig = ConditionConfig(),
    log: Callable[[str], None] = print,
) -> tuple[ConditionNet, dict]:
    """Train a condition network from scratch on normal ``volumes``; returns it (eval mode, CPU) and a summary."""
    torch.manual_seed(seed)
    network = ConditionNet(config).to(device)

    def loss(network: ConditionNet, image: torch.Tensor, body: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return mixture_nll(network(masked_input(image, hidden)), local_intensity(image))[hidden & body].mean()

    summary = train_on_crops(network, volumes, name="condition", sample=lambda volume, rng: _masked_crop(volume, rng, config),
                             loss=loss, minutes=minutes, device=device, seed=seed, batch=batch, learning_rate=learning_rate,
                             max_steps=max_steps, log=log)
    return network, {**summary, "config": config.as_dict()}


def _masked_crop(volume: PreparedVolume, rng: np.random.Generator, config: ConditionConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, body, hidden) crops of :data:`CROP`: :func:`random_crop` and a checkerboard of a training block size."""
    image, body = random_crop(volume, rng)
    block = config.training_blocks[int(rng.integers(len(config.training_blocks)))]
    hidden = checkerboard(CROP, block, offset=tuple(int(rng.integers(b)) for b in block), phase=int(rng.integers(2)))
    return image, body, hidden
