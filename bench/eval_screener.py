"""``make eval``: the shipped screener against the HU baseline on held-out phantoms and the real scans.

Synthetic: :data:`worker_screener.training.corpus.EVALUATION_SEEDS` (never used in training, validation
or calibration): the first half normal, the rest one pathology type each in turn (every type 3-4 times).
Both methods score the same phantom (the screener given the built-in gate's organ label map, as in
production); the localizer's findings (threshold, components >= 30 mm^3) and
study score (score-weighted volume, ml) against each method's own calibrated threshold decide the
verdict. Metrics: study AUROC, sensitivity at 90 % specificity, voxel AUROC inside the body and inside
the lungs, detection rate per pathology type (a finding overlaps the lesion mask); the study AUROC's 95 %
bootstrap interval and, with ``--compare`` an earlier run's ``evaluation.json``, the paired difference.
Real: each tumour case's top finding (highest score sum) on its labelled mask/box; real normal lung
(RICORD negative slabs, scored directly; the CT angiography's lungs) not flagged.
Writes ``bench/out/eval/`` (ROC plots, overlays) and ``worker_screener/weights/evaluation.json``, and
rewrites the model card with the table.

Run: ``.venv/bin/python -m bench.eval_screener [--studies 100] [--weights DIR] [--compare EARLIER/evaluation.json]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from bench.statistics import auroc_difference, auroc_interval

from shared.anatomy import label_names
from shared.realdata.catalogue import available_cases
from worker_gate.backend import BUILTIN
from worker_gate.lungmask import segment_baseline
from worker_localizer.findings import locate_findings, study_score
from worker_screener.baseline import anomaly_scores, load_parameters, lung_mask
from worker_screener.model.checkpoint import WEIGHTS_DIR, load_screener
from worker_screener.model.inference import score_volume
from worker_screener.training.card import write_model_card
from worker_screener.training.corpus import EVALUATION_SEEDS, split_phantom

OUT = Path(__file__).resolve().parent / "out" / "eval"
TUMOUR_CASES = ("lungdx_A0001_kernelL", "nsclc_pat1", "nsclc_pat2", "nsclc_pat3", "nsclc_pat4", "pyradiomics_lung1", "pyradiomics_lung2")
NORMAL_LUNG_CASES = ("ricord_covid_negative_1", "ricord_covid_negative_2", "ricord_covid_negative_3", "ricord_covid_negative_4",
                     "ricord_covid_negative_5", "totalseg_cta_thorax")
METHODS = ("screener", "baseline")


class Methods:
    """Both scorers with their calibrated thresholds: ``scores(volume) -> (map, voxel_thr, study_thr)``."""

    def __init__(self, weights: Path) -> None:
        self.screener, self.baseline = load_screener(weights), load_parameters()
        self._organs: tuple[object, np.ndarray] | None = None

    def organs(self, volume) -> np.ndarray:
        """The gate's organ labels of ``volume``, segmented once for both methods."""
        if self._organs is None or self._organs[0] is not volume:
            self._organs = (volume, gate_organs(volume))
        return self._organs[1]

    def scores(self, method: str, volume) -> tuple[np.ndarray, float, float]:
        if method == "screener":
            return score_volume(self.screener, volume.hu, volume.spacing, self.organs(volume)), self.screener.calibration.voxel_threshold, self.screener.study_threshold
        lung = lung_mask(self.organs(volume))  # the lungs the screen stage is given
        if not lung.any():  # a slab too short for the gate: its threshold lung mask
            lung = lung_mask(segment_baseline(volume).labels)
        return anomaly_scores(volume.hu, lung, volume.spacing, self.baseline), self.baseline.voxel_threshold, self.baseline.study_threshold


def gate_organs(volume) -> np.ndarray:
    """The organ label map the gate would hand the screener (built-in backend); all background if it fails."""
    try:
        return BUILTIN.segment(volume).labels
    except Exception:  # a crop the segmenter cannot read: the screener then uses its pooled density
        return np.zeros(volume.hu.shape, dtype=np.uint8)


