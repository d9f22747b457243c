"""Dense VICReg training of the descriptor network on prepared volumes, within a time budget.

Each step takes ``pairs`` volumes, renders two augmented overlapping views of each at different
spacings (:mod:`worker_screener.model.views`), runs the four-or-more views through the network as one
batch and applies VICReg to the projected descriptors of matched voxels. The learning rate follows a
cosine over the *time* budget, so a short budget still ends annealed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from worker_screener.model.network import DescriptorConfig, DescriptorNet, Projector
from worker_screener.model.preprocess import PreparedVolume
from worker_screener.model.vicreg import vicreg_loss
from worker_screener.model.views import augment, gather_first, gather_second, matched_voxels, render_view, sample_views
from worker_screener.training.budget import TrainingBudget


def train_descriptor(
    volumes: Sequence[PreparedVolume], *, minutes: float, device: torch.device, seed: int = 0, pairs: int = 2,
    matches: int = 2048, learning_rate: float = 2e-3, max_steps: int | None = None,
    config: DescriptorConfig = DescriptorConfig(), log: Callable[[str], None] = print,
) -> tuple[DescriptorNet, dict]:
    """Train a descriptor network from scratch; returns it (eval mode, CPU) and a training summary."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images = [torch.from_numpy(v.image)[None, None] for v in volumes]
    bodies = [torch.from_numpy(v.body) for v in volumes]
    points = [np.argwhere(v.body[::2, ::2, ::2]) * 2 for v in volumes]
    network, projector = DescriptorNet(config).to(device), Projector(config).to(device)
    parameters = list(network.parameters()) + list(projector.parameters())
    optimiser = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=1e-4)
    budget, history = TrainingBudget(optimiser, learning_rate=learning_rate, minutes=minutes, max_steps=max_steps), []
    network.train()
    for elapsed in budget:
        chosen = rng.choice(len(volumes), size=pairs, replace=len(volumes) < pairs)
        views, layout = [], []
        for index in chosen:
            first, second = sample_views(points[index], rng)
            views += [augment(render_view(images[index], first), rng), augment(render_view(images[index], second), rng)]
            layout.append((index, first, second))
        descriptors = network(torch.cat(views).to(device))
        left, right = [], []
        for number, (index, first, second) in enumerate(layout):
            mine, theirs = matched_voxels(first, second, bodies[index], rng, matches)
            left.append(gather_first(descriptors[2 * number:2 * number + 1], mine.to(device)))
            right.append(gather_second(descriptors[2 * number + 1:2 * number + 2], theirs.to(device)))
        loss, terms = vicreg_loss(projector(torch.cat(left)), projector(torch.cat(right)))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 5.0)
        optimiser.step()
        history.append(loss.item())
        if len(history) % 25 == 0:
            log(f"step {len(history)} {elapsed:.1f} min loss {np.mean(history[-25:]):.3f} "
                f"(inv {terms['inv']:.3f} var {terms['var']:.3f} cov {terms['cov']:.3f})")
    network.eval().cpu()
    summary = {"steps": budget.steps, "minutes": round(budget.minutes, 1), "pairs_per_step": pairs,
               "matched_voxels_per_pair": matches, "learning_rate": learning_rate, "seed": seed,
               "final_loss": round(float(np.mean(history[-50:])), 4) if history else None}
    return network, summary
