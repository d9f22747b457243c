"""One DICOM object as the reader sees it: its header, what kind of object it is, where its pixels lie.

Only the header is parsed (``stop_before_pixels``); for uncompressed little-endian objects the
offset and length of the Pixel Data value are recorded so the pixels can later be read straight
into the volume with numpy, without pydicom building a dataset element for them.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import DeflatedExplicitVRLittleEndian

from shared.dicom import header
from shared.dicom.errors import LoadError, Reason

CT_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT Image Storage
})
# Image SOP classes whose instances must carry Pixel Data (PS3.3 A.x); one without is cut short.
_IMAGE_SOP_CLASSES = CT_SOP_CLASSES | {
    "1.2.840.10008.5.1.4.1.1.1",  # CR
    "1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1.1",  # DX
    "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1", "1.2.840.10008.5.1.4.1.1.4.4",  # MR
    "1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.130",  # PET
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
}
_DOSE_SR_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.88.67",  # X-Ray Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.88.68",  # Radiopharmaceutical Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.88.73",  # Patient Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.88.76",  # Enhanced X-Ray Radiation Dose SR
})
_SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"  # and its multi-frame variants .7.1 to .7.4
_NON_IMAGE_MODALITIES = frozenset({
    "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "SEG", "REG", "PR", "KO", "DOC", "RWV", "FID", "PLAN",
    "REGISTRATION", "AU", "ECG",
})
_NON_IMAGE_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.11.",  # presentation states
    "1.2.840.10008.5.1.4.1.1.66",  # raw data, registration, SEG, surface segmentation
    "1.2.840.10008.5.1.4.1.1.481.",  # RT objects
    "1.2.840.10008.5.1.4.1.1.104.",  # encapsulated documents
    "1.2.840.10008.1.3.10",  # Media Storage Directory (DICOMDIR)
)
# ImageType (0008,0008) values that mark projection radiographs planned on, not slices (PS3.3
# C.8.2.1.1.1 value 3 LOCALIZER; vendors' SCOUT / TOPOGRAM) and screenshots of dose pages.
_LOCALIZER_TYPES = frozenset({"LOCALIZER", "SCOUT", "TOPOGRAM"})
_DOSE_PAGE_TYPES = frozenset({"SCREEN SAVE", "DOSE INFO", "DOSE_INFO", "DOSE REPORT", "DOSE_REPORT"})

_PIXEL_DATA_TAG = (0x7FE0, 0x0010)
_UNDEFINED_LENGTH = 0xFFFFFFFF


class SkipReason:
    """Why an object is not an image slice of a CT volume (values of :attr:`Instance.skip_reason`)."""

    LOCALIZER = "localizer"
    DOSE_REPORT = "dose_report"
    STRUCTURED_REPORT = "structured_report"
    SECONDARY_CAPTURE = "secondary_capture"
    NOT_IMAGE = "not_image"
    NO_PIXEL_DATA = "no_pixel_data"
    NOT_GRAYSCALE = "not_grayscale"


@dataclass(frozen=True, slots=True)
class NativePixels:
    """Where an uncompressed little-endian Pixel Data value lies: byte offset and length."""

    offset: int
    length: int


@dataclass(eq=False, slots=True)
class Instance:
    """A parsed DICOM object (header only) and where to find its pixels."""

    name: str
    source: bytes | Path
    dataset: Dataset
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    modality: str
    transfer_syntax_uid: str
    n_frames: int
    has_pixel_data: bool
    native: NativePixels | None
    truncated: bool
    skip_reason: str | None

    @property
    def is_ct(self) -> bool:
        """Modality CT, or no Modality at all on a CT SOP class (stripped headers)."""
        return self.modality == "CT" or (not self.modality and self.sop_class_uid in CT_SOP_CLASSES)

    @property
    def image_type(self) -> list[str]:
        """ImageType (0008,0008) values, upper case."""
        return image_type_of(self.dataset)


def read_instance(name: str, source: bytes | Path) -> Instance:
    """Parse one object's header; ``NOT_DICOM`` or ``TRUNCATED`` when it cannot be parsed at all."""
    if isinstance(source, Path):
        with open(source, "rb") as stream:
            return _read_stream(name, source, stream, os.fstat(stream.fileno()).st_size)
    return _read_stream(name, source, io.BytesIO(source), len(source))


def image_type_of(ds: Dataset) -> list[str]:
    """ImageType values as upper-case strings (empty when absent)."""
    return [value.upper() for value in header.strings(ds, "ImageType") or []]


def _read_stream(name: str, source: bytes | Path, stream: BinaryIO, size: int) -> Instance:
    has_preamble = _has_dicm_prefix(stream)
    ds = _parse_header(stream, has_preamble)
    transfer_syntax = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        # The stream pydicom parsed was inflated in memory: file offsets mean nothing, read it whole.
        has_pixels, native, truncated = _pixels_of_deflated(source)
    else:
        has_pixels, native, truncated = _locate_pixels(stream, ds, size)
    # Some de-identifiers blank the dataset's UIDs but leave the file meta's copies (PS3.10 7.1).
    sop_class = header.string(ds, "SOPClassUID") or _meta_text(ds, "MediaStorageSOPClassUID")
    if not has_pixels and sop_class in _IMAGE_SOP_CLASSES:
        truncated = True  # an image object must carry Pixel Data; this one ends before it
    instance = Instance(
        name=name,
        source=source,
        dataset=ds,
        sop_class_uid=sop_class,
        sop_instance_uid=header.string(ds, "SOPInstanceUID") or _meta_text(ds, "MediaStorageSOPInstanceUID"),
        study_instance_uid=header.string(ds, "StudyInstanceUID"),
        series_instance_uid=header.string(ds, "SeriesInstanceUID"),
        modality=header.string(ds, "Modality").upper(),
        transfer_syntax_uid=transfer_syntax,
        n_frames=max(1, header.integer(ds, "NumberOfFrames", 1)),
        has_pixel_data=has_pixels,
        native=native,
        truncated=truncated,
        skip_reason=None,
    )
    instance.skip_reason = _skip_reason(instance)
    return instance


