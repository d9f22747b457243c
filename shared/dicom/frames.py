"""The 2-D frames of image objects, each with its own plane geometry and rescale.

A classic CT Image object is one frame whose attributes sit at the top level. An Enhanced (or
Legacy Converted Enhanced) CT object holds many frames and describes each through functional group
macros (PS3.3 C.7.6.16): Plane Position (Patient), Plane Orientation (Patient), Pixel Measures and
Pixel Value Transformation, found in the frame's Per-frame Functional Groups Sequence item or, when
shared by all frames, in the Shared Functional Groups Sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from shared.dicom import header
from shared.dicom.instances import Instance


@dataclass(eq=False, slots=True)
class Frame:
    """One 2-D image: its object, frame index, plane geometry (LPS mm) and stored-to-HU rescale."""

    instance: Instance
    index: int
    position: np.ndarray | None  # ImagePositionPatient, shape (3,)
    orientation: np.ndarray | None  # ImageOrientationPatient, shape (6,): row then column cosines
    pixel_spacing: tuple[float, float] | None  # PixelSpacing: (between rows, between columns)
    slice_thickness: float | None
    slope: float
    intercept: float
    is_localizer: bool


def frames_of(instance: Instance) -> list[Frame]:
    """All frames of an image object, in stored order."""
    ds = instance.dataset
    per_frame = ds.PerFrameFunctionalGroupsSequence if "PerFrameFunctionalGroupsSequence" in ds else None
    shared_seq = ds.SharedFunctionalGroupsSequence if "SharedFunctionalGroupsSequence" in ds else None
    shared = shared_seq[0] if shared_seq else None
    return [
        _frame(instance, index, per_frame[index] if per_frame and index < len(per_frame) else None, shared)
        for index in range(instance.n_frames)
    ]


def _frame(instance: Instance, index: int, per_frame: Dataset | None, shared: Dataset | None) -> Frame:
    ds = instance.dataset

    def macro(keyword: str) -> Dataset:
        for groups in (per_frame, shared):
            if groups is not None and keyword in groups and len(groups[keyword].value):
                return groups[keyword].value[0]
        return ds  # classic objects (and odd enhanced ones) keep the attribute at the top level

    measures = macro("PixelMeasuresSequence")
    transformation = macro("PixelValueTransformationSequence")
    frame_type = header.strings(macro("CTImageFrameTypeSequence"), "FrameType") or []
    position = header.floats(macro("PlanePositionSequence"), "ImagePositionPatient", 3)
    orientation = header.floats(macro("PlaneOrientationSequence"), "ImageOrientationPatient", 6)
    spacing = header.floats(measures, "PixelSpacing", 2)
    return Frame(
        instance=instance,
        index=index,
        position=np.array(position) if position is not None else None,
        orientation=np.array(orientation) if orientation is not None else None,
        pixel_spacing=spacing,  # type: ignore[arg-type]
        slice_thickness=header.number(measures, "SliceThickness"),
        slope=_first_number((transformation, ds), "RescaleSlope", 1.0),
        intercept=_first_number((transformation, ds), "RescaleIntercept", 0.0),
        is_localizer="LOCALIZER" in instance.image_type + [t.upper() for t in frame_type],
    )


def _first_number(datasets: tuple[Dataset, ...], keyword: str, default: float) -> float:
    for ds in datasets:
        value = header.number(ds, keyword)
        if value is not None:
            return value
    return default
