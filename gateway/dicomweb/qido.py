"""QIDO-RS (PS3.18 10.6): search the received studies and series; results in the DICOM JSON Model.

Matching (PS3.4 C.2.2.2, PS3.18 8.3.4): UIDs match a single value or a list (``,`` or ``\\``
separated); dates a single date or a range (``20240101-20240131``, ``-2024``, ``2024-``); other strings
a single value, with ``*`` and ``?`` wildcards; person names ignore case. Series analysed through
``/inference/predict`` (no patient record, research runs) are not part of what a PACS can find.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, distinct, func, select
from sqlalchemy.orm import Session

from gateway.dicomweb.dicom_json import attribute, dataset
from shared.db.models import Patient, Series, Study

_PREDICT = "predict"
_HEX_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")


class QueryError(ValueError):
    """A query key or value QIDO-RS cannot match on (answered 400)."""


STUDY_KEYS: dict[str, tuple[Any, str]] = {
    "StudyInstanceUID": (Study.study_instance_uid, "uid"),
    "StudyDate": (Study.study_date, "date"),
    "AccessionNumber": (Study.accession_number, "text"),
    "StudyDescription": (Study.study_description, "text"),
    "PatientID": (Patient.patient_id, "text"),
    "PatientName": (Patient.name, "name"),
    "PatientBirthDate": (Patient.birth_date, "date"),
    "PatientSex": (Patient.sex, "text"),
    "ModalitiesInStudy": (Series.modality, "modality_in_study"),
}
SERIES_KEYS: dict[str, tuple[Any, str]] = {
    "SeriesInstanceUID": (Series.series_instance_uid, "uid"),
    "Modality": (Series.modality, "text"),
    "SeriesDescription": (Series.series_description, "text"),
    "BodyPartExamined": (Series.body_part_examined, "text"),
}
IGNORED_PARAMETERS = frozenset({"limit", "offset", "includefield", "fuzzymatching"})


def keyword_of(key: str) -> str:
    """The DICOM keyword a query key names: a keyword, or an 8 hex digit tag (PS3.18 8.3.4.1)."""
    if _HEX_TAG.match(key):
        from pydicom.datadict import keyword_for_tag

        return keyword_for_tag(int(key, 16)) or key
    return key


def parse_filters(params: list[tuple[str, str]], *, allowed: dict[str, tuple[Any, str]]) -> list[ColumnElement[bool]]:
    """SQL conditions for the query's matching keys; :class:`QueryError` for keys this level cannot match."""
    conditions = []
    for key, value in params:
        if key in IGNORED_PARAMETERS:
            continue
        keyword = keyword_of(key)
        if keyword not in allowed:
            raise QueryError(f"{key} is not a matching key here; supported: {', '.join(sorted(allowed))}")
        if value == "":
            continue  # universal matching (PS3.4 C.2.2.2.3): every value matches
        column, how = allowed[keyword]
        conditions.append(_condition(column, how, value))
    return conditions


def search_studies(*, session: Session, filters: list[ColumnElement[bool]], limit: int, offset: int) -> list[dict[str, Any]]:
    """Study-level results (PS3.18 Table 10.6.3-3), newest study first."""
    query = _studies().where(*filters).distinct().order_by(Study.study_date.desc(), Study.created_at.desc(), Study.id)
    studies = session.execute(query.with_only_columns(Study, Patient).limit(limit).offset(offset)).all()
    if not studies:
        return []
    totals = _study_totals(session, [study.id for study, _ in studies])
    return [_study_json(study, patient, *totals.get(study.id, (0, 0, []))) for study, patient in studies]


