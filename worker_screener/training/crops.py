"""The training loop shared by the networks that learn from random crops of normal volumes (the condition
model, the synthetic-anomaly segmenter): crops of :data:`CROP`, AdamW on a :class:`TrainingBudget`, a
summary of the run."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from worker_screener.model.preprocess import PreparedVolume
from worker_screener.training.budget import TrainingBudget

CROP: tuple[int, int, int] = (48, 96, 128)
"""Training crop (Z, Y, X) on the model grid: 120 x 192 x 256 mm of context."""


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


def train_on_crops(
    network: nn.Module, volumes: Sequence[PreparedVolume], *, name: str,
    sample: Callable[[PreparedVolume, np.random.Generator], tuple[np.ndarray, ...]],
    loss: Callable[..., torch.Tensor], minutes: float, device: torch.device, seed: int, batch: int,
    learning_rate: float, max_steps: int | None, log: Callable[[str], None],
) -> dict:
    """Train ``network`` (already on ``device``) on batches of ``batch`` crops, each ``sample(volume, rng)`` of a
    random volume, minimising ``loss(network, *stacked crops)`` (tensors ``(B, 1, Z, Y, X)``); leaves it in eval
    mode on the CPU and returns the run's summary."""
    rng = np.random.default_rng(seed)
    optimiser = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=1e-4)
    budget, history = TrainingBudget(optimiser, learning_rate=learning_rate, minutes=minutes, max_steps=max_steps), []
    network.train()
    for elapsed in budget:
        crops = [sample(volumes[int(rng.integers(len(volumes)))], rng) for _ in range(batch)]
        value = loss(network, *(torch.from_numpy(np.stack(part))[:, None].to(device) for part in zip(*crops)))
        optimiser.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 5.0)
        optimiser.step()
        history.append(value.item())
        if len(history) % 100 == 0:
            log(f"{name} step {len(history)} {elapsed:.1f} min loss {np.mean(history[-100:]):.4f}")
    network.eval().cpu()
    return {"steps": budget.steps, "minutes": round(budget.minutes, 1), "batch": batch, "crop": CROP,
            "learning_rate": learning_rate, "seed": seed, "volumes": len(volumes),
            "final_loss": round(float(np.mean(history[-100:])), 4) if history else None}
