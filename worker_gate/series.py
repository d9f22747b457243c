"""Which series of a study the gate analyses, and the gate check that reports it.

Rule, over the CT image series of one study (localizers, dose reports, SR, SEG and other objects
without slices are skipped by :func:`shared.dicom.reader.list_series`), most important first:

1. axial before coronal, sagittal or oblique reformats;
2. series whose slices cover :data:`worker_gate.passport.MIN_COVERAGE_MM` (slice count x
   SliceThickness, from headers) before shorter ones, so a thin slab never beats the full chest;
3. ORIGINAL before DERIVED images;
4. thinner SliceThickness first;
5. a lung or soft-tissue reconstruction kernel (LUNG, STANDARD, SOFT, Siemens B/I/Br 20-70, Philips A-C, L...)
   before bone, sharp, head or unknown kernels;
6. more slices, then the lowest SeriesNumber and SeriesInstanceUID (never file order).

A study with one CT series, or whose objects belong to several studies, goes to the reader's own
default choice, which also gives the stable refusals (``not_ct``, ``no_ct_series``, ``not_one_study``).
"""

from __future__ import annotations

import re
from pathlib import Path

from shared.dicom.reader import SeriesInfo, list_series, read_study
from shared.dicom.volume import Volume
from shared.report import GateCheck
from worker_gate.passport import MIN_COVERAGE_MM

RULE = "axial, covering the lungs, original, thinnest, lung/soft-tissue kernel, most slices"

_SOFT_OR_LUNG = re.compile(r"^[ABCL]$|LUNG|STAND|STND|SOFT|BODY|CHEST|MEDIAST|DETAIL|^FC(0\d|1\d|5\d|8\d)$|^(B|I|BR|BL|BF|Q|QR)\s?[2-7]\d")


def read_chosen_series(folder: Path) -> tuple[Volume, GateCheck]:
    """The series the rule prefers, read from ``folder``, and the check naming it (raises ``LoadError``)."""
    candidates = [info for info in list_series(folder) if _is_ct_image_series(info)]
    studies = {info.study_instance_uid for info in candidates if info.study_instance_uid}
    if len(candidates) <= 1 or len(studies) > 1:
        volume = read_study(folder)
        return volume, _check(volume, len(candidates), None)
    chosen = min(candidates, key=_preference)
    volume = read_study(folder, series_instance_uid=chosen.series_instance_uid)
    return volume, _check(volume, len(candidates), chosen)


def kernel_rank(kernel: str) -> int:
    """0 for lung or soft-tissue reconstruction kernels, 1 for bone, sharp, head or unknown ones."""
    return 0 if _SOFT_OR_LUNG.search(kernel.strip().upper()) else 1


def _is_ct_image_series(info: SeriesInfo) -> bool:
    return info.skip_reason is None and (info.modality or "CT").upper() == "CT"


def _preference(info: SeriesInfo) -> tuple[object, ...]:
    thickness = info.slice_thickness if info.slice_thickness else float("inf")
    covers = info.n_frames * (info.slice_thickness or 0.0) >= MIN_COVERAGE_MM
    return (info.orientation != "axial", not covers, info.is_derived, thickness, kernel_rank(info.convolution_kernel),
            -info.n_frames, info.series_number or 0, info.series_instance_uid)


def _check(volume: Volume, n_candidates: int, chosen: SeriesInfo | None) -> GateCheck:
    meta = volume.meta
    value = {
        "series_instance_uid": meta.series_instance_uid, "series_number": meta.series_number,
        "slice_thickness_mm": meta.slice_thickness, "convolution_kernel": meta.convolution_kernel or None,
        "n_slices": volume.shape[0], "ct_series_in_study": n_candidates,
    }
    detail = f"chosen by the gate's rule: {RULE}" if chosen is not None else None
    return GateCheck(name="series", passed=True, value=value, expected="one CT image series", detail=detail)