def findings_of(scores: np.ndarray, labels: np.ndarray, volume, voxel_threshold: float):
    """The localizer's findings and their label mask."""
    return locate_findings(scores=scores, labels=labels, names=label_names(), affine=volume.affine,
                           sop_instance_uids=[], voxel_threshold=voxel_threshold)


def synthetic(methods: Methods, studies: int, log) -> dict:
    """Per-study scores and voxel samples on held-out phantoms, for both methods."""
    rng = np.random.default_rng(0)
    seeds = EVALUATION_SEEDS[:studies]
    half = len(seeds) // 2
    rows, voxels = [], {m: {"body": ([], []), "lung": ([], [])} for m in METHODS}
    for index, seed in enumerate(seeds):
        phantom = split_phantom(seed, index=index - half, normal=index < half)
        volume, lesion = phantom.volume, phantom.lesion_mask > 0
        body = volume.hu > -500  # coarse body for voxel sampling; lesions are inside it or in the lungs
        lung = lung_mask(phantom.labels)
        row = {"seed": seed, "pathologies": phantom.params.pathologies}
        for method in METHODS:
            scores, voxel_thr, study_thr = methods.scores(method, volume)
            findings, mask = findings_of(scores, phantom.labels, volume, voxel_thr)
            score = study_score(findings, affine=volume.affine)
            row[method] = {"study_score": score, "flagged": score > study_thr,
                           "detected": bool(lesion.any() and (mask[lesion] > 0).any())}
            for region, inside in (("body", body | lesion), ("lung", lung | (lesion & lung))):
                normal_values = scores[inside & ~lesion]
                voxels[method][region][0].append(normal_values[rng.choice(normal_values.size, min(normal_values.size, 20_000), replace=False)])
                voxels[method][region][1].append(scores[inside & lesion])
            if index in (0, half) or index % 17 == 0:
                save_overlay(OUT / f"{method}_{seed}.png", volume.hu, scores, lesion, voxel_thr)
        rows.append(row)
        log(f"{seed} {','.join(row['pathologies']) or 'normal'}: " + "  ".join(
            f"{m} {row[m]['study_score']:.2f} ml{' FLAG' if row[m]['flagged'] else ''}" for m in METHODS))
    return {"rows": rows, "voxels": voxels}


def real(methods: Methods, log) -> list[dict]:
    """Tumour cases: top finding on the lesion; normal-lung cases: not flagged."""
    cases = {c.spec.name: c for c in available_cases() if c.source == "shared"}
    results = []
    for name in TUMOUR_CASES + NORMAL_LUNG_CASES:
        if name not in cases:
            continue
        case = cases[name]
        volume = case.load()
        labels = np.zeros(volume.hu.shape, dtype=np.uint8)
        truth = case.lesion_mask(volume)
        if truth is None and case.lesion_boxes(volume):
            truth = np.zeros(volume.hu.shape, dtype=bool)
            for box in case.lesion_boxes(volume):
                truth[box.k, box.j_min:box.j_max + 1, box.i_min:box.i_max + 1] = True
        for method in METHODS:
            scores, voxel_thr, study_thr = methods.scores(method, volume)
            if name == "totalseg_cta_thorax":  # its aorta is abnormal: judge the lungs only
                lung = lung_mask(segment_baseline(volume).labels)
                scores = np.where(lung, scores, 0.0).astype(np.float32)
            findings, mask = findings_of(scores, labels, volume, voxel_thr)
            score = study_score(findings, affine=volume.affine)
            row = {"case": name, "method": method, "study_score": round(score, 3), "flagged": score > study_thr,
                   "findings": len(findings)}
            if name in TUMOUR_CASES:
                row["top_on_lesion"] = bool(findings and truth is not None and (truth & (mask == 1)).any())
            else:
                row["lung_voxels_over_threshold"] = round(float((scores >= voxel_thr).mean()), 6)
            results.append(row)
            save_overlay(OUT / f"{method}_{name}.png", volume.hu, scores, truth, voxel_thr)
            log(f"{name} {method}: {row}")
    return results


