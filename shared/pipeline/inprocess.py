"""The whole pipeline in one process, no queue, no database: for ``ctriage analyze``, tests and benches."""

from __future__ import annotations

from shared.contracts import STAGES, ChainState, GateRequest
from shared.pipeline.compose import report_from_state, write_report
from shared.pipeline.stages import advance, chain_ended
from shared.report import ReportV1
from shared.storage.base import ObjectStore


def analyze_in_process(*, store: ObjectStore, source_prefix: str, run_id: str, series_id: str | None = None) -> ReportV1:
    """Run gate, screen and localize on the instances under ``source_prefix``; store and return the report."""
    state = ChainState(run_id=run_id, series_id=series_id, gate_request=GateRequest(run_id=run_id, source_prefix=source_prefix))
    for stage in STAGES:
        state = advance(stage=stage, store=store, state=state)
        if chain_ended(state):
            break
    report = report_from_state(state)
    write_report(store, report)
    return report
