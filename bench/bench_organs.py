"""Built-in organ segmenter: Dice on phantoms, agreement with TotalSegmentator on real CT, speed.

``python -m bench organs`` prints four tables:

1. every real scan of ``../shared/data/ct`` (single slices excepted): time, lung and heart volumes,
   notes (what was not found);
2. lesion coverage: the share of each labelled lesion inside the lung mask, and inside lung or
   mediastinum (the localizer names the organ from these masks); for Lung-PET-CT-Dx A0001, whose
   lesion is given as boxes, the soft tissue in the boxes inside the rib cage stands for it;
3. Dice against TotalSegmentator's masks of the CT angiography (heart, aorta: model output, not
   ground truth);
4. per-organ Dice against the phantoms' ground truth (several seeds), then wall time, CPU time and
   peak memory (VmHWM) of one 512x512x300 phantom, measured in a child process so that the
   phantom's own generation does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.anatomy import LEFT_LUNG, LUNG_LOBES, RIGHT_LUNG, label_of
from shared.dicom.errors import LoadError, Reason
from shared.dicom.volume import Volume
from worker_gate.organs import segment_organs
from worker_gate.organs.thorax import slice_hulls

PHANTOM_SEEDS = (1, 2, 3)
TIMING_SHAPE = (300, 512, 512)

# Dice rows: name -> label names making up the organ (lungs are whole lungs and lobes).
DICE_ORGANS: dict[str, tuple[str, ...]] = {
    "left lung": LEFT_LUNG, "right lung": RIGHT_LUNG, **{name: (name,) for name in LUNG_LOBES},
    "trachea": ("trachea",), "heart": ("heart",), "aorta": ("aorta",), "liver": ("liver",),
    "vertebrae": ("vertebrae",), "ribs": ("ribs",), "sternum": ("sternum",), "spinal_cord": ("spinal_cord",),
    "mediastinum": ("mediastinum",),
}
# Phantom truth: lung vessels lie inside the lungs, which the built-in segmenter includes.
TRUTH_EXTRA = {"left lung": ("lung_vessels",), "right lung": ("lung_vessels",)}


@dataclass
class RealScan:
    """A real scan of the shared folder, how to load it and its lesion mask (if any)."""

    name: str
    role: str
    load: Callable[[], Volume]
    lesion: Callable[[Volume], np.ndarray | None]
    boxes: bool = False
    """The lesion is a proxy drawn from radiologists' boxes (soft tissue inside them)."""


def load_any_modality(folder: Path) -> Volume:
    """A DICOM series as a volume whatever its Modality (``read_study`` refuses MR: here it must not)."""
    from shared.dicom.frames import frames_of
    from shared.dicom.geometry import plan_slices
    from shared.dicom.instances import read_instance
    from shared.dicom.pixels import read_stored_values, stored_to_hu

    frames = [f for path in sorted(folder.glob("*.dcm")) for f in frames_of(read_instance(path.name, path))]
    plan = plan_slices(frames)
    return Volume(hu=stored_to_hu(read_stored_values(plan.frames), plan.frames), affine=plan.affine)


def _box_lesion(case, volume: Volume) -> np.ndarray | None:  # noqa: ANN001 - a catalogue RealCase
    """The radiologists' boxes reduced to the soft tissue inside them (> -300 HU): a lesion proxy."""
    boxes = case.lesion_boxes(volume)
    if not boxes:
        return None
    mask = np.zeros(volume.shape, dtype=bool)
    for b in boxes:
        region = (b.k, slice(b.j_min, b.j_max + 1), slice(b.i_min, b.i_max + 1))
        mask[region] |= volume.hu[region] > -300
    return mask


def real_cases() -> list[RealScan]:
    """The real scans of the shared folder present on this machine (single slices left out)."""
    from shared.realdata.catalogue import available_cases

    scans = []
    for case in available_cases():
        if case.source != "shared" or case.role == "single_slice":
            continue

        def load(case=case) -> Volume:  # noqa: ANN001
            try:
                return case.load()
            except LoadError as error:
                if error.reason != Reason.NOT_CT:
                    raise
                return load_any_modality(case.path)

        def lesion(volume: Volume, case=case) -> np.ndarray | None:  # noqa: ANN001
            if case.lesion is None:
                return None
            return _box_lesion(case, volume) if case.lesion.kind == "boxes" else case.lesion_mask(volume)

        boxes = case.lesion is not None and case.lesion.kind == "boxes"
        scans.append(RealScan(name=case.spec.name, role=case.role, load=load, lesion=lesion, boxes=boxes))
    return scans


