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
from worker_screener.training.budget import TrainingBudget

CROP: tuple[int, int, int] = (48, 96, 128)
"""Training crop (Z, Y, X) on the model grid: 120 x 192 x 256 mm of context."""


def train_condition(
    volumes: Sequence[PreparedVolume], *, minutes: float, device: torch.device, seed: int = 0, batch: int = 2,
    learning_rate: float = 2e-3, max_steps: int | None = None, config: ConditionConfig = ConditionConfig(),
    log: Callable[[str], None] = print,
) -> tuple[ConditionNet, dict]:
    """Train a condition network from scratch on normal ``volumes``; returns it (eval mode, CPU) and a summary."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    network = ConditionNet(config).to(device)
    optimiser = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=1e-4)
    budget, history = TrainingBudget(optimiser, learning_rate=learning_rate, minutes=minutes, max_steps=max_steps), []
    network.train()
    for elapsed in budget:
        crops = [_random_crop(volumes[int(rng.integers(len(volumes)))], rng, config) for _ in range(batch)]
        image, body, hidden = (torch.from_numpy(np.stack(part))[:, None].to(device) for part in zip(*crops))
        nll = mixture_nll(network(masked_input(image, hidden)), local_intensity(image))
        loss = nll[hidden & body].mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 5.0)
        optimiser.step()
        history.append(loss.item())
        if len(history) % 100 == 0:
            log(f"condition step {len(history)} {elapsed:.1f} min loss {np.mean(history[-100:]):.3f}")
    network.eval().cpu()
    summary = {"steps": budget.steps, "minutes": round(budget.minutes, 1), "batch": batch, "crop": CROP,
               "learning_rate": learning_rate, "seed": seed, "config": config.as_dict(), "volumes": len(volumes),
               "final_loss": round(float(np.mean(history[-100:])), 4) if history else None}
    return network, summary


def _random_crop(volume: PreparedVolume, rng: np.random.Generator, config: ConditionConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, body, hidden) crops of :data:`CROP`: :func:`random_crop` and a checkerboard of a training block size."""
    image, body = random_crop(volume, rng)
    block = config.training_blocks[int(rng.integers(len(config.training_blocks)))]
    hidden = checkerboard(CROP, block, offset=tuple(int(rng.integers(b)) for b in block), phase=int(rng.integers(2)))
    return image, body, hidden


def random_crop(volume: PreparedVolume, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(image, body) crops of :data:`CROP` at a random place, zero-padded where the volume is smaller, flipped
    left-right half the time."""
    starts = [int(rng.integers(0, max(1, n - c + 1))) for n, c in zip(volume.image.shape, CROP)]
    source = tuple(slice(s, s + c) for s, c in zip(starts, CROP))
    image, body = np.zeros(CROP, np.float32), np.zeros(CROP, bool)
    part = volume.image[source]
    inside = tuple(slice(0, n) for n in part.shape)
    image[inside], body[inside] = part, volume.body[source]
    if rng.random() < 0.5:
        image, body = image[..., ::-1].copy(), body[..., ::-1].copy()
    return image, body
