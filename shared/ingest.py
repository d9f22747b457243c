"""Receive DICOM into ctriage: validate with the DICOM loader, store the objects, record the rows.

Used by the REST upload (``POST /api/scans``, ``POST /inference/predict``) through
:func:`ingest_upload`, and by the PACS intake (C-STORE, STOW-RS) one object at a time through
:func:`ingest_instance`. Object-storage layout:

* ``studies/{StudyInstanceUID}/series/{SeriesInstanceUID}/{SOPInstanceUID}.dcm`` — every instance,
  byte for byte as received; ``Series.storage_prefix`` is the series folder, with its trailing ``/``
  (so a series whose UID extends another's is never listed with it).
* ``uploads/{series id}/{filename}`` — an uploaded zip as received (a single uploaded ``.dcm`` is
  its instance object; several files have no single original and are served as a zip of instances).

An instance already stored (same series, same SOPInstanceUID) is stored once. Nothing is committed:
the caller commits, so it can add its audit event to the same transaction.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.completeness import expected_reached, utcnow
from shared.config import Settings, get_settings
from shared.db.models import Instance, Patient, Series, Study, new_id
from shared.dicom.errors import LoadError, Reason
from shared.dicom.identity import InstanceIdentity, read_identity
from shared.dicom.instances import Instance as DicomInstance
from shared.dicom.instances import read_instance
from shared.dicom.reader import choose_series
from shared.dicom.sources import ZipLimits, is_zip_bytes, iter_dicom_sources
from shared.instance_index import index_statements
from shared.storage.base import ObjectInfo, ObjectStore

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")  # PS3.5 9.1: digits and dots, at most 64 characters
_MAX_EXPANSION = 8  # DICOM barely compresses (about 2:1 for CT); more than this is not a study
_IN_LIST_LIMIT = 500  # SQLite binds at most 999 (older builds) parameters: more UIDs than this load the series' list
_IDENTITY_HEAD_BYTES = 64 * 1024  # the UIDs lie in the first few KiB of an object (group 0020 comes before the pixels)
_STORE_THREADS = 8  # object writes wait on the disk (fsync) and hashlib releases the GIL: overlap them


class UnknownPatient(LookupError):
    """The upload names a patient record that does not exist."""


@dataclass(frozen=True)
class UploadedPart:
    """One uploaded file, already on local disk (the gateway streams each part to a temp file)."""

    filename: str
    path: Path
    size: int
    content_type: str | None = None


def series_prefix(study_uid: str, series_uid: str) -> str:
    """Object-storage folder of a series' instances (with its trailing ``/``)."""
    return f"studies/{study_uid}/series/{series_uid}/"


def ingest_upload(
    *,
    session: Session,
    store: ObjectStore,
    files: Iterable[UploadedPart],
    source: str,
    patient_id: str | None = None,
    description: str | None = None,
    settings: Settings | None = None,
) -> Series:
    """Validate an upload of one study (files and/or zips), store its CT series and record it; returns the series.

    Raises :class:`~shared.dicom.errors.LoadError` with the loader's reason when the upload is not
    one study with a CT series, and :class:`UnknownPatient` when ``patient_id`` names no record.
    ``patient_id`` is the API id of an existing patient; without it the study is linked to the
    patient with the same DICOM PatientID (created when new) — except for ``source="predict"``,
    which records no patient.
    """
    settings = settings or get_settings()
    parts = list(files)
    if not parts:
        raise LoadError(Reason.EMPTY_INPUT, "no files were uploaded")
    patient = _named_patient(session, patient_id)
    limits = ZipLimits(
        max_members=settings.max_zip_members,
        max_ratio=settings.max_zip_ratio,
        # Members are spilled to disk: bound what one upload may expand to there.
        max_total_bytes=min(ZipLimits.max_total_bytes, _MAX_EXPANSION * settings.max_upload_bytes),
    )
    series_id = new_id()  # the id the series gets if it is new: its original zip is stored under it
    with (
        tempfile.TemporaryDirectory(prefix="ctriage-ingest-", dir=_work_root(parts)) as workdir,
        ThreadPoolExecutor(max_workers=_STORE_THREADS, thread_name_prefix="ingest-store") as pool,
    ):
        # A zip sent alone is written while its members are checked, and removed if they are refused.
        zip_upload = _start_zip_original(store, pool, parts, series_id)
        try:
            instances, rejected = _read_headers(parts, limits=limits, workdir=Path(workdir))
            chosen = choose_ct_series(instances, rejected=rejected)
            series, new = _series_rows(session, chosen, source=source, patient=patient, new_series_id=series_id)
            stored = _store_instances(store, series.storage_prefix, new, pool=pool)
            zip_info = zip_upload.result() if zip_upload else None
        except BaseException:
            if zip_upload is not None:
                _discard(store, zip_upload)
            raise
        _add_instances(session, series, stored)
    if description is not None:
        series.description = description
    _record_original(store, series, parts, stored=stored, zip_info=zip_info, is_new=series.id == series_id)
    session.flush()
    return series