def summarise(syn: dict, real_rows: list[dict]) -> dict:
    """The metric table for both methods."""
    rows = syn["rows"]
    truth = np.array([bool(r["pathologies"]) for r in rows])
    table = {}
    for method in METHODS:
        scores = np.array([r[method]["study_score"] for r in rows])
        fpr, tpr, _ = roc_curve(truth, scores)
        sens90 = float(tpr[fpr <= 0.10].max()) if (fpr <= 0.10).any() else 0.0
        interval = auroc_interval(truth, scores)
        entry = {"study_auroc": interval.estimate, "study_auroc_95_ci": f"{interval.low:.3f}–{interval.high:.3f}",
                 "sensitivity_at_90_specificity": sens90,
                 "specificity_at_threshold": float(np.mean([not r[method]["flagged"] for r in rows if not r["pathologies"]])),
                 "sensitivity_at_threshold": float(np.mean([r[method]["flagged"] for r in rows if r["pathologies"]]))}
        for region in ("body", "lung"):
            normal, lesion = (np.concatenate(part) for part in syn["voxels"][method][region])
            entry[f"voxel_auroc_{region}"] = float(roc_auc_score(np.r_[np.zeros(normal.size), np.ones(lesion.size)], np.r_[normal, lesion]))
        per_type = {}
        for r in rows:
            for kind in set(r["pathologies"]):
                per_type.setdefault(kind, []).append(r[method]["detected"])
        entry["detection_rate"] = {kind: round(float(np.mean(v)), 3) for kind, v in sorted(per_type.items())}
        mine = [x for x in real_rows if x["method"] == method]
        entry["real_tumour_top_on_lesion"] = f"{sum(x['top_on_lesion'] for x in mine if 'top_on_lesion' in x)}/{sum('top_on_lesion' in x for x in mine)}"
        entry["real_tumour_flagged"] = f"{sum(x['flagged'] for x in mine if 'top_on_lesion' in x)}/{sum('top_on_lesion' in x for x in mine)}"
        entry["real_normal_not_flagged"] = f"{sum(not x['flagged'] for x in mine if 'top_on_lesion' not in x)}/{sum('top_on_lesion' not in x for x in mine)}"
        table[method] = entry
    return table


def compare(per_study: list[dict], earlier: dict) -> dict:
    """The screener's study AUROC minus that of the earlier evaluation, paired over the studies both scored."""
    before = {row["seed"]: row["screener"] for row in earlier["per_study"]}
    missing = [row["seed"] for row in per_study if row["seed"] not in before]
    if missing:
        raise SystemExit(f"the earlier evaluation did not score {len(missing)} of these studies (e.g. seed {missing[0]})")
    truth = np.array([bool(row["pathologies"]) for row in per_study])
    difference = auroc_difference(truth, np.array([row["screener"] for row in per_study]),
                                  np.array([before[row["seed"]] for row in per_study]))
    return {"version": earlier.get("screener_version", "?"), "study_auroc_difference": difference.as_dict()}


def markdown(table: dict, studies: int) -> str:
    """The table as Markdown (README and model card)."""
    keys = ("study_auroc", "study_auroc_95_ci", "sensitivity_at_90_specificity", "sensitivity_at_threshold", "specificity_at_threshold",
            "voxel_auroc_body", "voxel_auroc_lung", "real_tumour_top_on_lesion", "real_tumour_flagged", "real_normal_not_flagged")
    lines = [f"Held-out synthetic set: {studies} phantoms (half normal); real scans as named. `make eval`.", "",
             "| metric | screener | HU baseline |", "|---|---|---|"]
    for key in keys:
        values = [table[m][key] for m in METHODS]
        lines.append(f"| {key.replace('_', ' ')} | " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in values) + " |")
    for kind in table["screener"]["detection_rate"]:
        lines.append(f"| detected: {kind} | " + " | ".join(f"{table[m]['detection_rate'].get(kind, 0):.2f}" for m in METHODS) + " |")
    return "\n".join(lines)