def cta_reference(volume: Volume) -> dict[str, np.ndarray]:
    """TotalSegmentator's heart and aorta masks of the CT angiography, on its grid (empty if absent)."""
    from shared.realdata.catalogue import shared_ct_root
    from shared.realdata.loaders import mask_on_grid, read_array

    root = shared_ct_root()
    files = {
        "heart": root / "totalsegmentator_thorax_cta_crops" / "pulmonary_case_masks" / "heart.nii.gz",
        "aorta": root / "chest_cta_normal_lungs_totalseg_aorta" / "model_masks" / "aorta.nii.gz",
    }
    masks = {}
    for name, path in files.items():
        if path.exists():
            mask, affine = read_array(path)
            masks[name] = mask_on_grid(mask=mask, affine=affine, target=volume)
    return masks


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two boolean masks (1.0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def organ_mask(labels: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Voxels carrying any of the label ``names``."""
    return np.isin(labels, [label_of(n) for n in names])


def _real_tables() -> None:
    print(f"{'scan':34s} {'role':13s} {'s':>5s} {'L lung':>7s} {'R lung':>7s} {'heart':>6s} {'trach':>6s}  notes")
    coverage = []
    for scan in real_cases():
        volume = scan.load()
        started = time.perf_counter()
        seg = segment_organs(volume)
        seconds = time.perf_counter() - started
        ml = lambda names: sum(seg.found.get(n, 0.0) for n in names)  # noqa: E731
        print(f"{scan.name:34s} {scan.role:13s} {seconds:5.1f} {ml(LEFT_LUNG):7.0f} {ml(RIGHT_LUNG):7.0f} "
              f"{ml(('heart',)):6.0f} {ml(('trachea', 'bronchi')):6.0f}  {'; '.join(seg.notes) or '-'}", flush=True)
        lesion = scan.lesion(volume)
        if lesion is not None and scan.boxes:
            # a box also holds chest wall and vessels: keep what lies inside the rib cage (the
            # lungs' per-slice hull), off the aorta and heart
            lesion &= slice_hulls(organ_mask(seg.labels, LUNG_LOBES)) & ~organ_mask(seg.labels, ("aorta", "heart"))
        if lesion is not None and lesion.any():
            lung = organ_mask(seg.labels, LUNG_LOBES)
            around = lung | organ_mask(seg.labels, ("mediastinum",))
            coverage.append((scan.name, lesion.sum() * np.prod(volume.spacing) / 1000.0,
                             (lesion & lung).sum() / lesion.sum(), (lesion & around).sum() / lesion.sum()))
        if scan.name == "totalseg_cta_thorax":
            voxel_ml = float(np.prod(volume.spacing)) / 1000.0
            for organ, truth in cta_reference(volume).items():
                predicted = seg.labels == label_of(organ)
                print(f"    {organ} vs TotalSegmentator: Dice {dice(predicted, truth):.3f} "
                      f"({predicted.sum() * voxel_ml:.0f} ml vs {truth.sum() * voxel_ml:.0f} ml)", flush=True)
    print(f"\n{'lesion':34s} {'ml':>7s} {'in lung':>8s} {'lung+med':>9s}")
    for name, ml_, in_lung, in_around in coverage:
        print(f"{name:34s} {ml_:7.1f} {in_lung:8.3f} {in_around:9.3f}")


def _phantom_dice(seeds: tuple[int, ...]) -> None:
    from shared.phantoms.generate import generate_phantom

    rows: dict[str, list[float]] = {name: [] for name in DICE_ORGANS}
    for seed in seeds:
        phantom = generate_phantom(seed=seed)
        seg = segment_organs(phantom.volume)
        for name, names in DICE_ORGANS.items():
            truth = organ_mask(phantom.labels, names + TRUTH_EXTRA.get(name, ()))
            rows[name].append(dice(organ_mask(seg.labels, names), truth))
        print(f"  phantom seed {seed}: shape {phantom.volume.shape}, spacing "
              f"{tuple(round(s, 2) for s in phantom.volume.spacing)}", flush=True)
    header = "".join(f"{'seed ' + str(s):>9s}" for s in seeds)
    print(f"\n{'organ (Dice vs phantom truth)':30s}{header}{'mean':>8s}")
    for name, values in rows.items():
        print(f"{name:30s}" + "".join(f"{v:9.3f}" for v in values) + f"{np.mean(values):8.3f}")


CHILD = """
import json, sys, time
from pathlib import Path
import numpy as np
from shared.dicom.volume import Volume
from worker_gate.organs import segment_organs
from worker_gate.organs.thorax import slice_hulls

from bench.memory import peak_rss_mb as high_water_mb

volume = Volume(hu=np.load(sys.argv[1]), affine=np.load(sys.argv[2]))
before = high_water_mb()
wall, cpu = time.perf_counter(), time.process_time()
segment_organs(volume)
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "peak_mb": high_water_mb(), "input_mb": before}))
"""


def _timing(shape: tuple[int, int, int]) -> None:
    from shared.phantoms.generate import generate_phantom

    phantom = generate_phantom(seed=1, shape=shape)
    spacing = tuple(round(s, 2) for s in phantom.volume.spacing)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "hu.npy", phantom.volume.hu)
        np.save(Path(tmp) / "affine.npy", phantom.volume.affine)
        del phantom
        out = subprocess.run([sys.executable, "-c", CHILD, str(Path(tmp) / "hu.npy"), str(Path(tmp) / "affine.npy")],
                             capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\n{'x'.join(map(str, shape[::-1]))} phantom ({spacing} mm): wall {figures['wall']:.1f} s, "
          f"CPU {figures['cpu']:.1f} s, peak memory {figures['peak_mb']:.0f} MB "
          f"({figures['input_mb']:.0f} MB before segmenting: interpreter, libraries and the volume)")


def main() -> None:
    """Print the tables (real scans need ../shared/data/ct; phantoms are generated)."""
    from shared.realdata.catalogue import shared_ct_root

    if shared_ct_root().is_dir():
        _real_tables()
    else:
        print(f"real CT folder {shared_ct_root()} absent: real-scan tables skipped")
    _phantom_dice(PHANTOM_SEEDS)
    _timing(TIMING_SHAPE)


if __name__ == "__main__":
    main()
