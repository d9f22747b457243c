"""PNG rendering of CT slices in the radiologist's windows, with optional label/lesion overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

LUNG_WINDOW = (1500.0, -600.0)
"""(width, level) of the lung window."""
MEDIASTINAL_WINDOW = (400.0, 40.0)
"""(width, level) of the mediastinal (soft-tissue) window."""


def window(hu: np.ndarray, *, width: float, level: float) -> np.ndarray:
    """``uint8`` grey levels of ``hu`` in the window ``(width, level)``."""
    lo = level - width / 2
    return (np.clip((np.asarray(hu, dtype=np.float32) - lo) / width, 0.0, 1.0) * 255).astype(np.uint8)


def _palette(n: int = 256) -> np.ndarray:
    """A fixed colour per label id (0 = transparent)."""
    rng = np.random.default_rng(7)
    colours = rng.integers(60, 255, size=(n, 3)).astype(np.uint8)
    colours[0] = 0
    return colours


def overlay(grey: np.ndarray, labels: np.ndarray, *, alpha: float = 0.4, outline_only: bool = False) -> np.ndarray:
    """RGB image of ``grey`` with ``labels`` (int, 0 = none) blended in colour."""
    rgb = np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)
    sel = labels > 0
    if outline_only:
        edge = np.zeros_like(sel)
        edge[1:, :] |= labels[1:, :] != labels[:-1, :]
        edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
        sel &= edge
        alpha = 1.0
    colours = _palette()[np.clip(labels, 0, 255)].astype(np.float32)
    rgb[sel] = (1 - alpha) * rgb[sel] + alpha * colours[sel]
    return rgb.astype(np.uint8)


def save_png(image: np.ndarray, path: Path) -> Path:
    """Write a grey or RGB ``uint8`` image; creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def axial_panel(hu_slice: np.ndarray, *, labels: np.ndarray | None = None,
                lesions: np.ndarray | None = None) -> np.ndarray:
    """Lung window | mediastinal window [| labels] [| lesion outlines], side by side (RGB)."""
    lung = window(hu_slice, width=LUNG_WINDOW[0], level=LUNG_WINDOW[1])
    soft = window(hu_slice, width=MEDIASTINAL_WINDOW[0], level=MEDIASTINAL_WINDOW[1])
    tiles = [np.repeat(lung[..., None], 3, -1), np.repeat(soft[..., None], 3, -1)]
    if labels is not None:
        tiles.append(overlay(soft, labels, alpha=0.45))
    if lesions is not None:
        tiles.append(overlay(lung, lesions.astype(np.int64) * 37 % 255 + (lesions > 0), outline_only=True))
    return np.concatenate(tiles, axis=1)


def coronal_panel(volume_hu: np.ndarray, spacing: tuple[float, float, float], row: int) -> np.ndarray:
    """Coronal reformat at ``row`` (lung | mediastinal window), stretched to square pixels, top = head."""
    img = volume_hu[::-1, row, :]
    stretch = max(1, int(round(spacing[2] / spacing[0])))
    img = np.repeat(img, stretch, axis=0)
    lung = window(img, width=LUNG_WINDOW[0], level=LUNG_WINDOW[1])
    soft = window(img, width=MEDIASTINAL_WINDOW[0], level=MEDIASTINAL_WINDOW[1])
    return np.concatenate([lung, soft], axis=1)
