"""The downloadable report PDF: a summary page (patient and study, verdict, score against threshold,
models, gate checks, findings table), then one page per finding with its key image and measurements.
Every page carries "AI result — not for diagnosis". Pages are drawn with Pillow at 150 dpi (A4) and
saved as a multi-page PDF, so no PDF library is needed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from shared.anatomy import BY_NAME
from shared.dicom.volume import Volume
from shared.report import Finding, OutputReason, ReportV1, Verdict
from worker_localizer.outputs.annotate import Font, font
from worker_localizer.outputs.key_images import KeyImage, findings_mask, key_image
from worker_localizer.outputs.provenance import NOT_FOR_DIAGNOSIS

DPI = 150
PAGE_SIZE = (1240, 1754)  # A4 portrait at 150 dpi
MARGIN = 90
INK = (20, 20, 20)
MUTED = (110, 110, 110)
VERDICT_RGB = {Verdict.normal: (30, 130, 60), Verdict.pathology: (190, 30, 30)}
VERDICT_TEXT = {Verdict.normal: "NORMAL", Verdict.pathology: "NEEDS REVIEW (pathology)"}
OUTPUT_TITLES = {"seg": "DICOM SEG", "sr": "DICOM SR", "key_images": "key images"}
JPEG_QUALITY = 92
SUMMARY_FINDINGS = 15
"""Findings listed on the summary page (sorted by score sum, the rest only on their own pages)."""


def report_pdf(
    *, volume: Volume, report: ReportV1, anomaly_score: np.ndarray, anomaly_mask: np.ndarray | None = None,
    organ_labels: np.ndarray | None = None,
) -> bytes:
    """PDF bytes: 1 summary page + 1 page per finding. ``anomaly_mask`` (n = finding n) outlines the
    findings exactly; without it their regions are rebuilt from boxes and the voxel threshold.
    ``organ_labels`` adds the outline of each finding's organ to its key image."""
    images = report_pages(volume=volume, report=report, anomaly_score=anomaly_score, anomaly_mask=anomaly_mask,
                          organ_labels=organ_labels)
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:], resolution=DPI,
                   quality=JPEG_QUALITY, title="ctriage report", creator="ctriage")
    return buffer.getvalue()


def report_pages(
    *, volume: Volume, report: ReportV1, anomaly_score: np.ndarray, anomaly_mask: np.ndarray | None = None,
    organ_labels: np.ndarray | None = None,
) -> list[Image.Image]:
    """The PDF's pages as A4 RGB images at :data:`DPI` (see :func:`report_pdf`)."""
    if report.findings and anomaly_mask is None:
        anomaly_mask = findings_mask(report=report, anomaly_score=anomaly_score)
    pages = [_summary_page(volume, report)]
    for number, finding in enumerate(report.findings, start=1):
        key = key_image(volume=volume, finding=finding, number=number, anomaly_score=anomaly_score,
                        anomaly_mask=anomaly_mask, organ_labels=organ_labels)
        pages.append(_finding_page(report, number, finding, key))
    for index, page in enumerate(pages, start=1):
        page.footer(f"{NOT_FOR_DIAGNOSIS}.  Page {index} of {len(pages)}")
    return [page.image for page in pages]


