"""One stage as a worker runs it: the pure step of :mod:`shared.pipeline.stages` wrapped in run
bookkeeping. Celery-free, so tests can deliver a stage twice without a broker.

Order matters for idempotency: artifacts are written (same keys every time) before the database
records the stage as done, and a delivery that finds its run terminal does nothing. A stage killed
halfway is simply run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from shared.contracts import ChainState, Stage
from shared.db.session import transaction
from shared.export.service import export_run_results
from shared.pipeline import runs
from shared.pipeline.compose import report_from_state, write_report
from shared.pipeline.stages import advance, chain_ended
from shared.report import FailureReason, ReportStatus, ReportV1
from shared.storage.base import ObjectNotFound, ObjectStore, StorageError

Sessions = Callable[[], Session]


@dataclass
class StageOutcome:
    """The chain state after a stage, and whether the next stage should run."""

    state: ChainState
    proceed: bool


def execute_stage(*, stage: Stage, payload: dict, store: ObjectStore, sessions: Sessions, max_lost: int) -> StageOutcome:
    """Run ``stage`` for the run in ``payload`` (a :class:`ChainState` as JSON), recording it on the run."""
    state = ChainState.model_validate(payload)
    with transaction(sessions) as session:
        if not runs.start_stage(session=session, run_id=state.run_id, stage=stage, max_lost=max_lost):
            return StageOutcome(state=state, proceed=False)
    state = advance(stage=stage, store=store, state=state)
    seconds = state.timings[stage.value]
    if chain_ended(state):
        report = report_from_state(state)
        write_report(store, report)
        with transaction(sessions) as session:
            runs.record_report(session=session, run_id=state.run_id, report=report, stage=stage, seconds=seconds)
        if report.status is ReportStatus.done:  # results back to PACS, on the export queue: never waited for here
            export_run_results(sessions=sessions, run_id=state.run_id)
        return StageOutcome(state=state, proceed=False)
    result = {Stage.gate: state.gate, Stage.screen: state.screen}[stage]
    with transaction(sessions) as session:
        runs.finish_stage(session=session, run_id=state.run_id, stage=stage, seconds=seconds, model=result.model if result else None)
    return StageOutcome(state=state, proceed=True)


def fail_stage(*, stage: Stage, payload: dict, error: BaseException, store: ObjectStore | None, sessions: Sessions) -> None:
    """End the run of ``payload`` as failed because ``stage`` raised ``error`` for the last time."""
    run_id = str(payload.get("run_id", ""))
    detail = f"{stage.value} stage: {type(error).__name__}: {error}"[:2000]
    with transaction(sessions) as session:
        row = runs.fail_run(session=session, run_id=run_id, stage=stage, reason=failure_reason(error), detail=detail)
        body = dict(row.body) if row is not None else None
    if body is not None and store is not None:
        try:
            write_report(store, ReportV1.model_validate(body))
        except Exception:  # noqa: BLE001 - the database holds the outcome; the JSON copy is a convenience
            pass


def failure_reason(error: BaseException) -> FailureReason:
    """The stable failure code for an exception that ended a stage."""
    if isinstance(error, (SoftTimeLimitExceeded, TimeLimitExceeded)):
        return FailureReason.time_limit
    if isinstance(error, WorkerLostError):
        return FailureReason.worker_lost
    if isinstance(error, ObjectNotFound):
        return FailureReason.missing_artifact
    if isinstance(error, StorageError):
        return FailureReason.storage_unavailable
    if isinstance(error, DBAPIError):
        return FailureReason.database_unavailable
    if isinstance(error, BrokerError):
        return FailureReason.broker_unavailable
    return FailureReason.internal_error
