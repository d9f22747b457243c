"""PNG overlays of the built-in organ segmenter on every real scan, for a person to look at.

``python -m bench.organ_overlays [word ...]`` (scans whose name holds a word; all by default)
writes ``bench/out/organs/<case>.png`` (git-ignored):
top row the CT (window -1000..400 HU), bottom row the same with the organ labels; columns are three
axial slices (upper, mid and lower lung), a coronal slice through the heart and sagittal slices
through the right lung and the midline (through a labelled lesion's centre, outlined in magenta,
when the scan has one). Images are in radiological display: the patient's left on
the image's right, anterior up (axial) and head up (coronal, sagittal), resampled to 1 mm per pixel.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from shared.anatomy import BY_LABEL, LUNG_LOBES, label_of
from shared.dicom.volume import Volume
from worker_gate.organs import segment_organs
from worker_gate.organs.grid import lps_axes

OUT = Path(__file__).resolve().parent / "out" / "organs"
WINDOW = (-1000.0, 400.0)

# One colour per label id; lobes in shades so that the lobe split stays visible.
COLOURS: dict[str, tuple[int, int, int]] = {
    "lung_upper_lobe_left": (80, 160, 255), "lung_lower_lobe_left": (30, 90, 200),
    "lung_upper_lobe_right": (120, 230, 120), "lung_middle_lobe_right": (230, 230, 70),
    "lung_lower_lobe_right": (40, 160, 60), "trachea": (0, 255, 255), "bronchi": (0, 180, 180),
    "heart": (255, 40, 40), "aorta": (255, 140, 0), "pulmonary_artery": (180, 0, 255),
    "esophagus": (255, 120, 200), "mediastinum": (200, 120, 255), "sternum": (255, 255, 255),
    "ribs": (255, 250, 180), "costal_cartilages": (220, 200, 150), "vertebrae": (255, 200, 120),
    "spinal_cord": (255, 0, 255), "skeletal_muscle": (160, 60, 60), "subcutaneous_fat": (120, 110, 60),
    "liver": (150, 75, 0), "stomach": (255, 180, 120), "spleen": (120, 0, 60), "body": (90, 90, 90),
}
PALETTE = np.zeros((256, 3), dtype=np.uint8)
for _name, _rgb in COLOURS.items():
    PALETTE[label_of(_name)] = _rgb


def canonical(volume: Volume, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``hu`` and ``labels`` on LPS-ordered ``[z, y, x]`` axes (z up) and their ``(dz, dy, dx)`` mm."""
    axes, flips = lps_axes(volume)
    cut = tuple(slice(None, None, -1) if f else slice(None) for f in flips)
    spacing = np.array([volume.spacing[2 - a] for a in axes])
    return np.transpose(volume.hu, axes)[cut], np.transpose(labels, axes)[cut], spacing


LESION_RGB = (255, 0, 255)


