"""Text burned into images (key images, PDF pages): fonts, captions and orientation letters."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from worker_localizer.outputs.render import DisplayPlane, direction_letters

_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
NOTE_RGB = (255, 210, 0)
TEXT_RGB = (255, 255, 255)


@cache
def font(size: int, *, bold: bool = False) -> Font:
    """DejaVu Sans where installed (wide Unicode coverage), else Pillow's bundled font."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in _FONT_DIRS:
        if (folder / name).exists():
            return ImageFont.truetype(str(folder / name), size)
    return ImageFont.load_default(size)


def caption_image(image: np.ndarray, *, plane: DisplayPlane, top: list[str], bottom: list[str]) -> np.ndarray:
    """``image`` (H, W, 3) with ``top`` lines in the note colour at the top left, ``bottom`` lines at
    the bottom left, each on a dark band, and the patient direction letters at the edges."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    size = max(11, canvas.width // 36)
    margin = max(3, size // 3)
    text_font, note_font = font(size), font(size, bold=True)
    y = margin
    for line in top:
        y = _banded_text(draw, (margin, y), line, note_font, NOTE_RGB) + margin // 2
    heights = [_text_height(draw, line, text_font) for line in bottom]
    y = canvas.height - margin - sum(h + margin // 2 for h in heights)
    for line in bottom:
        y = _banded_text(draw, (margin, y), line, text_font, TEXT_RGB) + margin // 2
    _orientation_letters(draw, canvas.size, plane, font(size + 2, bold=True), margin)
    return np.asarray(canvas)


def _banded_text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, text_font: Font, rgb: tuple) -> int:
    """Draw ``text`` on a black band; returns the band's bottom y."""
    left, top, right, bottom = draw.textbbox(xy, text, font=text_font)
    pad = 2
    draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=(0, 0, 0))
    draw.text(xy, text, font=text_font, fill=rgb)
    return bottom + pad


def _text_height(draw: ImageDraw.ImageDraw, text: str, text_font: Font) -> int:
    return draw.textbbox((0, 0), text, font=text_font)[3] + 4


def _orientation_letters(
    draw: ImageDraw.ImageDraw, size: tuple[int, int], plane: DisplayPlane, letter_font: Font, margin: int,
) -> None:
    """Patient direction at the left and right edges (e.g. R | L), as viewers show it."""
    width, height = size
    left, right = direction_letters(-plane.right), direction_letters(plane.right)
    for text, anchor, x in ((left, "lm", margin), (right, "rm", width - margin)):
        draw.text((x, height // 2), text, font=letter_font, fill=TEXT_RGB, anchor=anchor,
                  stroke_width=2, stroke_fill=(0, 0, 0))
