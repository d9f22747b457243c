"""Start an analysis: create the run and send the Celery chain ``gate -> screen -> localize``."""

from __future__ import annotations

import logging

from celery import chain
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.orm import Session

from shared.contracts import STAGES, ChainState, GateRequest, Stage
from shared.db.models import AnalysisRun, Series
from shared.pipeline import runs
from shared.queue.app import PUBLISH_RETRY_POLICY, TASK_NAMES, celery_app
from shared.report import FailureReason

log = logging.getLogger(__name__)


def enqueue_analysis(*, session: Session, series: Series, requested_by: str | None = None) -> AnalysisRun:
    """Create a queued run of ``series``, commit it and send its chain; returns the run.

    If the broker cannot take the chain after a few retries, the run is committed as ``failed`` with
    reason ``broker_unavailable`` (so no run waits forever) and :class:`kombu.exceptions.OperationalError`
    is raised for the caller to answer 503.
    """
    run = runs.create_run(session=session, series_pk=series.id, requested_by=requested_by)
    session.commit()
    state = ChainState(run_id=run.id, series_id=series.id, gate_request=GateRequest(run_id=run.id, source_prefix=series.storage_prefix))
    try:
        analysis_chain(state).apply_async(retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception as error:  # noqa: BLE001 - any publish failure leaves the run unreachable by workers
        log.error("run %s: could not enqueue: %s", run.id, type(error).__name__)
        detail = f"{type(error).__name__}: {error}"[:500]
        runs.fail_run(session=session, run_id=run.id, stage=Stage.gate, reason=FailureReason.broker_unavailable, detail=detail)
        session.commit()
        if isinstance(error, BrokerError):
            raise
        raise BrokerError(detail) from error
    return run


def analysis_chain(state: ChainState) -> chain:
    """The chain of the three stage tasks, each on its own queue, starting from ``state``."""
    first, *rest = STAGES
    signatures = [celery_app.signature(TASK_NAMES[first], args=(state.model_dump(mode="json"),), queue=first.value)]
    signatures += [celery_app.signature(TASK_NAMES[stage], queue=stage.value) for stage in rest]
    return chain(*signatures)