def _panel(hu: np.ndarray, labels: np.ndarray, row_mm: float, col_mm: float,
           lesion: np.ndarray | None = None) -> tuple[Image.Image, Image.Image]:
    """A 2-D slice as a greyscale image and as the same image with coloured labels, 1 mm per pixel.

    A lesion, when given, is outlined in magenta on the labelled image.
    """
    grey = np.clip((hu - WINDOW[0]) / (WINDOW[1] - WINDOW[0]) * 255.0, 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    tint = PALETTE[labels].astype(np.float32)
    labelled = (labels > 0)[..., None] & (labels != label_of("body"))[..., None]
    mixed = np.where(labelled, 0.55 * rgb + 0.45 * tint, rgb).astype(np.uint8)
    if lesion is not None and lesion.any():
        mixed[lesion & ~ndimage.binary_erosion(lesion)] = LESION_RGB
    size = (max(1, round(hu.shape[1] * col_mm)), max(1, round(hu.shape[0] * row_mm)))
    return (Image.fromarray(np.ascontiguousarray(rgb.astype(np.uint8))).resize(size, Image.BILINEAR),
            Image.fromarray(np.ascontiguousarray(mixed)).resize(size, Image.NEAREST))


def _views(hu: np.ndarray, labels: np.ndarray, spacing: np.ndarray, lesion: np.ndarray | None) -> list[tuple]:
    """The slices shown: ``(title, hu 2-D, labels 2-D, row mm, column mm, lesion 2-D)``, display-oriented.

    With a lesion, the middle axial slice and the coronal and sagittal ones pass through its centre.
    """
    dz, dy, dx = spacing
    lung = np.isin(labels, [label_of(n) for n in LUNG_LOBES])
    zs = np.flatnonzero(lung.any(axis=(1, 2)))
    if zs.size:
        z_levels = [int(zs[int(len(zs) * q)]) for q in (0.8, 0.5, 0.2)]
    else:
        z_levels = [int(hu.shape[0] * q) for q in (0.8, 0.5, 0.2)]
    heart = labels == label_of("heart")
    anchor = heart if heart.any() else (lung if lung.any() else np.ones_like(lung))
    _, cy, cx = (int(round(c)) for c in np.argwhere(anchor).mean(axis=0))
    right = np.isin(labels, [label_of(n) for n in LUNG_LOBES[2:]])
    rx = int(round(np.argwhere(right).mean(axis=0)[2])) if right.any() else hu.shape[2] // 4
    if lesion is not None and lesion.any():
        z_levels[1], cy, rx = (int(round(c)) for c in np.argwhere(lesion).mean(axis=0))
    else:
        lesion = np.zeros(hu.shape, dtype=bool)
    views = [(f"axial z{z}", hu[z], labels[z], dy, dx, lesion[z]) for z in z_levels]
    views.append((f"coronal y{cy}", hu[::-1, cy, :], labels[::-1, cy, :], dz, dx, lesion[::-1, cy, :]))
    views.append((f"sagittal x{rx}", hu[::-1, :, rx], labels[::-1, :, rx], dz, dy, lesion[::-1, :, rx]))
    views.append((f"sagittal x{cx}", hu[::-1, :, cx], labels[::-1, :, cx], dz, dy, lesion[::-1, :, cx]))
    return views


def render(
    volume: Volume, labels: np.ndarray, path: Path, *, title: str = "", lesion: np.ndarray | None = None,
) -> Path:
    """Write the overlay PNG of ``labels`` (and the outline of ``lesion``) on ``volume`` to ``path``."""
    hu, lab, spacing = canonical(volume, labels)
    if lesion is not None:
        lesion = canonical(volume, lesion)[1].astype(bool)
    panels = [(name, *_panel(h, l, r, c, m)) for name, h, l, r, c, m in _views(hu, lab, spacing, lesion)]
    width = sum(p[1].width for p in panels) + 4 * len(panels)
    height = max(p[1].height for p in panels) * 2 + 24
    sheet = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 2), title, fill=(255, 255, 0))
    x = 0
    for name, raw, mixed in panels:
        sheet.paste(raw, (x, 22))
        sheet.paste(mixed, (x, 22 + raw.height + 2))
        draw.text((x + 2, 24), name, fill=(255, 255, 0))
        x += raw.width + 4
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def legend(found: dict[str, float]) -> str:
    """One line naming the organs found and their volumes."""
    return " ".join(f"{BY_LABEL[label_of(n)].name}={v:.0f}" for n, v in found.items())


def main(argv: list[str]) -> int:
    """Render every real case (or those named) into ``bench/out/organs``."""
    from bench.bench_organs import real_cases  # the case list is shared with the Dice benchmark

    for case in real_cases():
        if argv and not any(word in case.name for word in argv):
            continue
        volume = case.load()
        started = time.perf_counter()
        seg = segment_organs(volume)
        seconds = time.perf_counter() - started
        path = render(volume, seg.labels, OUT / f"{case.name}.png", lesion=case.lesion(volume),
                      title=f"{case.name} {seconds:.1f}s {legend(seg.found)}")
        print(f"{case.name:45s} {seconds:5.1f} s  {path}  notes: {'; '.join(seg.notes) or '-'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
