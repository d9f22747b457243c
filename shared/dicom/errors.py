"""Typed loading errors with stable reason codes.

The gate and the API surface ``reason`` verbatim, so clients may rely on these strings: never rename
a member, only add new ones.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Stable reason codes for refusing input."""

    NOT_DICOM = "not_dicom"
    """The bytes are not a DICOM Part 10 file (nor a raw dataset pydicom can read)."""
    TRUNCATED = "truncated"
    """The file starts as DICOM but ends before its declared content."""
    NO_PIXEL_DATA = "no_pixel_data"
    """The object has no Pixel Data (e.g. a dose report or an SR)."""
    UNSUPPORTED_TRANSFER_SYNTAX = "unsupported_transfer_syntax"
    """Pixel data is encoded in a transfer syntax no installed plugin can decode."""
    NOT_ONE_STUDY = "not_one_study"
    """The input holds instances of more than one StudyInstanceUID."""
    NO_CT_SERIES = "no_ct_series"
    """No series of CT images remains after skipping localizers and derived objects."""
    NOT_CT = "not_ct"
    """The image series' Modality is not CT (MR, CR, DX, PT, ...)."""
    INCONSISTENT_GEOMETRY = "inconsistent_geometry"
    """Slices disagree on orientation, pixel spacing or matrix size, or positions are missing."""
    TOO_FEW_SLICES = "too_few_slices"
    """Fewer slices than a volume needs."""
    EMPTY_INPUT = "empty_input"
    """Nothing was given: an empty folder, an empty zip, zero bytes."""
    UNSAFE_ARCHIVE = "unsafe_archive"
    """A zip with path traversal, too many members or an implausible compression ratio."""
    SERIES_NOT_FOUND = "series_not_found"
    """The SeriesInstanceUID asked for is not in the input."""
    CORRUPT_PIXEL_DATA = "corrupt_pixel_data"
    """Pixel Data is present but cannot be decoded (a damaged codestream, or too short for its frames)."""
    NOT_CHEST = "not_chest"
    """The tags name a body part other than the chest (BodyPartExamined HEAD, KNEE, ...)."""
    INSUFFICIENT_COVERAGE = "insufficient_coverage"
    """The series covers too little of the body along the slice axis to contain the lungs."""
    NO_CHEST_ANATOMY = "no_chest_anatomy"
    """The image does not look like a chest CT: the lungs (or the heart) were not found."""

    COARSE_RESOLUTION = "coarse_resolution"
    """Pixels are too coarse in-plane for lung analysis (PixelSpacing above the gate's limit)."""
    GANTRY_TILT = "gantry_tilt"
    """Slices are acquired with a gantry tilt above the gate's limit (a sheared volume)."""


class LoadError(Exception):
    """Input that cannot become a CT volume; ``reason`` is a stable :class:`Reason` code."""

    def __init__(self, reason: Reason, detail: str, **values: object) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.values = values  # the measured values behind the refusal, for reports (no PHI)

    def as_dict(self) -> dict[str, object]:
        """The error as it appears in API problems and reports."""
        return {"reason": self.reason.value, "detail": self.detail, **self.values}
