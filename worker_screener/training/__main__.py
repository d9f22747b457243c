"""Train the screener from scratch and write the shipped weights, manifest and model card.

    python -m worker_screener.training [--minutes 25] [--condition-minutes 25] [--texture-minutes 20] [--synthetic-minutes 30] [--out worker_screener/weights] [--device auto]

Steps: prepare the corpus (:mod:`.corpus`), train the descriptor with dense VICReg for ``--minutes``
(:mod:`.descriptor`), train the condition model on normal phantoms for ``--condition-minutes``
(:mod:`.condition`) and go on for ``--texture-minutes`` with tissue texture drawn into ``--texture`` of the
crops (:mod:`.texture`), train the synthetic-anomaly segmenter for ``--synthetic-minutes`` (:mod:`.synthetic`; 0 leaves
it out), fit and choose the density and the NLL terms and calibrate on validation (:mod:`.fit`), save. The default
budgets are those of v5's networks but for the descriptor's (40 min then; the score does not use it); the shipped v7 fine-tuned v5's condition model twice more,
in further runs on the first one's networks (v6, then v7 with half the crops warped)::

    python -m worker_screener.training --descriptor .data/train/descriptor.pt --condition .data/train/condition_textured.pt --synthetic .data/train/synthetic.pt --texture-minutes 20 --texture 1 --texture-strength 1.5 --seed 7 --version 6 --workdir .data/train6
    python -m worker_screener.training --descriptor .data/train/descriptor.pt --condition .data/train6/condition_textured.pt --synthetic .data/train/synthetic.pt --texture-minutes 20 --texture 1 --texture-strength 1.5 --warp 0.5 --seed 9 --version 7

On this project's 2-core CI-class CPU the default budget takes about 1 h 55 min (100 min of training, the rest
preparation and fitting; not yet run end to end at these budgets); on a GPU
the same code runs with ``--device cuda``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from worker_screener.model.checkpoint import MODEL_NAME, WEIGHTS_DIR, next_version, save_screener
from worker_screener.model.condition import ConditionConfig, ConditionNet
from worker_screener.model.network import DescriptorConfig, DescriptorNet
from worker_screener.model.preprocess import MODEL_SPACING
from worker_screener.model.synthetic import SyntheticConfig, SyntheticNet
from worker_screener.model.views import VIEW_SIZE
from worker_screener.training.card import write_model_card
from worker_screener.training.corpus import (
    EVALUATION_SEEDS, TRAIN_SEEDS, VALIDATION_SEEDS, real_cases, real_example, training_phantoms, validation_phantoms,
)
from worker_screener.training.condition import CropAugmentation, fine_tune_condition, train_condition
from worker_screener.training.descriptor import train_descriptor
from worker_screener.training.fit import calibrate, choose_density, choose_terms, pooled_descriptors
from worker_screener.training.synthetic import train_synthetic


def main() -> None:
    """Parse arguments, train, save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=25.0, help="descriptor training budget (v1–v6: 40)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke runs)")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--version", default=None, help="version label of the written weights (default: the one after --out's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--descriptor", type=Path, default=None,
                        help="skip descriptor training: load this network state (written by an earlier run)")
    parser.add_argument("--condition-minutes", type=float, default=25.0, help="condition model training budget")
    parser.add_argument("--condition", type=Path, default=None,
                        help="skip condition training: load this network state (written by an earlier run)")
    parser.add_argument("--texture-minutes", type=float, default=20.0,
                        help="condition model fine-tuning budget with tissue texture (0: none)")
    parser.add_argument("--texture", type=float, default=0.75, help="share of the fine-tuning crops given tissue texture")
    parser.add_argument("--texture-strength", type=float, default=1.0, help="factor on the texture fields' largest SD")
    parser.add_argument("--warp", type=float, default=0.0, help="share of the fine-tuning crops warped (anatomy shape and place)")
    parser.add_argument("--warp-strength", type=float, default=1.0, help="factor on the warp's largest displacement SD")
    parser.add_argument("--synthetic-minutes", type=float, default=30.0,
                        help="synthetic-anomaly segmenter training budget (0: no segmenter, unless --synthetic loads one)")
    parser.add_argument("--synthetic", type=Path, default=None,
                        help="skip synthetic-anomaly training: load this network state (written by an earlier run)")
    parser.add_argument("--workdir", type=Path, default=Path(".data/train"), help="intermediate files")
    args = parser.parse_args()
    args.version = args.version or next_version(args.out)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device))
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{(time.monotonic() - started) / 60:5.1f} min] {message}", flush=True)

    assert not set(EVALUATION_SEEDS) & (set(TRAIN_SEEDS) | set(VALIDATION_SEEDS)), "evaluation seeds leak into training"
    examples = list(training_phantoms())
    log(f"{len(examples)} training phantoms prepared")
    cases = real_cases()
    examples += [real_example(case) for case in cases]
    log(f"{len(cases)} real scans prepared: {', '.join(c.id for c in cases) or 'none (real data absent)'}")
    validation = list(validation_phantoms())
    log(f"{len(validation)} validation phantoms prepared")

    args.workdir.mkdir(parents=True, exist_ok=True)
    network, training = _load_or_train(
        args.descriptor, build=lambda config: DescriptorNet(DescriptorConfig(**config)), save_to=args.workdir / "descriptor.pt", log=log,
        train=lambda: train_descriptor([e.prepared for e in examples], minutes=args.minutes, device=device, seed=args.seed,
                                       max_steps=args.max_steps, log=log))
    network.to(device)
    normals = [e.prepared for e in examples if e.density_mask is not None]
    condition, condition_training = _load_or_train(
        args.condition, build=lambda config: ConditionNet(ConditionConfig.from_dict(config)), save_to=args.workdir / "condition.pt", log=log,
        train=lambda: train_condition(normals, minutes=args.condition_minutes, device=device, seed=args.seed,
                                      max_steps=args.max_steps, log=log))
    # A loaded condition network may already be fine-tuned; keep its history so the card lists every fine-tune.
    fine_tunes = torch.load(args.condition, map_location="cpu", weights_only=False).get("fine_tunes", []) if args.condition else []
    if args.texture_minutes > 0:
        condition, texture_training = fine_tune_condition(
            condition, normals, augmentation=CropAugmentation(texture=args.texture, strength=args.texture_strength, warp=args.warp, warp_strength=args.warp_strength),
            minutes=args.texture_minutes, device=device, seed=args.seed, max_steps=args.max_steps, log=log)
        fine_tunes = [*fine_tunes, texture_training]
        torch.save({"config": condition.config.as_dict(), "network": condition.state_dict(), "training": condition_training,
                    "fine_tunes": fine_tunes}, args.workdir / "condition_textured.pt")
    condition.to(device)
    synthetic, synthetic_training = None, None
    if args.synthetic is not None or args.synthetic_minutes > 0:
        synthetic, synthetic_training = _load_or_train(
            args.synthetic, build=lambda config: SyntheticNet(SyntheticConfig.from_dict(config)), save_to=args.workdir / "synthetic.pt", log=log,
            train=lambda: train_synthetic(normals, minutes=args.synthetic_minutes, device=device, seed=args.seed,
                                          max_steps=args.max_steps, log=log))
        synthetic.to(device)
    descriptors, groups = pooled_descriptors(network, examples, device=device)
    log(f"{len(descriptors)} normal-tissue descriptors pooled")
    density_name, density, nll_maps, density_table = choose_density(network, descriptors, groups, validation, device=device, log=log)
    terms, nll_maps, terms_table = choose_terms(nll_maps, condition, validation, synthetic=synthetic, device=device, log=log)
    calibration, study_threshold, validation_figures = calibrate(nll_maps, validation, log=log)
    log(f"kept {density_name}, voxel NLL {' + '.join(terms)}; study threshold {study_threshold:.3f} ml")

    metadata = {
        "model": MODEL_NAME, "version": args.version, "density": density_name, "density_validation_auroc": density_table,
        "terms": list(terms), "terms_validation_auroc": terms_table, "condition_training": condition_training,
        "condition_texture_training": fine_tunes,
        "synthetic_training": synthetic_training,
        "scoring_offsets": condition.config.scoring_offsets,
        "calibration": calibration.as_dict(), "study_threshold_ml": round(study_threshold, 4), "validation": validation_figures,
        "training": training, "model_spacing_mm": MODEL_SPACING, "view_size": VIEW_SIZE, "device": str(device),
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads", "torch": torch.__version__,
        "seeds": {"train": [TRAIN_SEEDS[0], TRAIN_SEEDS[-1]], "validation": [VALIDATION_SEEDS[0], VALIDATION_SEEDS[-1]],
                  "evaluation (never used here)": [EVALUATION_SEEDS[0], EVALUATION_SEEDS[-1]]},
        "real_scans": [c.id for c in cases], "density_descriptors": int(len(descriptors)),
        "total_minutes": round((time.monotonic() - started) / 60, 1),
        **{f"{part}_from": f"loaded from {path}, trained by an earlier run" for part, path in (("descriptor", args.descriptor), ("condition", args.condition), ("synthetic", args.synthetic)) if path},
        "command": "python -m worker_screener.training " + (f"--descriptor {args.descriptor}" if args.descriptor else f"--minutes {args.minutes:g}")
                   + (f" --condition {args.condition}" if args.condition else f" --condition-minutes {args.condition_minutes:g}")
                   + f" --texture-minutes {args.texture_minutes:g}" + (f" --texture {args.texture:g} --texture-strength {args.texture_strength:g}" if args.texture_minutes else "")
                   + (f" --warp {args.warp:g} --warp-strength {args.warp_strength:g}" if args.texture_minutes and args.warp else "")
                   + (f" --synthetic {args.synthetic}" if args.synthetic else f" --synthetic-minutes {args.synthetic_minutes:g}" if synthetic else "")
                   + f" --seed {args.seed} --version {args.version}",
    }
    path = save_screener(folder=args.out, network=network.cpu(), density=density.to("cpu"), condition=condition.cpu(),
                         synthetic=None if synthetic is None else synthetic.cpu(), terms=terms, calibration=calibration,
                         study_threshold=study_threshold, version=args.version, metadata=metadata)
    (args.out / "training.json").write_text(json.dumps(metadata, indent=2, default=str) + "\n")
    write_model_card(args.out, metadata)
    log(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB), manifest and model card")


def _load_or_train(saved: Path | None, *, build: Callable[[dict], nn.Module], train: Callable[[], tuple[nn.Module, dict]],
                   save_to: Path, log: Callable[[str], None]) -> tuple[nn.Module, dict]:
    """The network and training summary in ``saved`` (written by an earlier run), or new ones, trained and saved to ``save_to``."""
    if saved is not None:
        state = torch.load(saved, map_location="cpu", weights_only=False)
        network = build(state["config"])
        network.load_state_dict(state["network"])
        log(f"{type(network).__name__} loaded from {saved}")
        return network.eval(), state["training"]
    network, training = train()
    torch.save({"config": network.config.as_dict(), "network": network.state_dict(), "training": training}, save_to)
    return network, training


if __name__ == "__main__":
    main()