def save_overlay(path: Path, hu: np.ndarray, scores: np.ndarray, truth: np.ndarray | None, threshold: float) -> None:
    """The axial slice with the highest score sum: lung window, score heat map, truth contour."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = int(np.argmax(scores.reshape(scores.shape[0], -1).sum(axis=1)))
    if truth is not None and truth.any() and not (scores[k] >= threshold).any():
        k = int(np.argmax(truth.reshape(truth.shape[0], -1).sum(axis=1)))
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.imshow(np.clip(hu[k], -1000, 200), cmap="gray")
    axis.imshow(np.ma.masked_less(scores[k], 0.3), cmap="inferno", vmin=0, vmax=1, alpha=0.6)
    if truth is not None and truth[k].any():
        axis.contour(truth[k], levels=[0.5], colors="cyan", linewidths=0.8)
    axis.set_title(f"{path.stem} slice {k}", fontsize=8)
    axis.axis("off")
    figure.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(figure)


def save_roc(rows: list[dict]) -> None:
    """Study-level ROC curves of both methods."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = [bool(r["pathologies"]) for r in rows]
    figure, axis = plt.subplots(figsize=(4, 4))
    for method in METHODS:
        fpr, tpr, _ = roc_curve(truth, [r[method]["study_score"] for r in rows])
        axis.plot(fpr, tpr, label=method)
    axis.plot([0, 1], [0, 1], ":", color="grey")
    axis.set_xlabel("1 - specificity")
    axis.set_ylabel("sensitivity")
    axis.legend()
    figure.savefig(OUT / "roc_study.png", dpi=100, bbox_inches="tight")
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    """Evaluate, print the table, write the files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=len(EVALUATION_SEEDS))
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--compare", type=Path, default=None,
                        help="an earlier run's evaluation.json: report the screener's study AUROC difference on the same studies")
    args = parser.parse_args(argv)
    earlier = json.loads(args.compare.read_text()) if args.compare else None
    if earlier is not None and "per_study" not in earlier:
        parser.error(f"{args.compare} has no per-study scores (written before they were kept); evaluate that model again")
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{(time.monotonic() - started) / 60:5.1f} min] {message}", flush=True)

    methods = Methods(args.weights)
    syn = synthetic(methods, args.studies, log)
    real_rows = real(methods, log)
    table = summarise(syn, real_rows)
    save_roc(syn["rows"])
    per_study = [{"seed": r["seed"], "pathologies": r["pathologies"], **{m: round(r[m]["study_score"], 4) for m in METHODS}}
                 for r in syn["rows"]]
    version = methods.screener.version
    text = markdown(table, args.studies)
    comparison = None
    if earlier is not None:
        comparison = compare(per_study, earlier)
        difference = comparison["study_auroc_difference"]
        text += (f"\n\nScreener v{version} against v{comparison['version']} on the same {len(per_study)} studies (paired "
                 f"stratified bootstrap): study AUROC difference {difference['estimate']:+.3f} (95 % CI {difference['low']:+.3f} "
                 f"to {difference['high']:+.3f}).")
    print(text)
    (args.weights / "evaluation.json").write_text(json.dumps(
        {"screener_version": version, "table": table, "real": real_rows, "markdown": text, "studies": args.studies,
         "per_study": per_study, "compared_with": comparison,
         "command": "python -m bench.eval_screener" + (f" --compare {args.compare}" if args.compare else "")},
        indent=2, default=str) + "\n")
    training = json.loads((args.weights / "training.json").read_text())
    write_model_card(args.weights, training)


if __name__ == "__main__":
    main()
