"""The learned screener on a 512x512x300 study: wall time and peak memory (target <= 30 s, <= 4 GB on
2 CPU cores; <= 2 s on a GPU).

The study is a lesion phantom of that size. Scoring runs in a fresh (spawned) process, so the peak
RSS is the worker's own: torch, the model, the volume and its maps. Rows: model load (once per worker),
the whole scoring (preprocess, sliding window, density, calibration, back to the volume grid), best of
``--repeats``; and the HU baseline on the same volume for scale.

Run: ``.venv/bin/python -m bench.bench_screener [--slices 300] [--size 512] [--repeats 2] [--device cpu]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time

TARGET_CPU_SECONDS, TARGET_GPU_SECONDS, TARGET_GB = 30.0, 2.0, 4.0


def _score_in_child(shape: tuple[int, int, int], repeats: int, device: str | None, results: multiprocessing.Queue) -> None:
    import numpy as np
    import torch

    from bench.memory import peak_rss_mb
    from shared.phantoms import generate_phantom
    from worker_gate.backend import BUILTIN
    from worker_gate.lungmask import LABEL_LUNG_LEFT, LABEL_LUNG_RIGHT, segment_baseline
    from worker_screener.baseline import anomaly_scores, load_parameters
    from worker_screener.model.checkpoint import load_screener
    from worker_screener.model.inference import score_volume

    volume = generate_phantom(seed=960_001, shape=shape, pathologies=("mass",)).volume
    organs = BUILTIN.segment(volume).labels
    started = time.perf_counter()
    screener = load_screener(device=device)
    load_s = time.perf_counter() - started
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        scores = score_volume(screener, volume.hu, volume.spacing, organs)
        if screener.device.type == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - started)
    started = time.perf_counter()
    lung = np.isin(segment_baseline(volume).labels, (LABEL_LUNG_LEFT, LABEL_LUNG_RIGHT))
    anomaly_scores(volume.hu, lung, volume.spacing, load_parameters())
    baseline_s = time.perf_counter() - started
    results.put((str(screener.device), torch.get_num_threads(), load_s, min(timings), baseline_s,
                 float((scores >= 0.7).mean()), peak_rss_mb() / 1024))


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv if argv is not None else [])
    shape = (args.slices, args.size, args.size)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_score_in_child, args=(shape, args.repeats, args.device, results))
    child.start()
    device, threads, load_s, score_s, baseline_s, flagged, peak_gb = results.get()
    child.join()
    target = TARGET_GPU_SECONDS if device.startswith("cuda") else TARGET_CPU_SECONDS
    print(f"{'screener, ' + 'x'.join(map(str, shape[::-1])) + f' on {device} ({threads} threads)':<52} {'best of ' + str(args.repeats):>12} {'target':>8}")
    print(f"{'  model load + checksum (once per worker)':<52} {load_s:>10.2f} s")
    print(f"{'  scoring (preprocess, windows, density, grid)':<52} {score_s:>10.2f} s {target:>6.1f} s")
    print(f"{'  HU baseline on the same volume, for scale':<52} {baseline_s:>10.2f} s")
    print(f"{'  peak RSS of the scoring process':<52} {peak_gb:>9.2f} GB {TARGET_GB:>5.1f} GB")
    print(f"  voxels >= 0.7: {flagged:.4%}")


if __name__ == "__main__":
    main(sys.argv[1:])