class IngestedInstance(NamedTuple):
    """What :func:`ingest_instance` did with one object."""

    series_id: str
    new: bool  # stored now (False: the series already held this SOPInstanceUID)
    expected_reached: bool = False  # the series now holds its expected instance count


def ingest_instance(
    *, db: Session | Connection, store: ObjectStore, name: str, data: bytes | Path, source: str, now: datetime | None = None,
    sha256: str | None = None,
) -> IngestedInstance:
    """Store one received DICOM object (C-STORE, STOW-RS) and record it in the transaction of ``db``.

    ``db`` is an ORM session or, as the intake passes it, a Connection: then an ORM session is only
    made for a series' first instance, whose rows come from the whole header.

    Raises :class:`~shared.dicom.errors.LoadError` when the object cannot be parsed or lacks valid
    UIDs. Any object kind is kept (localizers and reports too): choosing the CT series is the gate's job.
    ``sha256`` is the digest of ``data`` when the caller has it (computed while receiving; in-memory
    ``data`` only). A new instance also restarts its series' completeness clock at ``now`` (reopening a complete series,
    :mod:`shared.completeness`). This runs for every instance a PACS sends, so once its series exists it
    reads only the UIDs off the bytes (:func:`~shared.dicom.identity.read_identity`), builds no ORM
    objects and runs three statements on the driver (:mod:`shared.instance_index`): one indexed query
    (the series, and whether this SOPInstanceUID is stored), the instance row, and one UPDATE of the
    series that adds to its totals in SQL (exact when intakes of one series run at once) and reopens it.
    """
    identity = _identity(name, data)
    _check_uids(identity)
    # The transaction's connection, without the ORM's per-statement work.
    connection = db.connection() if isinstance(db, Session) else db
    sql = index_statements(connection.dialect)
    found = sql.known_instance.run(connection, {
        "study_uid": identity.study_instance_uid, "series_uid": identity.series_instance_uid,
        "sop_uid": identity.sop_instance_uid,
    })
    if found is not None and found[2] is not None:  # (series pk, storage prefix, patient pk, instance pk)
        series_pk, prefix, new = found[0], found[1], found[3] is None
    else:  # the series' first instance (or its study still lacks a patient): its rows need the whole header
        instance = identity if isinstance(identity, DicomInstance) else read_instance(name, data)
        series_pk, prefix, new = _first_instance_rows(db, instance, source=source)
    if not new:
        return IngestedInstance(series_pk, new=False)
    info = _put_instance(store, prefix, identity.sop_instance_uid, data, sha256=sha256)
    now = now or utcnow()
    sql.insert_instance.run(connection, {
        "series_pk": series_pk, "sop_instance_uid": identity.sop_instance_uid,
        "sop_class_uid": identity.sop_class_uid or None, "storage_key": info.key, "size_bytes": info.size,
        "sha256": info.sha256, "now": now,
    })
    row = sql.record_new_instance.run(connection, {"series_pk": series_pk, "added_bytes": info.size, "now": now})
    assert row is not None
    return IngestedInstance(series_pk, new=True, expected_reached=expected_reached(*row))


def _first_instance_rows(db: Session | Connection, instance: DicomInstance, *, source: str) -> tuple[str, str, bool]:
    """Patient, study and series rows from ``instance``'s header (ORM), flushed into ``db``'s transaction.

    Returns the series' pk and folder, and whether the series lacks the instance.
    """
    with contextlib.nullcontext(db) if isinstance(db, Session) else Session(bind=db) as session:
        series, missing = _series_rows(session, [instance], source=source, patient=None)
        session.flush()  # the ORM's pending rows go out before the driver's statements
        session.expire(series)  # its totals change next, in SQL
        return series.id, series.storage_prefix, bool(missing)


def _identity(name: str, data: bytes | Path) -> InstanceIdentity | DicomInstance:
    """The object's UIDs read off its first bytes; parsed by pydicom when that walk cannot tell (its errors then)."""
    if isinstance(data, Path):
        with open(data, "rb") as handle:
            head = handle.read(_IDENTITY_HEAD_BYTES)
    else:
        head = data
    return read_identity(head) or read_instance(name, data)


def choose_ct_series(instances: Sequence[DicomInstance], *, rejected: Counter[Reason] | None = None) -> list[DicomInstance]:
    """The instances of the upload's CT image series, chosen as the DICOM loader chooses, or its reason why none.

    ``rejected`` counts the objects whose header could not be read, by reason.
    """
    chosen, _warnings = choose_series(instances, rejected=rejected)
    for instance in chosen:
        _check_uids(instance)
    return chosen


