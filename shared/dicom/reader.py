"""Read a CT study from files, a folder, a zip or bytes into a :class:`Volume`.

How a series is chosen (:func:`read_study` without ``series_instance_uid``):

1. Objects are grouped by StudyInstanceUID / SeriesInstanceUID; more than one study is refused
   (``not_one_study``).
2. Objects that are not image slices are skipped: localizers/scouts (ImageType LOCALIZER, SCOUT,
   TOPOGRAM), dose reports (dose SR, dose screenshots), other SR, secondary captures, RT / SEG /
   presentation states and objects without Pixel Data. What remains are the image series.
3. Among image series, CT ones (Modality CT, or a CT SOP class without Modality) are kept; if none
   is CT the study is refused as ``not_ct`` with the modality seen.
4. The default is the CT series that is axial (normal within 30 degrees of the patient axis), then
   has the most slices, then the thinnest SliceThickness, then the lowest SeriesNumber and
   SeriesInstanceUID (so the choice never depends on file order).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
from pydicom.multival import MultiValue

from shared.dicom.errors import LoadError, Reason
from shared.dicom.frames import Frame, frames_of
from shared.dicom.geometry import SlicePlan, orientation_label, plan_slices
from shared.dicom.instances import Instance, SkipReason, image_type_of, read_instance
from shared.dicom.pixels import read_stored_values, stored_to_hu
from shared.dicom.sources import Source, ZipLimits, iter_dicom_sources
from shared.dicom.volume import Volume, VolumeMeta

MIN_SLICES = 3


@dataclass
class SeriesInfo:
    """What one series holds, from headers only (no PHI: no patient tags)."""

    series_instance_uid: str
    study_instance_uid: str
    modality: str
    sop_class_uid: str
    series_description: str
    body_part_examined: str
    image_type: list[str]
    n_instances: int
    rows: int | None
    columns: int | None
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    convolution_kernel: str
    orientation: str | None
    is_localizer: bool
    is_derived: bool
    has_pixel_data: bool
    skip_reason: str | None
    series_number: int | None = None
    n_frames: int = 0
    transfer_syntax_uid: str = ""

    def as_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass
class _Scan:
    """Every object of the input, grouped, plus what could not be read."""

    series: dict[tuple[str, str], list[Instance]] = field(default_factory=dict)
    rejected: Counter[Reason] = field(default_factory=Counter)

    @property
    def instances(self) -> Iterable[Instance]:
        return (instance for group in self.series.values() for instance in group)


def list_series(source: Source, *, limits: ZipLimits | None = None) -> list[SeriesInfo]:
    """Every series in the input, from headers only, ordered by study, SeriesNumber, UID."""
    scan = _scan(source, limits)
    infos = [_series_info(group) for group in scan.series.values()]
    return sorted(infos, key=lambda s: (s.study_instance_uid, s.series_number or 0, s.series_instance_uid))


def read_study(
    source: Source, *, series_instance_uid: str | None = None, min_slices: int = MIN_SLICES,
    limits: ZipLimits | None = None,
) -> Volume:
    """The chosen (or named) CT series as a HU volume in (nz, ny, nx) with its LPS affine."""
    scan = _scan(source, limits)
    if series_instance_uid is None:
        group, warnings = _default_series(scan)
    else:
        warnings = _input_warnings(scan)
        group = _named_series(scan, series_instance_uid)
    frames = _image_frames(group, warnings)
    _require_slices(len(frames), min_slices)
    plan = plan_slices(frames)
    _require_slices(plan.n_slices, min_slices)
    hu = stored_to_hu(read_stored_values(plan.frames), plan.frames)
    hu, uids = _fill_grid(hu, plan)
    return Volume(hu=hu, affine=plan.affine, meta=_meta(plan.frames[0], uids), warnings=warnings + plan.warnings)


def choose_series(
    instances: Iterable[Instance], *, rejected: Counter[Reason] | None = None
) -> tuple[list[Instance], list[str]]:
    """The objects of the series :func:`read_study` would load, among headers already parsed, and warnings.

    ``rejected`` counts the inputs whose header could not be read, by reason. Refuses (``LoadError``)
    exactly as :func:`read_study` does before it reads pixels.
    """
    return _default_series(_group(instances, rejected or Counter()))


def _default_series(scan: _Scan) -> tuple[list[Instance], list[str]]:
    warnings = _input_warnings(scan)
    _require_one_study(scan)
    group, choice_warnings = _choose_series(scan)
    return group, warnings + choice_warnings


def _require_slices(n_slices: int, min_slices: int) -> None:
    if n_slices < min_slices:
        raise LoadError(
            Reason.TOO_FEW_SLICES, f"the series has {n_slices} slice(s); at least {min_slices} are needed",
            n_slices=n_slices, min_slices=min_slices,
        )


def _scan(source: Source, limits: ZipLimits | None) -> _Scan:
    instances: list[Instance] = []
    rejected: Counter[Reason] = Counter()
    for name, item in iter_dicom_sources(source, limits=limits):
        try:
            instance = read_instance(name, item)
        except LoadError as error:
            rejected[error.reason] += 1
            continue
        if instance.skip_reason is not None and isinstance(item, bytes):
            instance.source = b""  # never read again: do not hold a skipped object's bytes
        instances.append(instance)
    return _group(instances, rejected)


def _group(instances: Iterable[Instance], rejected: Counter[Reason]) -> _Scan:
    scan = _Scan(rejected=Counter(rejected))
    for instance in instances:
        scan.series.setdefault((instance.study_instance_uid, instance.series_instance_uid), []).append(instance)
    if not scan.series:
        reason = Reason.TRUNCATED if scan.rejected[Reason.TRUNCATED] else Reason.NOT_DICOM
        total = sum(scan.rejected.values())
        raise LoadError(reason, f"none of the {total} file(s) is a readable DICOM object", files=total)
    return scan


def _input_warnings(scan: _Scan) -> list[str]:
    # A cut file is refused wherever it lies: cut inside its header it cannot even be placed in a
    # series, and any cut file means the transfer was damaged and the study should be sent again.
    truncated = scan.rejected[Reason.TRUNCATED] + sum(i.truncated for i in scan.instances)
    if truncated:
        raise LoadError(
            Reason.TRUNCATED, f"{truncated} DICOM file(s) end before their declared content", files=truncated,
        )
    not_dicom = scan.rejected[Reason.NOT_DICOM]
    return [f"ignored {not_dicom} file(s) that are not DICOM"] if not_dicom else []


def _require_one_study(scan: _Scan) -> None:
    # Objects without a StudyInstanceUID (a DICOMDIR, stripped headers) join whichever study is there.
    studies = {study for study, _ in scan.series if study}
    if len(studies) > 1:
        raise LoadError(
            Reason.NOT_ONE_STUDY, f"the input holds {len(studies)} studies (StudyInstanceUID); send one",
            n_studies=len(studies),
        )


def _choose_series(scan: _Scan) -> tuple[list[Instance], list[str]]:
    images = {key: group for key, group in scan.series.items() if _usable(group)}
    skipped = Counter(i.skip_reason for i in scan.instances if i.skip_reason is not None)
    if not images:
        if not any(i.has_pixel_data or i.truncated for i in scan.instances):
            raise LoadError(Reason.NO_PIXEL_DATA, "no object in the input has Pixel Data", skipped=dict(skipped))
        raise LoadError(
            Reason.NO_CT_SERIES, f"no image series remains after skipping {_describe(skipped)}", skipped=dict(skipped),
        )
    ct = {key: group for key, group in images.items() if any(i.is_ct for i in _usable(group))}
    if not ct:
        largest = max(images.values(), key=lambda group: len(_usable(group)))
        modality = _usable(largest)[0].modality or "unknown"
        raise LoadError(Reason.NOT_CT, f"the image series is {modality}, not CT", modality=modality)
    ranked = sorted(ct.values(), key=_preference)
    warnings = [f"skipped {_describe(skipped)}"] if skipped else []
    if len(ranked) > 1:
        info = _series_info(ranked[0])
        thickness = f", {info.slice_thickness:g} mm thick" if info.slice_thickness is not None else ""
        warnings.append(
            f"chose series {info.series_instance_uid} ({info.orientation}, {info.n_frames} slices{thickness}) "
            f"among {len(ranked)} CT series; name another with series_instance_uid"
        )
    return ranked[0], warnings


def _named_series(scan: _Scan, series_instance_uid: str) -> list[Instance]:
    groups = [group for (_, series), group in scan.series.items() if series == series_instance_uid]
    if not groups:
        raise LoadError(Reason.SERIES_NOT_FOUND, "the named SeriesInstanceUID is not in the input")
    group = [instance for g in groups for instance in g]
    usable = _usable(group)
    if not usable:
        reasons = Counter(i.skip_reason for i in group)
        if not any(i.has_pixel_data or i.truncated for i in group):
            raise LoadError(Reason.NO_PIXEL_DATA, "the named series has no Pixel Data")
        raise LoadError(Reason.NO_CT_SERIES, f"the named series holds only {_describe(reasons)}")
    if not any(i.is_ct for i in usable):
        modality = usable[0].modality or "unknown"
        raise LoadError(Reason.NOT_CT, f"the named series is {modality}, not CT", modality=modality)
    return group


def _image_frames(group: list[Instance], warnings: list[str]) -> list[Frame]:
    usable = [i for i in _usable(group) if i.is_ct]
    if any(not i.modality for i in usable):
        warnings.append("Modality is missing; taken as CT from the SOP Class")
    frames = [frame for instance in usable for frame in frames_of(instance)]
    localizer_frames = [f for f in frames if f.is_localizer]
    if localizer_frames:
        warnings.append(f"skipped {len(localizer_frames)} localizer frame(s) inside multi-frame objects")
    return [f for f in frames if not f.is_localizer]


def _fill_grid(hu: np.ndarray, plan: SlicePlan) -> tuple[np.ndarray, list[str]]:
    uids = [f.instance.sop_instance_uid for f in plan.frames]
    if plan.grid_lower is None:
        return hu, uids
    assert plan.grid_weight is not None
    out = np.empty((plan.n_slices, *hu.shape[1:]), hu.dtype)
    grid_uids = []
    for k, (lower, weight) in enumerate(zip(plan.grid_lower, plan.grid_weight)):
        if weight == 0:
            out[k] = hu[lower]
            grid_uids.append(uids[lower])
        else:
            blend = (1 - weight) * hu[lower].astype(np.float32) + weight * hu[lower + 1]
            out[k] = np.rint(blend) if out.dtype.kind == "i" else blend
            grid_uids.append("")
    return out, grid_uids


def _usable(group: list[Instance]) -> list[Instance]:
    return [i for i in group if i.skip_reason is None]


def _preference(group: list[Instance]) -> tuple[object, ...]:
    info = _series_info(group)
    n_frames = sum(i.n_frames for i in _usable(group))
    thickness = info.slice_thickness if info.slice_thickness is not None else float("inf")
    return (info.orientation != "axial", -n_frames, thickness, info.series_number or 0, info.series_instance_uid)


def _describe(reasons: Counter) -> str:
    return ", ".join(f"{count} {reason} object(s)" for reason, count in sorted(reasons.items())) or "nothing"


def _series_info(group: list[Instance]) -> SeriesInfo:
    usable = _usable(group)
    first = (usable or group)[0]
    ds = first.dataset
    frame = frames_of(first)[0] if first.has_pixel_data or first.truncated else None
    reasons = Counter(i.skip_reason for i in group)
    kernel = ds.get("ConvolutionKernel") or ""
    return SeriesInfo(
        series_instance_uid=first.series_instance_uid,
        study_instance_uid=first.study_instance_uid,
        modality=first.modality,
        sop_class_uid=first.sop_class_uid,
        series_description=str(ds.get("SeriesDescription") or ""),
        body_part_examined=str(ds.get("BodyPartExamined") or ""),
        image_type=image_type_of(ds),
        n_instances=len(group),
        rows=_int_or_none(ds.get("Rows")),
        columns=_int_or_none(ds.get("Columns")),
        pixel_spacing=frame.pixel_spacing if frame else None,
        slice_thickness=frame.slice_thickness if frame else None,
        convolution_kernel="\\".join(map(str, kernel)) if isinstance(kernel, MultiValue) else str(kernel),
        orientation=orientation_label(frame.orientation) if frame else None,
        is_localizer=reasons.get(SkipReason.LOCALIZER, 0) == len(group),
        is_derived=bool(image_type_of(ds)) and image_type_of(ds)[0] == "DERIVED",
        has_pixel_data=any(i.has_pixel_data for i in group),
        skip_reason=None if usable else reasons.most_common(1)[0][0],
        series_number=_int_or_none(ds.get("SeriesNumber")),
        n_frames=sum(i.n_frames for i in group if i.has_pixel_data),
        transfer_syntax_uid=first.transfer_syntax_uid,
    )


def _meta(frame: Frame, sop_instance_uids: list[str]) -> VolumeMeta:
    ds = frame.instance.dataset

    def text(keyword: str) -> str:
        value = ds.get(keyword)
        if value is None:
            return ""
        return "\\".join(map(str, value)) if isinstance(value, MultiValue) else str(value)

    return VolumeMeta(
        study_instance_uid=frame.instance.study_instance_uid,
        series_instance_uid=frame.instance.series_instance_uid,
        frame_of_reference_uid=text("FrameOfReferenceUID"),
        sop_class_uid=frame.instance.sop_class_uid,
        sop_instance_uids=sop_instance_uids,
        patient_id=text("PatientID"),
        patient_name=text("PatientName"),
        patient_birth_date=text("PatientBirthDate"),
        patient_sex=text("PatientSex"),
        study_date=text("StudyDate"),
        study_time=text("StudyTime"),
        study_id=text("StudyID"),
        accession_number=text("AccessionNumber"),
        study_description=text("StudyDescription"),
        series_description=text("SeriesDescription"),
        series_number=_int_or_none(ds.get("SeriesNumber")),
        modality=frame.instance.modality or "CT",
        body_part_examined=text("BodyPartExamined"),
        protocol_name=text("ProtocolName"),
        manufacturer=text("Manufacturer"),
        convolution_kernel=text("ConvolutionKernel"),
        slice_thickness=frame.slice_thickness,
        image_type=image_type_of(ds),
        transfer_syntax_uid=frame.instance.transfer_syntax_uid,
    )


def _int_or_none(value: object) -> int | None:
    try:
        return int(value) if value not in (None, "") else None  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
