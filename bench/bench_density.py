"""Descriptor densities compared: one Gaussian mixture per organ group (shipped) against a conditional
normalizing flow (:mod:`worker_screener.model.flow`), on the shipped descriptor network.

Both are fitted on the same pooled descriptors of the normal training phantoms (:func:`fit.pooled_descriptors`)
and judged as the training run judges densities: voxel AUROC inside the body of the validation lesion phantoms
(:func:`fit.voxel_auroc`), alone and added to the shipped context + synthetic NLL. Also the fit time and the NLL
throughput, which sets the density's share of a study's scoring time. Not part of ``make bench`` (about 17
min on 2 CPU cores).

Run: ``.venv/bin/python -m bench density``
"""

from __future__ import annotations

import time

from worker_screener.model.checkpoint import load_screener
from worker_screener.model.density import ConditionalDensity
from worker_screener.model.flow import ConditionalFlow
from worker_screener.model.inference import voxel_nll
from worker_screener.training.corpus import training_phantoms, validation_phantoms
from worker_screener.training.fit import pooled_descriptors, validation_descriptors, validation_nll, voxel_auroc


def main() -> None:
    """Fit both densities, score the validation lesion phantoms, print the table."""
    screener = load_screener(device="cpu")
    device = screener.device
    descriptors, groups = pooled_descriptors(screener.network, [e for e in training_phantoms() if e.density_mask is not None], device=device)
    densities, fit_seconds = {}, {}
    for name, fit_density in (("per-organ-group gmm-8 (shipped)", lambda: ConditionalDensity.fit(descriptors, groups, components=8)),
                              ("conditional flow", lambda: ConditionalFlow.fit(descriptors, groups, log=lambda _: None))):
        started = time.perf_counter()
        densities[name] = fit_density()
        fit_seconds[name] = time.perf_counter() - started
    cases, maps, rest, seconds, voxels = [], {name: [] for name in densities}, [], dict.fromkeys(densities, 0.0), 0
    for case in validation_phantoms():
        if case.normal:
            continue
        described = validation_descriptors(screener.network, [case], device=device)
        for name, density in densities.items():
            started = time.perf_counter()
            maps[name] += validation_nll(density, described, [case])
            seconds[name] += time.perf_counter() - started
        rest.append(voxel_nll(screener, case.prepared, case.groups))  # the shipped score's terms
        cases.append(case)
        voxels += int(case.prepared.body.sum())
    print(f"{len(descriptors)} normal-tissue descriptors; {len(cases)} validation lesion phantoms, {voxels / 1e6:.1f} M body voxels")
    print(f"{'density':<34} {'fit':>8} {'NLL rate':>14} {'voxel AUROC':>12} {'+ context + synthetic':>22}")
    print(f"{'(none: context + synthetic, shipped)':<34} {'':>8} {'':>14} {'':>12} {voxel_auroc(rest, cases):>22.4f}")
    for name in densities:
        combined = [a + b for a, b in zip(maps[name], rest)]
        print(f"{name:<34} {fit_seconds[name]:>6.0f} s {voxels / seconds[name] / 1e6:>8.2f} M/s {voxel_auroc(maps[name], cases):>12.4f} "
              f"{voxel_auroc(combined, cases):>22.4f}")


if __name__ == "__main__":
    main()