def _work_root(parts: list[UploadedPart]) -> str:
    """Spill zip members next to the upload (same disk), not into a RAM-backed /tmp."""
    return str(parts[0].path.parent)


def _named_patient(session: Session, patient_id: str | None) -> Patient | None:
    if patient_id is None:
        return None
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise UnknownPatient(patient_id)
    return patient


def _read_headers(
    parts: list[UploadedPart], *, limits: ZipLimits, workdir: Path
) -> tuple[list[DicomInstance], Counter[Reason]]:
    """Parse the header of every object in the upload (zip members spilled to ``workdir`` one at a time)."""
    instances, rejected = [], Counter[Reason]()
    for index, (name, data) in enumerate(iter_dicom_sources([part.path for part in parts], limits=limits)):
        if not isinstance(data, Path):
            path = workdir / f"member-{index:06d}"
            path.write_bytes(data)
            data = path
        try:
            instances.append(read_instance(name, data))
        except LoadError as error:
            rejected[error.reason] += 1
    return instances, rejected


def _check_uids(instance: DicomInstance | InstanceIdentity) -> None:
    # UIDs become object keys: anything but digits and dots could escape the series folder.
    for keyword in ("study_instance_uid", "series_instance_uid", "sop_instance_uid"):
        value = getattr(instance, keyword)
        if not value or len(value) > 64 or not _UID.match(value):
            raise LoadError(Reason.NOT_DICOM, f"the object has no valid {keyword} (PS3.5 9.1)")


def _series_rows(
    session: Session, instances: list[DicomInstance], *, source: str, patient: Patient | None,
    new_series_id: str | None = None,
) -> tuple[Series, list[DicomInstance]]:
    """Upsert patient, study and series rows for ``instances`` (one series); returns the series and the instances it lacks."""
    first = instances[0]
    study = _study(session, first, patient=patient, link_patient=source != "predict")
    series = session.scalar(
        select(Series).where(Series.study_pk == study.id, Series.series_instance_uid == first.series_instance_uid)
    )
    if series is None:
        ds = first.dataset
        series = Series(
            id=new_series_id or new_id(),
            study=study,
            series_instance_uid=first.series_instance_uid,
            modality=first.modality or None,
            body_part_examined=_tag(ds, "BodyPartExamined", 64),
            series_description=_tag(ds, "SeriesDescription", 256),
            source=source,
            storage_prefix=series_prefix(first.study_instance_uid, first.series_instance_uid),
        )
        session.add(series)
        session.flush()
    received: dict[str, DicomInstance] = {}
    for instance in instances:
        received.setdefault(instance.sop_instance_uid, instance)  # the first of repeats
    known = set(session.scalars(
        select(Instance.sop_instance_uid).where(Instance.series_pk == series.id, Instance.sop_instance_uid.in_(received))
    )) if len(received) < _IN_LIST_LIMIT else set(
        session.scalars(select(Instance.sop_instance_uid).where(Instance.series_pk == series.id))
    )
    return series, [instance for uid, instance in received.items() if uid not in known]


def _add_instances(session: Session, series: Series, stored: list[tuple[DicomInstance, ObjectInfo]]) -> None:
    """Instance rows for the objects just stored, and the series' totals."""
    session.add_all(
        Instance(
            series_pk=series.id,
            sop_instance_uid=instance.sop_instance_uid,
            sop_class_uid=instance.sop_class_uid or None,
            storage_key=info.key,
            size_bytes=info.size,
            sha256=info.sha256,
        )
        for instance, info in stored
    )
    series.n_instances = (series.n_instances or 0) + len(stored)
    series.size_bytes = (series.size_bytes or 0) + sum(info.size for _, info in stored)
    session.flush()


def _store_instances(
    store: ObjectStore, prefix: str, instances: list[DicomInstance], *, pool: ThreadPoolExecutor | None = None
) -> list[tuple[DicomInstance, ObjectInfo]]:
    """Store every instance under ``prefix`` (concurrently in ``pool`` when given)."""

    def put(instance: DicomInstance) -> tuple[DicomInstance, ObjectInfo]:
        return instance, _put_instance(store, prefix, instance.sop_instance_uid, instance.source)

    if pool is None or len(instances) <= 1:
        return [put(instance) for instance in instances]
    return list(pool.map(put, instances))


def _put_instance(
    store: ObjectStore, prefix: str, sop_instance_uid: str, source: bytes | Path, *, sha256: str | None = None
) -> ObjectInfo:
    """Store one instance as ``{prefix}{SOPInstanceUID}.dcm``, byte for byte (``sha256``: the bytes' digest, if known)."""
    key = f"{prefix}{sop_instance_uid}.dcm"
    if isinstance(source, Path):
        return store.put_file(key, str(source), content_type="application/dicom")
    return store.put_bytes(key, source, content_type="application/dicom", sha256=sha256)


