"""Phantom generation time (512x512x300 and the test size), the HU comparison with real CT, and
mid-axial PNGs (lung | mediastinal window) in ``bench/out`` to look at beside real slices."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench import phantom_hu
from bench.render import axial_panel, save_png
from shared.anatomy import label_of
from shared.phantoms import Phantom, generate_phantom

OUT = Path(__file__).resolve().parent / "out"


def _time(shape: tuple[int, int, int], seed: int, pathologies: tuple[str, ...] = ()) -> tuple[float, float]:
    """(wall s, CPU s) of one phantom."""
    wall, cpu = time.perf_counter(), time.process_time()
    generate_phantom(seed=seed, shape=shape, pathologies=pathologies)
    return time.perf_counter() - wall, time.process_time() - cpu


def axial_levels(phantom: Phantom) -> dict[str, int]:
    """Slice indices a radiologist would look at: shoulder girdle, carina, mid-heart."""
    def slices(name: str) -> np.ndarray:
        return np.nonzero((phantom.labels == label_of(name)).any(axis=(1, 2)))[0]

    levels = {}
    for level, name, pick in (("clavicles", "clavicula_left", np.median), ("carina", "trachea", np.min),
                              ("heart", "heart", np.median)):
        found = slices(name)
        if len(found):
            levels[level] = int(pick(found)) + (2 if level == "carina" else 0)
    return levels


def render(seeds: tuple[int, ...] = (1, 2), out: Path = OUT) -> list[Path]:
    """Write ``phantom_<seed>_<level>.png`` for default-size phantoms, and one mid-thorax slice of
    each real scan (``real_<n>.png``) to compare with; returns the paths."""
    paths = []
    for seed in seeds:
        ph = generate_phantom(seed=seed)
        for level, k in axial_levels(ph).items():
            paths.append(save_png(axial_panel(ph.volume.hu[k]), out / f"phantom_{seed}_{level}.png"))
    if phantom_hu.SHARED_CT.is_dir():
        for n, scan in enumerate(phantom_hu.real_scans()):
            paths.append(save_png(axial_panel(scan.hu[int(0.6 * scan.hu.shape[0])]), out / f"real_{n}.png"))
    return paths


def main() -> None:
    """Print generation times (target: 512x512x300 in <= 10 s on one core), the HU table, and render."""
    print(f"{'phantom':34s} {'wall s':>7s} {'CPU s':>7s}")
    runs = [((300, 512, 512), 1, ()), ((300, 512, 512), 2, ()), ((300, 512, 512), 3, ("nodule", "effusion", "ggo")),
            ((96, 192, 192), 1, ())]
    for shape, seed, pathologies in runs:
        wall, cpu = _time(shape, seed, pathologies)
        label = f"{shape[2]}x{shape[1]}x{shape[0]} seed {seed}" + (f" +{len(pathologies)} lesions" if pathologies else "")
        print(f"{label:34s} {wall:7.2f} {cpu:7.2f}")
    print()
    phantom_hu.print_table()
    paths = render()
    print(f"\n{len(paths)} PNGs (lung | mediastinal window) in {OUT}")


if __name__ == "__main__":
    main()
