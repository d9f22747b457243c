"""DICOM I/O: read a study into a :class:`Volume`, write volumes as CT series or NIfTI."""

from shared.dicom.errors import LoadError, Reason
from shared.dicom.volume import Volume, VolumeMeta, affine_from

__all__ = ["LoadError", "Reason", "Volume", "VolumeMeta", "affine_from"]
