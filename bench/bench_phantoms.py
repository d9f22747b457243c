"""Phantom generation time (512x512x300 and the test size) and the HU comparison with real CT."""

from __future__ import annotations

import time

from bench import phantom_hu
from shared.phantoms import generate_phantom


def _time(shape: tuple[int, int, int], seed: int, pathologies: tuple[str, ...] = ()) -> tuple[float, float]:
    """(wall s, CPU s) of one phantom."""
    wall, cpu = time.perf_counter(), time.process_time()
    generate_phantom(seed=seed, shape=shape, pathologies=pathologies)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    """Print generation times (target: 512x512x300 in <= 10 s on one core) and the HU table."""
    print(f"{'phantom':34s} {'wall s':>7s} {'CPU s':>7s}")
    runs = [((300, 512, 512), 1, ()), ((300, 512, 512), 2, ()), ((300, 512, 512), 3, ("nodule", "effusion", "ggo")),
            ((96, 192, 192), 1, ())]
    for shape, seed, pathologies in runs:
        wall, cpu = _time(shape, seed, pathologies)
        label = f"{shape[2]}x{shape[1]}x{shape[0]} seed {seed}" + (f" +{len(pathologies)} lesions" if pathologies else "")
        print(f"{label:34s} {wall:7.2f} {cpu:7.2f}")
    print()
    phantom_hu.print_table()


if __name__ == "__main__":
    main()
