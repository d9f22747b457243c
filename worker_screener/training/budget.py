"""The time budget shared by the screener's training loops: steps until ``minutes`` (or ``max_steps``) run out,
with the learning rate on a cosine over the budget, so a short budget still ends annealed."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import torch


class TrainingBudget:
    """Iterate for one optimiser step each; yields the minutes elapsed before the step, after setting its learning rate."""

    def __init__(self, optimiser: torch.optim.Optimizer, *, learning_rate: float, minutes: float, max_steps: int | None = None) -> None:
        self.optimiser, self.learning_rate, self.max_steps = optimiser, learning_rate, max_steps
        self.seconds, self.steps, self._started = minutes * 60.0, 0, time.monotonic()

    def __iter__(self) -> Iterator[float]:
        while (elapsed := time.monotonic() - self._started) < self.seconds and (self.max_steps is None or self.steps < self.max_steps):
            fraction = elapsed / self.seconds if self.max_steps is None else self.steps / self.max_steps
            for group in self.optimiser.param_groups:
                group["lr"] = self.learning_rate * 0.5 * (1 + math.cos(math.pi * min(fraction, 1.0)))
            yield elapsed / 60.0
            self.steps += 1

    @property
    def minutes(self) -> float:
        """Minutes since the budget started."""
        return (time.monotonic() - self._started) / 60.0