def _start_zip_original(
    store: ObjectStore, pool: ThreadPoolExecutor, parts: list[UploadedPart], series_id: str
) -> Future[ObjectInfo] | None:
    """Start storing the upload as ``uploads/{series_id}/{filename}`` when it is one zip, else None."""
    if len(parts) != 1:
        return None
    part = parts[0]
    with open(part.path, "rb") as handle:
        if not is_zip_bytes(handle.read(132)):
            return None
    return pool.submit(store.put_file, f"uploads/{series_id}/{part.filename}", str(part.path),
                       content_type="application/zip")


def _discard(store: ObjectStore, upload: Future[ObjectInfo]) -> None:
    """Remove an original stored for an upload that ended up not needing it."""
    try:
        info = upload.result()
    except Exception:  # noqa: BLE001 - nothing was stored
        return
    store.delete(info.key)


def _study(session: Session, instance: DicomInstance, *, patient: Patient | None, link_patient: bool) -> Study:
    """The study row of ``instance``, created (with its patient) when new."""
    study = session.scalar(select(Study).where(Study.study_instance_uid == instance.study_instance_uid))
    if study is None:
        ds = instance.dataset
        study = Study(
            study_instance_uid=instance.study_instance_uid,
            study_date=_tag(ds, "StudyDate", 8),
            study_description=_tag(ds, "StudyDescription", 256),
            accession_number=_tag(ds, "AccessionNumber", 64),
        )
        try:
            with session.begin_nested():
                session.add(study)
        except IntegrityError:  # another request created it meanwhile
            study = session.scalars(select(Study).where(Study.study_instance_uid == instance.study_instance_uid)).one()
    if patient is not None:
        study.patient = patient
    elif link_patient and study.patient_pk is None:
        study.patient = _patient_from_header(session, instance)
    return study


def _patient_from_header(session: Session, instance: DicomInstance) -> Patient | None:
    """The patient with the instance's DICOM PatientID, created from its tags when new; None without one."""
    ds = instance.dataset
    dicom_patient_id = _tag(ds, "PatientID", 64)
    if not dicom_patient_id:
        return None
    patient = session.scalar(select(Patient).where(Patient.patient_id == dicom_patient_id).limit(1))
    if patient is None:
        patient = Patient(
            patient_id=dicom_patient_id,
            name=_tag(ds, "PatientName", 256),
            birth_date=_tag(ds, "PatientBirthDate", 8),
            sex=_tag(ds, "PatientSex", 16),
        )
        session.add(patient)
    return patient


def _record_original(
    store: ObjectStore,
    series: Series,
    parts: list[UploadedPart],
    *,
    stored: list[tuple[DicomInstance, ObjectInfo]],
    zip_info: ObjectInfo | None,
    is_new: bool,
) -> None:
    """Record what GET /api/scans/{id}/file serves: the one file that holds the whole series, or none.

    A new series sent as one zip serves that zip; sent as one ``.dcm``, its instance object (the same
    bytes, stored once). A series built from several files or uploads serves a zip of its instances.
    """
    if not stored:  # a repeat of what was stored: whatever original the series had still covers it
        if zip_info is not None and zip_info.key != series.original_key:
            store.delete(zip_info.key)
        return
    previous = series.original_key
    series.original_key = series.original_filename = series.original_content_type = series.original_sha256 = None
    if is_new and len(parts) == 1:
        if zip_info is not None:
            info, content_type = zip_info, "application/zip"
        elif len(stored) == 1:
            info, content_type = stored[0][1], "application/dicom"
        else:
            info, content_type = None, None
        if info is not None:
            series.original_key, series.original_sha256 = info.key, info.sha256
            series.original_filename, series.original_content_type = parts[0].filename, content_type
    elif zip_info is not None:
        store.delete(zip_info.key)  # the series spans several uploads: no single original
    if previous and previous.startswith("uploads/") and previous != series.original_key:
        store.delete(previous)


def _tag(ds: object, keyword: str, max_length: int) -> str | None:
    """A header attribute as text, cut to the column's length; None when absent or empty."""
    try:
        value = getattr(ds, keyword, None)
    except Exception:  # a malformed value must not refuse the study
        return None
    if value is None:
        return None
    text = str(value).strip().strip("\x00")
    return text[:max_length] or None


__all__ = [
    "IngestedInstance",
    "UnknownPatient",
    "UploadedPart",
    "choose_ct_series",
    "ingest_instance",
    "ingest_upload",
    "series_prefix",
]
