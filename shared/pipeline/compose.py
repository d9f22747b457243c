"""Compose the :class:`ReportV1` of a run from the chain's stage results, and store it as JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from shared.contracts import ChainState, RunArtifacts
from shared.report import GateSummary, ReportStatus, ReportV1
from shared.storage.base import ObjectStore


def report_from_state(state: ChainState, *, created_at: datetime | None = None) -> ReportV1:
    """The report of a chain that ended: rejected by the gate, or done after the localizer."""
    gate, screen, localize = state.gate, state.screen, state.localize
    if gate is None or (gate.accepted and localize is None):
        raise ValueError("the chain has not ended: no gate result, or accepted but not localized")
    keys = RunArtifacts.for_run(state.run_id)
    report = ReportV1(
        status=ReportStatus.done if gate.accepted else ReportStatus.rejected,
        reason=gate.reason, reason_detail=gate.reason_detail,
        run_id=state.run_id, series_id=state.series_id,
        study_instance_uid=gate.volume.study_instance_uid if gate.volume else None,
        series_instance_uid=gate.volume.series_instance_uid if gate.volume else None,
        gate=GateSummary(accepted=gate.accepted, method=gate.method, checks=gate.checks),
        models=[result.model for result in (gate, screen, localize) if result is not None],
        timings=dict(state.timings),
        artifacts={"report": keys.report},
        created_at=created_at or datetime.now(timezone.utc),
    )
    if gate.accepted:
        report.artifacts.update(volume=keys.volume, organs=keys.organs)
    if screen is not None:
        report.artifacts["anomaly"] = screen.anomaly_key
    if localize is not None:
        report.verdict = localize.verdict
        report.findings = localize.findings
        report.score, report.threshold, report.score_unit = localize.score, localize.threshold, localize.score_unit
        report.voxel_threshold = localize.voxel_threshold
        report.artifacts.update(localize.artifacts)
        report.outputs = list(localize.outputs)
    return report


def write_report(store: ObjectStore, report: ReportV1) -> str:
    """Store ``report`` as ``runs/{run_id}/report.json``; returns the key."""
    key = RunArtifacts.for_run(report.run_id or "unknown").report
    body = json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=True).encode()
    store.put_bytes(key, body, content_type="application/json")
    return key