class _Page:
    """A white A4 page drawn top to bottom."""

    def __init__(self) -> None:
        self.image = Image.new("RGB", PAGE_SIZE, "white")
        self.draw = ImageDraw.Draw(self.image)
        self.y = MARGIN

    def text(self, text: str, *, size: int = 22, bold: bool = False, rgb: tuple = INK, gap: int = 8) -> None:
        self.draw.text((MARGIN, self.y), text, font=font(size, bold=bold), fill=rgb)
        self.y += _line_height(font(size, bold=bold)) + gap

    def banner(self, text: str) -> None:
        band_font = font(24, bold=True)
        height = _line_height(band_font) + 20
        self.draw.rectangle((MARGIN, self.y, PAGE_SIZE[0] - MARGIN, self.y + height), fill=(255, 210, 0))
        self.draw.text((MARGIN + 14, self.y + 10), text, font=band_font, fill=INK)
        self.y += height + 20

    def section(self, title: str) -> None:
        self.y += 14
        self.text(title, size=26, bold=True, gap=4)
        self.draw.line((MARGIN, self.y, PAGE_SIZE[0] - MARGIN, self.y), fill=MUTED, width=2)
        self.y += 10

    def table(self, rows: Sequence[Sequence[str]], widths: Sequence[int], *, size: int = 20) -> None:
        """Rows of cells, the first row bold (the header); text beyond a column's width is cut."""
        for index, row in enumerate(rows):
            row_font = font(size, bold=index == 0)
            x = MARGIN
            for cell, width in zip(row, widths):
                self.draw.text((x, self.y), _fit(cell, row_font, width - 12), font=row_font, fill=INK)
                x += width
            self.y += _line_height(row_font) + 6

    def picture(self, pixels: np.ndarray, *, width: int) -> None:
        picture = Image.fromarray(pixels)
        height = round(picture.height * width / picture.width)
        picture = picture.resize((width, height), Image.Resampling.LANCZOS)
        self.image.paste(picture, ((PAGE_SIZE[0] - width) // 2, self.y))
        self.y += height + 20

    def footer(self, text: str) -> None:
        footer_font = font(18)
        y = PAGE_SIZE[1] - MARGIN // 2 - _line_height(footer_font)
        self.draw.text((MARGIN, y), text, font=footer_font, fill=MUTED)


def _summary_page(volume: Volume, report: ReportV1) -> _Page:
    page = _Page()
    page.text("ctriage \u2014 chest CT triage report", size=40, bold=True, gap=18)
    page.banner(f"{NOT_FOR_DIAGNOSIS}: findings must be confirmed by a radiologist")
    meta = volume.meta
    page.table([
        ["Patient", f"{_person_name(meta.patient_name)}  (ID {meta.patient_id or '-'})"],
        ["Born / sex", f"{_date(meta.patient_birth_date)} / {meta.patient_sex or '-'}"],
        ["Study", f"{_date(meta.study_date)}  accession {meta.accession_number or '-'}  {meta.study_description}"],
        ["Series", f"{meta.series_description or '-'}  ({volume.shape[0]} slices)"],
        ["Analysed", f"{report.created_at:%Y-%m-%d %H:%M} UTC  run {report.run_id or '-'}"],
    ], widths=[220, 840])
    page.section("Verdict")
    if report.verdict is not None:
        page.text(VERDICT_TEXT[report.verdict], size=44, bold=True, rgb=VERDICT_RGB[report.verdict], gap=12)
    else:
        page.text(f"{report.status}: {report.reason or 'no verdict'}", size=36, bold=True, gap=12)
    unit = f" {report.score_unit}" if report.score_unit else ""
    if report.score is not None:
        page.text(f"Study score {report.score:.3f}{unit}; pathology when above {report.threshold}{unit}")
    if report.voxel_threshold is not None:
        page.text(f"Findings: voxels with anomaly score \u2265 {report.voxel_threshold}", rgb=MUTED)
    page.section(f"Findings ({len(report.findings)})")
    if report.findings:
        listed = report.findings[:SUMMARY_FINDINGS]
        page.table([["#", "Organ", "Volume", "Score max", "Score mean", "Slices"]] + [
            [str(n), f.organ_display, f"{f.volume_ml:.2f} ml", f"{f.score_max:.2f}", f"{f.score_mean:.2f}",
             f"{f.slice_range[0] + 1}\u2013{f.slice_range[1] + 1}"]
            for n, f in enumerate(listed, start=1)
        ], widths=[60, 420, 160, 140, 150, 130])
        if len(report.findings) > len(listed):
            more = len(report.findings) - len(listed)
            page.text(f"\u2026 and {more} smaller findings on the following pages", rgb=MUTED)
    else:
        page.text("none", rgb=MUTED)
    missing = [o for o in report.outputs if not o.produced and o.reason is not OutputReason.no_findings]
    if missing:
        # The PACS will not get these: say so where the reader of the verdict looks.
        page.text("Not produced for the PACS: " + ", ".join(f"{OUTPUT_TITLES.get(o.name, o.name)} ({o.reason})" for o in missing),
                  rgb=VERDICT_RGB[Verdict.pathology])
    page.section("Models")
    page.table([["Stage", "Model", "Version", "Checksum"]] + [
        [m.stage, m.name, m.version, (m.checksum or "-")[:16]] for m in report.models
    ], widths=[160, 500, 140, 260])
    if report.gate is not None:
        page.section(f"Gate: {'accepted' if report.gate.accepted else 'refused'} ({report.gate.method})")
        page.table([["Check", "Result", "Value", "Expected"]] + [
            [c.name, "passed" if c.passed else "FAILED", _value(c.value), c.expected or "-"] for c in report.gate.checks
        ], widths=[330, 130, 300, 300])
    if report.timings:
        page.y += 10
        page.text("Timings: " + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in report.timings.items()),
                  size=18, rgb=MUTED)
    return page


def _finding_page(report: ReportV1, number: int, finding: Finding, key: KeyImage) -> _Page:
    page = _Page()
    page.text(f"Finding {number} of {len(report.findings)}: {finding.organ_display}", size=34, bold=True, gap=14)
    page.picture(key.pixels, width=PAGE_SIZE[0] - 2 * MARGIN - 120)
    organs = ", ".join(f"{BY_NAME[name].display if name in BY_NAME else name} {fraction:.0%}"
                       for name, fraction in finding.organs.items())
    box = finding.bbox_mm
    page.table([
        ["Measure", "Value"],
        ["Organs", organs],
        ["Volume", f"{finding.volume_ml:.2f} ml"],
        ["Anomaly score", f"max {finding.score_max:.3f}, mean {finding.score_mean:.3f}, sum {finding.score_sum:.1f}"],
        ["Box (mm, LPS)", f"{_xyz(box.min)} to {_xyz(box.max)}"],
        ["Centroid (mm, LPS)", _xyz(finding.centroid_mm)],
        ["Slices", f"{finding.slice_range[0] + 1} to {finding.slice_range[1] + 1}; key image slice {key.k + 1}, "
                   f"{key.window} window"],
    ], widths=[260, 800])
    return page


def _line_height(text_font: Font) -> int:
    return int(text_font.getbbox("Hg")[3])


def _fit(text: str, text_font: Font, width: int) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels."""
    if text_font.getlength(text) <= width:
        return text
    while text and text_font.getlength(text + "\u2026") > width:
        text = text[:-1]
    return text + "\u2026"


def _person_name(value: str) -> str:
    """A DICOM PN (``Family^Given^Middle``) as "Family, Given Middle"."""
    family, _, rest = value.partition("^")
    given = " ".join(part for part in rest.split("^") if part)
    return f"{family}, {given}" if family and given else (family or given or "-")


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else (value or "-")


def _xyz(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in values) + ")"


def _value(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else ("-" if value is None else str(value))
