"""Slice PNGs for the viewer and the report PDF (worker_localizer.outputs.render / pdf)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from outputs_testkit import Study, make_study
from shared.dicom.volume import Volume, affine_from
from shared.report import OutputReason, OutputStatus, Verdict
from worker_localizer.outputs import render_slice_png, report_pdf
from worker_localizer.outputs.pdf import report_pages
from worker_localizer.outputs.render import display_plane

SHAPE = (5, 48, 64)  # non-square slices, so a transposed display would change the image shape
DIRECTIONS = {
    "axial": np.eye(3),
    "columns run to patient right": np.diag([-1.0, 1.0, 1.0]),
    "rows run to anterior": np.diag([1.0, -1.0, 1.0]),
    "columns run posterior, rows run left": np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
}


def _volume(direction: np.ndarray, *, spacing: tuple[float, float, float] = (2.0, 2.0, 5.0)) -> Volume:
    """Air everywhere, the grid centred on the LPS origin."""
    centre = (np.array(SHAPE[::-1], dtype=float) - 1) / 2 * np.array(spacing)
    affine = affine_from(spacing=spacing, origin=tuple(-(direction @ centre)), direction=direction)
    return Volume(hu=np.full(SHAPE, -1000, dtype=np.int16), affine=affine)


def _mark(volume: Volume, lps: tuple[float, float, float]) -> None:
    i, j, k = np.rint(volume.lps_to_index(np.array(lps))).astype(int)
    volume.hu[k, j - 1:j + 2, i - 1:i + 2] = 1000


def _png(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def _bright_centre(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(image[..., 0] > 200)
    return rows.mean() / image.shape[0], cols.mean() / image.shape[1]


@pytest.mark.parametrize("direction", DIRECTIONS.values(), ids=DIRECTIONS.keys())
def test_axial_slices_show_patient_left_on_the_right_and_anterior_up(direction: np.ndarray) -> None:
    for lps, side in (((40.0, 0.0, 0.0), "right"), ((-40.0, 0.0, 0.0), "left"), ((0.0, -30.0, 0.0), "top"),
                      ((0.0, 30.0, 0.0), "bottom")):
        volume = _volume(direction)
        _mark(volume, lps)
        row, col = _bright_centre(_png(render_slice_png(volume=volume, k=2, window="mediastinal", overlay=None)))
        where = {"right": col > 0.6, "left": col < 0.4, "top": row < 0.4, "bottom": row > 0.6}
        assert where[side], f"a marker at LPS {lps} should appear at the image {side} (row {row:.2f}, col {col:.2f})"


def test_the_image_keeps_the_patient_proportions() -> None:
    transposed = _png(render_slice_png(volume=_volume(DIRECTIONS["columns run posterior, rows run left"]), k=0,
                                       window="lung", overlay=None))
    assert transposed.shape[:2] == (SHAPE[2], SHAPE[1])  # rows now run along the patient's y
    tall_pixels = _png(render_slice_png(volume=_volume(np.eye(3), spacing=(1.0, 2.0, 5.0)), k=0, window="lung",
                                        overlay=None))
    assert tall_pixels.shape[:2] == (2 * SHAPE[1], SHAPE[2])  # 2 mm rows become two 1 mm rows
    assert display_plane(_volume(np.eye(3))).patient_orientation == ("L", "P")


def test_windows_map_their_level_to_mid_grey() -> None:
    volume = _volume(np.eye(3))
    volume.hu[0, :, :16], volume.hu[0, :, 16:32], volume.hu[0, :, 32:48] = -600, 40, 1000
    lung = _png(render_slice_png(volume=volume, k=0, window="lung", overlay=None))[0, :, 0]
    soft = _png(render_slice_png(volume=volume, k=0, window="mediastinal", overlay=None))[0, :, 0]
    def grey(hu: float, level: float, width: float) -> int:  # linear VOI LUT, PS3.3 C.11.2.1.2, 8 bits
        return int(np.clip((hu - level + width / 2) / width, 0, 1) * 255 + 0.5)

    for shown, (level, width) in ((lung, (-600, 1500)), (soft, (40, 400))):
        assert [shown[8], shown[24], shown[40], shown[56]] == [grey(hu, level, width) for hu in (-600, 40, 1000, -1000)]
    assert (lung[8], soft[24]) == (128, 128)
    with pytest.raises(ValueError, match="window"):
        render_slice_png(volume=volume, k=0, window="bone", overlay=None)  # type: ignore[arg-type]


def test_the_overlay_colours_high_scores_only() -> None:
    volume = _volume(np.eye(3))
    volume.hu[:] = 40
    scores = np.zeros(SHAPE, dtype=np.float32)
    scores[:, 10:20, 10:20] = 1.0
    scores[:, 30:40, 40:50] = 0.1  # below the drawn floor
    for overlay in (scores, scores[3]):
        image = _png(render_slice_png(volume=volume, k=3, window="mediastinal", overlay=overlay)).astype(int)
        red, green, blue = image[15, 15]
        assert red - blue > 100 and green > blue, "score 1 is drawn in warm colours"
        assert len(set(image[35, 45])) == 1 and len(set(image[2, 2])) == 1, "low scores and background stay grey"


def test_organ_labels_are_outlined_not_filled() -> None:
    volume = _volume(np.eye(3))
    volume.hu[:] = 40
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[:, 10:30, 10:30] = 9
    image = _png(render_slice_png(volume=volume, k=1, window="mediastinal", overlay=None, organ_labels=labels))
    assert len(set(image[10, 20])) > 1, "the organ's border is coloured"
    assert len(set(image[20, 20])) == 1, "its inside stays grey"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    return make_study(tmp_path_factory.mktemp("study"))


def _page_count(pdf: bytes) -> int:
    assert pdf.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf))
    declared = int(re.search(rb"/Type\s*/Pages\b.*?/Count\s+(\d+)|/Count\s+(\d+)", pdf, re.S).group(1) or 0)
    assert declared in (0, pages)
    return pages


def test_the_pdf_has_a_summary_page_and_one_page_per_finding(study: Study) -> None:
    pdf = report_pdf(volume=study.volume, report=study.report, anomaly_score=study.anomaly_score)
    assert _page_count(pdf) == 1 + len(study.report.findings) == 3
    normal = study.report.model_copy(update={"findings": [], "verdict": Verdict.normal, "score": 0.0})
    assert _page_count(report_pdf(volume=study.volume, report=normal, anomaly_score=study.anomaly_score)) == 1


def test_the_pdf_is_the_same_with_the_localizer_mask_or_without(study: Study, tmp_path: Path) -> None:
    with_mask = report_pdf(volume=study.volume, report=study.report, anomaly_score=study.anomaly_score,
                           anomaly_mask=study.anomaly_mask)
    without = report_pdf(volume=study.volume, report=study.report, anomaly_score=study.anomaly_score)
    assert _page_count(with_mask) == _page_count(without)


def test_the_pdf_summary_says_which_dicom_outputs_the_pacs_will_not_get(study: Study) -> None:
    def pages(outputs: list[OutputStatus]) -> list[np.ndarray]:
        report = study.report.model_copy(update={"outputs": outputs})
        return [np.asarray(page) for page in report_pages(volume=study.volume, report=report, anomaly_score=study.anomaly_score)]

    produced = pages([OutputStatus(name=name, produced=True) for name in ("seg", "sr", "key_images")])
    seg_failed = pages([OutputStatus(name="seg", produced=False, reason=OutputReason.build_failed),
                        OutputStatus(name="sr", produced=False, reason=OutputReason.seg_unavailable),
                        OutputStatus(name="key_images", produced=True)])
    assert not np.array_equal(produced[0], seg_failed[0])  # the summary names them
    assert all(np.array_equal(a, b) for a, b in zip(produced[1:], seg_failed[1:], strict=True))
    assert np.array_equal(produced[0], pages([])[0])  # nothing said when nothing is missing
