"""Training of the condition model (:mod:`worker_screener.model.condition`) on normal tissue, within a time budget.

Each step crops :data:`CROP` voxels from ``batch`` normal volumes (random flips left-right), hides a
checkerboard of blocks (size drawn from the config's training blocks, random offset and colour) and
minimises the mixture NLL of the hidden body voxels' local intensity. Only normal volumes are used:
the model must learn what normal anatomy predicts, never what a lesion looks like.

:func:`fine_tune_condition` goes on training a network with tissue texture drawn into a share of the crops
(:mod:`.texture`), so that it expects real tissue's variation rather than the phantoms' uniform values, and
optionally with a share of the crops warped (:mod:`.warp`), so that it expects anatomy shaped and placed less
regularly than the phantoms'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from worker_screener.model.condition import ConditionConfig, ConditionNet, checkerboard, local_intensity, masked_input, mixture_nll
from worker_screener.model.preprocess import PreparedVolume
from worker_screener.training.crops import CROP, random_crop, train_on_crops
from worker_screener.training.texture import textured
from worker_screener.training.warp import warped


@dataclass(frozen=True)
class CropAugmentation:
    """What a fine-tune draws into its crops: tissue texture of ``strength`` in a ``texture`` share of them
    (:mod:`.texture`), and a ``warp`` share of them warped with ``warp_strength`` (:mod:`.warp`). The default is none."""

    texture: float = 0.0
    strength: float = 1.0
    warp: float = 0.0
    warp_strength: float = 1.0

    def apply(self, image: np.ndarray, body: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The crop ``(image, body)`` with this augmentation drawn into it."""
        # no draw when an augmentation is off, so a run without it keeps its random stream
        if self.warp and rng.random() < self.warp:
            image, body = warped(image, body, rng, strength=self.warp_strength)
        if self.texture and rng.random() < self.texture:
            image = textured(image, body, rng, strength=self.strength)
        return image, body

    def summary(self) -> dict:
        """The settings in use, for the training summary."""
        return ({"texture": self.texture, "strength": self.strength} if self.texture else {}) | (
            {"warp": self.warp, "warp_strength": self.warp_strength} if self.warp else {})


def train_condition(
    volumes: Sequence[PreparedVolume], *, minutes: float, device: torch.device, seed: int = 0, batch: int = 2,
    learning_rate: float = 2e-3, max_steps: int | None = None, config: ConditionConfig = ConditionConfig(),
    log: Callable[[str], None] = print,
) -> tuple[ConditionNet, dict]:
    """Train a condition network from scratch on normal ``volumes``; returns it (eval mode, CPU) and a summary."""
    torch.manual_seed(seed)
    network = ConditionNet(config).to(device)
    summary = _train(network, volumes, augmentation=CropAugmentation(), minutes=minutes, device=device, seed=seed, batch=batch,
                     learning_rate=learning_rate, max_steps=max_steps, log=log)
    return network, summary


def fine_tune_condition(
    network: ConditionNet, volumes: Sequence[PreparedVolume], *, augmentation: CropAugmentation, minutes: float, device: torch.device,
    seed: int = 0, batch: int = 2, learning_rate: float = 5e-4, max_steps: int | None = None, log: Callable[[str], None] = print,
) -> tuple[ConditionNet, dict]:
    """Go on training ``network`` on normal ``volumes`` with ``augmentation`` drawn into its crops."""
    summary = _train(network.to(device), volumes, augmentation=augmentation, minutes=minutes, device=device, seed=seed, batch=batch,
                     learning_rate=learning_rate, max_steps=max_steps, log=log)
    return network, summary


def _train(network: ConditionNet, volumes: Sequence[PreparedVolume], *, augmentation: CropAugmentation, minutes: float, device: torch.device,
           seed: int, batch: int, learning_rate: float, max_steps: int | None, log: Callable[[str], None]) -> dict:
    config = network.config

    def sample(volume: PreparedVolume, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image, body, hidden = _masked_crop(volume, rng, config)
        return *augmentation.apply(image, body, rng), hidden

    def loss(network: ConditionNet, image: torch.Tensor, body: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return mixture_nll(network(masked_input(image, hidden)), local_intensity(image))[hidden & body].mean()

    summary = train_on_crops(network, volumes, name="condition", sample=sample, loss=loss, minutes=minutes, device=device,
                             seed=seed, batch=batch, learning_rate=learning_rate, max_steps=max_steps, log=log)
    return {**summary, "config": config.as_dict(), **augmentation.summary()}


def _masked_crop(volume: PreparedVolume, rng: np.random.Generator, config: ConditionConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, body, hidden) crops of :data:`CROP`: :func:`random_crop` and a checkerboard of a training block size."""
    image, body = random_crop(volume, rng)
    block = config.training_blocks[int(rng.integers(len(config.training_blocks)))]
    hidden = checkerboard(CROP, block, offset=tuple(int(rng.integers(b)) for b in block), phase=int(rng.integers(2)))
    return image, body, hidden