def _has_dicm_prefix(stream: BinaryIO) -> bool:
    stream.seek(128)
    prefix = stream.read(4)
    stream.seek(0)
    return prefix == b"DICM"


def _parse_header(stream: BinaryIO, has_preamble: bool) -> Dataset:
    try:
        ds = dcmread(stream, stop_before_pixels=True)
        if not _has_identity(ds):
            # pydicom reads garbage after "DICM" as unknown elements without complaint
            raise LoadError(Reason.TRUNCATED, "DICOM file header is damaged (no SOP Class, no Modality)")
        return ds
    except LoadError:
        raise
    except InvalidDicomError:
        if has_preamble:
            raise LoadError(Reason.TRUNCATED, "DICOM file ends inside its file meta information") from None
    except Exception as exc:  # pydicom raises many types on damaged input
        if has_preamble:
            detail = f"DICOM file ends or breaks inside its header ({type(exc).__name__})"
            raise LoadError(Reason.TRUNCATED, detail) from None
        raise LoadError(Reason.NOT_DICOM, "not a DICOM file") from None
    # No Part 10 preamble: accept a raw dataset (PS3.5 little-endian, as some archives keep them)
    # only when it parses and carries image identity, so random files are not taken for DICOM.
    stream.seek(0)
    try:
        ds = dcmread(stream, stop_before_pixels=True, force=True)
        plausible = len(ds) > 0 and next(iter(ds.keys())).group in (0x0002, 0x0008) and "SOPClassUID" in ds
    except Exception:
        plausible = False
    if not plausible:
        raise LoadError(Reason.NOT_DICOM, "not a DICOM file (no DICM prefix and no readable dataset)")
    return ds


def _has_identity(ds: Dataset) -> bool:
    """Whether a parsed header says what it is (SOP Class in the dataset or file meta, or a Modality)."""
    return bool(header.string(ds, "SOPClassUID") or _meta_text(ds, "MediaStorageSOPClassUID") or "Modality" in ds)


def _locate_pixels(stream: BinaryIO, ds: Dataset, size: int) -> tuple[bool, NativePixels | None, bool]:
    """(has Pixel Data, native location or None, truncated) from the stream left at the pixel element."""
    position = stream.tell()
    head = stream.read(12)
    if len(head) == 0:
        return False, None, False
    implicit_vr, little_endian = ds.original_encoding
    if len(head) < 8 or (not implicit_vr and len(head) < 12):
        return True, None, True
    tag = struct.unpack("<HH" if little_endian else ">HH", head[:4])
    if tag != _PIXEL_DATA_TAG or not little_endian:
        return True, None, False  # Float Pixel Data or big endian: left to pydicom's decoders
    if implicit_vr:
        (length,) = struct.unpack("<I", head[4:8])
        value_offset = position + 8
    else:
        (length,) = struct.unpack("<I", head[8:12])
        value_offset = position + 12
    if length == _UNDEFINED_LENGTH:
        return True, None, False  # encapsulated (compressed) frames
    return True, NativePixels(value_offset, length), value_offset + length > size


def _pixels_of_deflated(source: bytes | Path) -> tuple[bool, None, bool]:
    try:
        ds = dcmread(source if isinstance(source, Path) else io.BytesIO(source))
        return "PixelData" in ds, None, False
    except Exception:
        return True, None, True


def _skip_reason(instance: Instance) -> str | None:
    sop_class, modality = instance.sop_class_uid, instance.modality
    image_type = set(instance.image_type)
    if sop_class in _DOSE_SR_SOP_CLASSES or image_type & _DOSE_PAGE_TYPES:
        return SkipReason.DOSE_REPORT
    if sop_class.startswith(_SR_PREFIX) or modality == "SR":
        return SkipReason.STRUCTURED_REPORT
    if sop_class == _SECONDARY_CAPTURE or sop_class.startswith(_SECONDARY_CAPTURE + "."):
        return SkipReason.SECONDARY_CAPTURE
    if modality in _NON_IMAGE_MODALITIES or sop_class.startswith(_NON_IMAGE_PREFIXES):
        return SkipReason.NOT_IMAGE
    if image_type & _LOCALIZER_TYPES:
        return SkipReason.LOCALIZER
    if not instance.has_pixel_data and not instance.truncated:
        return SkipReason.NO_PIXEL_DATA
    if header.integer(instance.dataset, "SamplesPerPixel", 1) != 1:
        return SkipReason.NOT_GRAYSCALE
    return None


def _meta_text(ds: Dataset, keyword: str) -> str:
    return header.string(ds.file_meta, keyword) if hasattr(ds, "file_meta") else ""
