"""DICOM I/O: read a study into a :class:`Volume`, write volumes as CT series or NIfTI."""

from __future__ import annotations

import importlib

from shared.dicom.errors import LoadError, Reason
from shared.dicom.volume import Volume, VolumeMeta, affine_from

# Readers and writers import pydicom / nibabel: loaded on first use so `Volume` stays light.
_LAZY = {
    "SeriesInfo": "shared.dicom.reader",
    "choose_series": "shared.dicom.reader",
    "list_series": "shared.dicom.reader",
    "read_study": "shared.dicom.reader",
    "iter_dicom_sources": "shared.dicom.sources",
    "ct_slice_datasets": "shared.dicom.writer",
    "save_dataset": "shared.dicom.writer",
    "write_ct_series": "shared.dicom.writer",
    "dciodvfy_errors": "shared.dicom.writer",
    "read_nifti": "shared.dicom.nifti",
    "write_nifti": "shared.dicom.nifti",
    "read_label_nifti": "shared.dicom.nifti",
    "write_label_nifti": "shared.dicom.nifti",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'shared.dicom' has no attribute {name!r}")


__all__ = ["LoadError", "Reason", "Volume", "VolumeMeta", "affine_from", *_LAZY]
