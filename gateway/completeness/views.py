"""``/api/scans/{scan_id}/completeness`` (read) and ``/api/scans/{scan_id}/expected-instances`` (set)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from gateway.audit.service import record_event
from gateway.auth.dependencies import authorized
from gateway.auth.keys import Principal
from gateway.auth.permissions import Permission
from gateway.completeness.models import CompletenessOut, ExpectedInstances
from gateway.dependencies import SessionDep, SettingsDep
from gateway.problems import problems
from gateway.scans.views import scan_or_404
from shared.completeness import AutoAnalyzeRule, set_expected_instances

router = APIRouter(prefix="/api/scans", tags=["scans"])


@router.get("/{scan_id}/completeness", response_model=CompletenessOut, responses=problems(401, 403, 404),
            summary="Get a scan's completeness")
def get_completeness(scan_id: str, session: SessionDep, _reader: Annotated[Principal, authorized(Permission.read)]) -> CompletenessOut:
    """Instances stored so far and whether the series is complete (only series pushed by C-STORE or STOW-RS)."""
    return CompletenessOut.of(scan_or_404(session, scan_id))


@router.put("/{scan_id}/expected-instances", response_model=CompletenessOut, responses=problems(401, 403, 404, 422),
            summary="Set how many instances a scan will have")
def put_expected_instances(
    scan_id: str,
    body: ExpectedInstances,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, authorized(Permission.upload)],
) -> CompletenessOut:
    """The series is complete as soon as this many instances are stored (at once if they already are), not after the quiet period."""
    series = scan_or_404(session, scan_id)
    record_event(session=session, api_key_id=principal.key_id, action="scan.expected_instances", resource_type="scan",
                 resource_id=series.id, detail={"expected_instances": body.expected_instances})
    # A broker outage does not fail this request: the series is then completed by the receiver's scanner later.
    completion = set_expected_instances(
        session=session, series=series, expected=body.expected_instances, rule=AutoAnalyzeRule.from_settings(settings)
    )
    session.refresh(series)
    return CompletenessOut.of(series, run_id=completion.run.id if completion.run is not None else None)
