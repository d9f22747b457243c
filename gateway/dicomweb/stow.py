"""STOW-RS (PS3.18 10.5): store each received part through the PACS intake and answer with the Store Instances Response.

Response (PS3.18 10.5.3): HTTP 200 when every instance is stored (or was already), 202 when some
failed, 409 when none could be stored; the body lists the stored instances in ReferencedSOPSequence
(0008,1199) and the others in FailedSOPSequence (0008,1198) with their Failure Reason (0008,1197),
a C-STORE status code (PS3.4 B.2.3). No Retrieve URL is given: ctriage serves no WADO-RS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from python_multipart.multipart import parse_options_header
from sqlalchemy.orm import Session, sessionmaker

from gateway.dicomweb.dicom_json import attribute, dataset
from gateway.dicomweb.multipart import DICOM_MEDIA_TYPE, ReceivedPart
from gateway.dimse.commands import Status
from gateway.dimse.intake import InstanceIntake
from shared.completeness import AutoAnalyzeRule, complete_if_expected
from shared.db.models import Series
from shared.dicom.errors import LoadError
from shared.dicom.instances import read_instance

# Data Set does not match SOP Class range (PS3.4 B.2.3 A9xx): the instance is not of the study in the URL.
STUDY_UID_MISMATCH = 0xA901


@dataclass
class StowOutcome:
    """The HTTP status and DICOM JSON body of a Store Instances Response, and what it stored."""

    referenced: list[tuple[str, str]] = field(default_factory=list)  # (SOP Class UID, SOP Instance UID)
    failed: list[tuple[str | None, str | None, int]] = field(default_factory=list)  # ... and the Failure Reason
    series_ids: set[str] = field(default_factory=set)

    @property
    def status_code(self) -> int:
        """200 all stored, 409 none stored, 202 some of each (PS3.18 Table 10.5.3-1)."""
        if not self.failed:
            return 200
        return 409 if not self.referenced else 202

    def body(self) -> dict[str, Any]:
        """The response data set (PS3.18 Table 10.5.3-3)."""
        attributes = []
        if self.failed:
            attributes.append(attribute("FailedSOPSequence", *(
                dataset(*_sop_reference(sop_class, sop_instance), attribute("FailureReason", reason))
                for sop_class, sop_instance, reason in self.failed
            )))
        if self.referenced:
            attributes.append(attribute("ReferencedSOPSequence", *(
                dataset(*_sop_reference(sop_class, sop_instance)) for sop_class, sop_instance in self.referenced
            )))
        return dataset(*attributes)


def store_instances(
    *,
    intake: InstanceIntake,
    session_factory: sessionmaker[Session],
    parts: list[ReceivedPart],
    study_uid: str | None,
    rule: AutoAnalyzeRule,
) -> StowOutcome:
    """Store every part (in order) and complete the series that now hold their expected instance count."""
    outcome = StowOutcome()
    reached: set[str] = set()
    for part in parts:
        media_type, _ = parse_options_header(part.content_type)
        if media_type != DICOM_MEDIA_TYPE:
            outcome.failed.append((None, None, Status.CANNOT_UNDERSTAND))
            continue
        try:
            header = read_instance(f"part {part.index + 1}", part.path)
        except LoadError:
            outcome.failed.append((None, None, Status.CANNOT_UNDERSTAND))
            continue
        sop = (header.sop_class_uid or None, header.sop_instance_uid or None)
        if study_uid is not None and header.study_instance_uid != study_uid:
            outcome.failed.append((*sop, STUDY_UID_MISMATCH))
            continue
        receipt = intake.receive(name=f"part {part.index + 1}", data=part.path, sop_class_uid=header.sop_class_uid)
        if not receipt.ok:
            outcome.failed.append((*sop, receipt.status))
            continue
        outcome.referenced.append((header.sop_class_uid, header.sop_instance_uid))
        assert receipt.series_id is not None
        outcome.series_ids.add(receipt.series_id)
        if receipt.expected_reached:
            reached.add(receipt.series_id)
    for series_id in reached:
        with session_factory() as session:
            series = session.get(Series, series_id)
            if series is not None:
                complete_if_expected(session=session, series=series, rule=rule)
    return outcome


def _sop_reference(sop_class: str | None, sop_instance: str | None) -> list[tuple[str, dict[str, Any]]]:
    return [attribute("ReferencedSOPClassUID", sop_class), attribute("ReferencedSOPInstanceUID", sop_instance)]