def search_series(
    *, session: Session, filters: list[ColumnElement[bool]], study_uid: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """Series-level results (PS3.18 Table 10.6.3-4), of one study when ``study_uid`` is given."""
    query = _studies().add_columns(Series).where(*filters)
    if study_uid is not None:
        query = query.where(Study.study_instance_uid == study_uid)
    rows = session.execute(
        query.with_only_columns(Study, Patient, Series)
        .order_by(Study.study_date.desc(), Study.created_at.desc(), Series.created_at, Series.id)
        .limit(limit).offset(offset)
    ).all()
    return [_series_json(study, patient, series, with_study=study_uid is None) for study, patient, series in rows]


def _studies() -> Select[Any]:
    """Studies with their patient and series, predict runs left out."""
    return (
        select(Study)
        .join(Series, Series.study_pk == Study.id)
        .outerjoin(Patient, Patient.id == Study.patient_pk)
        .where(Series.source != _PREDICT)
    )


def _study_totals(session: Session, study_ids: list[str]) -> dict[str, tuple[int, int, list[str]]]:
    """Per study: its series count, instance count and modalities."""
    rows = session.execute(
        select(Series.study_pk, func.count(distinct(Series.id)), func.coalesce(func.sum(Series.n_instances), 0))
        .where(Series.study_pk.in_(study_ids), Series.source != _PREDICT)
        .group_by(Series.study_pk)
    ).all()
    modalities: dict[str, set[str]] = {}
    for study_pk, modality in session.execute(
        select(Series.study_pk, Series.modality).where(Series.study_pk.in_(study_ids), Series.source != _PREDICT)
    ):
        if modality:
            modalities.setdefault(study_pk, set()).add(modality)
    return {study_pk: (int(n_series), int(n_instances), sorted(modalities.get(study_pk, ()))) for study_pk, n_series, n_instances in rows}


def _study_attributes(study: Study, patient: Patient | None) -> list[tuple[str, dict[str, Any]]]:
    return [
        attribute("StudyInstanceUID", study.study_instance_uid),
        attribute("StudyDate", study.study_date),
        attribute("AccessionNumber", study.accession_number),
        attribute("StudyDescription", study.study_description),
        attribute("PatientName", patient.name if patient else None),
        attribute("PatientID", patient.patient_id if patient else None),
        attribute("PatientBirthDate", patient.birth_date if patient else None),
        attribute("PatientSex", patient.sex if patient else None),
    ]


def _study_json(study: Study, patient: Patient | None, n_series: int, n_instances: int, modalities: list[str]) -> dict[str, Any]:
    return dataset(
        *_study_attributes(study, patient),
        attribute("ModalitiesInStudy", *modalities),
        attribute("NumberOfStudyRelatedSeries", n_series),
        attribute("NumberOfStudyRelatedInstances", n_instances),
    )


def _series_json(study: Study, patient: Patient | None, series: Series, *, with_study: bool) -> dict[str, Any]:
    study_part = _study_attributes(study, patient) if with_study else [attribute("StudyInstanceUID", study.study_instance_uid)]
    return dataset(
        *study_part,
        attribute("SeriesInstanceUID", series.series_instance_uid),
        attribute("Modality", series.modality),
        attribute("SeriesDescription", series.series_description),
        attribute("BodyPartExamined", series.body_part_examined),
        attribute("NumberOfSeriesRelatedInstances", series.n_instances),
    )


def _condition(column: Any, how: str, value: str) -> ColumnElement[bool]:
    if how == "uid":
        uids = [uid.strip() for uid in re.split(r"[,\\]", value) if uid.strip()]
        return column.in_(uids)
    if how == "date":
        return _date_condition(column, value)
    if how == "modality_in_study":
        modalities = [m.strip() for m in re.split(r"[,\\]", value) if m.strip()]
        return Study.id.in_(select(Series.study_pk).where(Series.modality.in_(modalities), Series.source != _PREDICT))
    if how == "name":
        return func.lower(column).like(_like_pattern(value.lower()), escape="\\")
    if "*" in value or "?" in value:
        return column.like(_like_pattern(value), escape="\\")
    return column == value


def _date_condition(column: Any, value: str) -> ColumnElement[bool]:
    """DA matching: one date, or a range with either end open (PS3.4 C.2.2.2.5)."""
    if "-" not in value:
        _check_date(value)
        return column == value
    start, _, end = value.partition("-")
    for bound in (start, end):
        if bound:
            _check_date(bound)
    bounds = [column >= start] if start else []
    bounds += [column <= end] if end else []
    if not bounds:
        raise QueryError("a date range needs at least one end")
    return and_(*bounds)


def _check_date(value: str) -> None:
    if not re.fullmatch(r"\d{8}", value):
        raise QueryError(f"{value!r} is not a DICOM date (YYYYMMDD)")


def _like_pattern(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


__all__ = ["SERIES_KEYS", "STUDY_KEYS", "QueryError", "parse_filters", "search_series", "search_studies"]
