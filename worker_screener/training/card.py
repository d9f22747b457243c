"""The model card beside the shipped weights: ``weights/MODEL_CARD.md``, rewritten by training and by
``make eval`` (which adds the measured metrics from ``weights/evaluation.json``)."""

from __future__ import annotations

import json
from pathlib import Path

LIMITS = """\
- **v1 does not beat the HU baseline at study level** (see the table): it is shipped opt-in
  (`CTRIAGE_SCREENER=dense-vicreg`) and the baseline stays the default. It ranks focal lung lesions above
  normal lung (validation voxel AUROC ~0.98 for solid nodules, masses, consolidation, atelectasis,
  pneumothorax) but calls too many normal lung–chest-wall borders and abdominal gas unusual, and does not
  see effusions, cardiomegaly, ground glass or emphysema. Those validation figures condition the density on
  the phantoms' *true* organ groups; with the gate's groups, as in production, validation voxel AUROC over
  all lesion voxels is 0.52 instead of 0.61 (lesion voxels the gate leaves out of the lung are judged
  against other tissue). Refitting on the gate's groups, a body-surface group (outer 8 mm), per-group
  calibration and the voxel's HU appended to the descriptor each stayed at 0.52 on validation, so the
  descriptor is the bottleneck: its 24 dimensions have an effective rank of 7.4 (six carry 94 % of the
  variance), and even a *supervised* probe on it tells lesion from normal voxels of unseen validation
  phantoms worse (AUROC 0.55–0.65, gradient boosting) than the voxel's HU alone (0.74–0.76). Adding
  VICReg's variance and covariance terms on the descriptor itself (25 CPU minutes from scratch) removed the
  collapse (effective rank 23.7) but not the probe's verdict (0.51–0.60), so it was not adopted. Next steps:
  train far longer and on a GPU (v1: 40 CPU minutes), sample matched voxels so that rare tissue is not
  drowned by common tissue, then a condition model on masked context instead of organ groups and a
  heavier-tailed density (normalizing flow).
- Trained on synthetic phantoms and a handful of real scans (all listed above); no real normal whole-thorax
  CT was available, so "normal" is mostly the phantom generator's idea of normal. Expect more false
  positives on real scans with anatomy or devices the phantoms lack (pacemakers, lines, implants, scoliosis,
  post-operative change), and on unusual reconstructions (very sharp kernels, low dose).
- Model grid 2.0 x 2.0 x 2.5 mm: lesions under ~5 mm are below its resolution.
- It scores *unusualness*, not disease: it names no pathology type and is not a diagnosis.
- Research use; not a medical device. Outputs carry "AI result — not for diagnosis"."""


def write_model_card(folder: Path, training: dict) -> Path:
    """Write the card from the training metadata and, when present, ``evaluation.json``."""
    evaluation_path = folder / "evaluation.json"
    evaluation = json.loads(evaluation_path.read_text()) if evaluation_path.is_file() else None
    calibration = training["calibration"]
    steps = training["training"]
    lines = [
        f"# Model card: {training['model']} v{training['version']}",
        "",
        "Chest CT screener after Goncharov et al., *Screener* (arXiv 2502.08321): a 3D UNet gives every voxel a "
        "descriptor, trained from scratch with dense VICReg; a density model fitted on normal tissue only scores "
        "each voxel by its negative log-likelihood, calibrated to [0, 1].",
        "",
        "## Training data",
        f"- Synthetic phantoms (`shared.phantoms`), seeds {training['seeds']['train'][0]}–{training['seeds']['train'][1]} "
        "(even: normal; odd: one or two pathologies). Density on the normal ones only.",
        f"- Real scans (descriptor only; the organ-conditioned density needs organ ground truth): "
        f"{', '.join(training['real_scans']) or 'none'}.",
        f"- Validation (density choice, calibration, study threshold): seeds {training['seeds']['validation'][0]}–"
        f"{training['seeds']['validation'][1]}. Evaluation seeds {training['seeds']['evaluation (never used here)'][0]}–"
        f"{training['seeds']['evaluation (never used here)'][1]} are never used in training.",
        "",
        "## Procedure and hyperparameters",
        f"- Preprocessing: body crop at -500 HU, resample to {training['model_spacing_mm']} mm (di, dj, dk), "
        "clip [-1000, 300] HU, scale to [0, 1].",
        f"- Descriptor: MONAI UNet, 24-d output, channels (16, 32, 64, 128), batch norm; views {training['view_size']} "
        f"voxels at 0.8–1.25x spacing; {steps['steps']} steps, {steps['pairs_per_step']} view pairs/step, "
        f"{steps['matched_voxels_per_pair']} matched voxels/pair, AdamW lr {steps['learning_rate']} cosine over the time "
        f"budget; {steps['minutes']} min on {training['device']} ({training['machine']}), final loss {steps['final_loss']}.",
        f"- Density: {training['density']}, one Gaussian mixture per organ group (lung, mediastinum, bone, upper "
        "abdomen, other; the gate's organ label map gives the group at inference), on "
        f"{training['density_descriptors']} normal-phantom descriptors pooled with stride (2, 3, 3); validation voxel "
        f"AUROC per candidate: {training['density_validation_auroc']}. One density for the whole body measured far worse "
        "on validation (voxel AUROC 0.54–0.58 against 0.62–0.63; inside the lungs 0.48–0.51 against 0.72–0.80).",
        f"- Calibration: score = 1 - 0.3^((NLL - {calibration['nll_median']:.3f}) / ({calibration['nll_reference']:.3f} - "
        f"{calibration['nll_median']:.3f})), i.e. voxel threshold 0.7 at the {calibration['reference_quantile']} quantile of "
        "validation-normal body NLL.",
        f"- Study threshold: {training['study_threshold_ml']} ml of score-weighted finding volume "
        f"(validation study AUROC {training['validation']['study_auroc']}, sensitivity at the threshold "
        f"{training['validation']['sensitivity_at_threshold']}).",
        f"- Reproduce: `{training['command']}` (`make train`); total {training['total_minutes']} min.",
        "",
        "## Measured quality (`make eval`)",
    ]
    lines += evaluation["markdown"].splitlines() if evaluation else ["Not evaluated yet: run `make eval`."]
    lines += ["", "## Known limits", LIMITS, ""]
    path = folder / "MODEL_CARD.md"
    path.write_text("\n".join(lines))
    return path
