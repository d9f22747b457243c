"""Run bookkeeping: an :class:`AnalysisRun`'s state per stage, timings, model versions and outcome.

``AnalysisRun.stages`` holds, per stage name, ``{"state", "attempts", "lost", "started_at",
"finished_at", "seconds", "detail"}``; stage states are ``pending``, ``queued``, ``running``,
``retrying``, ``done``, ``failed`` and ``skipped``. Every terminal run (``done``, ``rejected``,
``failed``) owns exactly one :class:`Report` row (unique ``run_pk``), written by :func:`record_report`,
which updates that row in place when a stage is delivered twice.

Callers pass a session and commit; these functions only change rows.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.contracts import STAGES, Stage
from shared.db.models import TERMINAL_STATES, AnalysisRun, Report, RunState
from shared.report import FailureReason, ModelInfo, ReportStatus, ReportV1

PENDING, QUEUED, RUNNING, RETRYING, DONE, FAILED, SKIPPED = (
    "pending", "queued", "running", "retrying", "done", "failed", "skipped",
)


def create_run(*, session: Session, series_pk: str, requested_by: str | None = None) -> AnalysisRun:
    """A new run in state ``queued``, its first stage queued and the others pending."""
    stages = {stage.value: {"state": QUEUED if stage is Stage.gate else PENDING, "attempts": 0} for stage in STAGES}
    run = AnalysisRun(series_pk=series_pk, state=RunState.queued, stage=Stage.gate.value, stages=stages, requested_by=requested_by)
    session.add(run)
    session.flush()
    return run


def start_stage(*, session: Session, run_id: str, stage: Stage, max_lost: int) -> bool:
    """Mark ``stage`` running; False when the run is gone or finished (the delivery is a duplicate).

    A stage found ``running`` was started by a worker that died without finishing it (the broker
    redelivered the message); after ``max_lost`` such losses the run fails with ``worker_lost``.
    """
    run = _locked_run(session, run_id)
    if run is None or run.state in TERMINAL_STATES:
        return False
    entry = dict(run.stages.get(stage.value, {}))
    if entry.get("state") == RUNNING:
        entry["lost"] = entry.get("lost", 0) + 1
        if entry["lost"] > max_lost:
            _set_stage(run, stage, {**entry, "state": FAILED, "finished_at": _now()})
            fail_run(
                session=session, run_id=run_id, stage=stage, reason=FailureReason.worker_lost,
                detail=f"the {stage.value} worker died {entry['lost']} times running this stage",
            )
            return False
    now = _now()
    _set_stage(run, stage, {**entry, "state": RUNNING, "attempts": entry.get("attempts", 0) + 1, "started_at": now, "detail": None})
    run.state = RunState.running
    run.stage = stage.value
    run.started_at = run.started_at or datetime.now(timezone.utc)
    return True


def retry_stage(*, session: Session, run_id: str, stage: Stage, detail: str) -> None:
    """Note that ``stage`` hit a transient error and will run again."""
    run = _locked_run(session, run_id)
    if run is None or run.state in TERMINAL_STATES:
        return
    _set_stage(run, stage, {**run.stages.get(stage.value, {}), "state": RETRYING, "detail": detail})


def finish_stage(*, session: Session, run_id: str, stage: Stage, seconds: float, model: ModelInfo | None = None) -> None:
    """Mark ``stage`` done with its duration and queue the next one."""
    run = _locked_run(session, run_id)
    if run is None or run.state in TERMINAL_STATES:
        return
    _set_stage(run, stage, {**run.stages.get(stage.value, {}), "state": DONE, "finished_at": _now(), "seconds": round(seconds, 3)})
    following = STAGES[STAGES.index(stage) + 1] if stage is not STAGES[-1] else None
    if following is not None:
        _set_stage(run, following, {**run.stages.get(following.value, {}), "state": QUEUED})
        run.stage = following.value
    if model is not None:
        run.model_versions = {**run.model_versions, stage.value: model.model_dump(mode="json")}


def record_report(*, session: Session, run_id: str, report: ReportV1, stage: Stage | None = None, seconds: float | None = None) -> Report | None:
    """End the run with ``report`` (its status is the run's terminal state); one Report row per run."""
    run = _locked_run(session, run_id)
    if run is None:
        return None
    now = _now()
    if stage is not None:
        entry = run.stages.get(stage.value, {})
        state = FAILED if report.status is ReportStatus.failed else DONE
        _set_stage(run, stage, {**entry, "state": state, "finished_at": now, **({"seconds": round(seconds, 3)} if seconds is not None else {})})
    for later in STAGES[STAGES.index(stage) + 1:] if stage is not None else ():
        _set_stage(run, later, {**run.stages.get(later.value, {}), "state": SKIPPED})
    for model in report.models:
        run.model_versions = {**run.model_versions, model.stage: model.model_dump(mode="json")}
    run.state = RunState(report.status.value)
    run.reason = report.reason
    run.reason_detail = report.reason_detail
    run.finished_at = run.finished_at or datetime.now(timezone.utc)
    return _upsert_report(session, run, report)


def fail_run(*, session: Session, run_id: str, stage: Stage | None, reason: FailureReason | str, detail: str) -> Report | None:
    """End a run that is not yet terminal as ``failed`` with a reason code; no-op on terminal runs."""
    run = session.get(AnalysisRun, run_id)
    if run is None or run.state in TERMINAL_STATES:
        return None
    report = ReportV1(
        status=ReportStatus.failed, reason=str(reason.value if isinstance(reason, FailureReason) else reason),
        reason_detail=detail, run_id=run_id, series_id=run.series_pk, created_at=datetime.now(timezone.utc),
        timings=stage_seconds(run),
    )
    return record_report(session=session, run_id=run_id, report=report, stage=stage)


def stale_after_seconds(*, stage_time_limit_seconds: int) -> float:
    """How long a stage may stay ``running``/``retrying`` before its worker is presumed lost.

    Longer than a Redis redelivery (visibility timeout, see :mod:`shared.queue.app`), so a real
    broker gets the chance to hand the stage to another worker first.
    """
    return 2 * stage_time_limit_seconds + 120


def fail_if_stale(*, session: Session, run: AnalysisRun, stale_after: float, now: datetime | None = None) -> bool:
    """Fail ``run`` with ``worker_lost`` when its current stage started more than ``stale_after`` s ago.

    Without this a run whose worker vanished (killed, host lost, a message dropped by the embedded
    transport) would never end; a stage still legitimately running is never older than its time limit.
    """
    if run.state in TERMINAL_STATES or not run.stage:
        return False
    entry = run.stages.get(run.stage, {})
    if entry.get("state") not in (RUNNING, RETRYING) or not entry.get("started_at"):
        return False
    now = now or datetime.now(timezone.utc)
    age = (now - datetime.fromisoformat(entry["started_at"])).total_seconds()
    if age <= stale_after:
        return False
    fail_run(
        session=session, run_id=run.id, stage=Stage(run.stage), reason=FailureReason.worker_lost,
        detail=f"the {run.stage} stage started {age:.0f} s ago and never finished (limit {stale_after:.0f} s)",
    )
    return True


def stage_seconds(run: AnalysisRun) -> dict[str, float]:
    """Seconds of each finished stage of ``run``."""
    return {name: entry["seconds"] for name, entry in run.stages.items() if entry.get("seconds") is not None}


def _upsert_report(session: Session, run: AnalysisRun, report: ReportV1) -> Report:
    body = report.model_dump(mode="json")
    fields = {"series_pk": run.series_pk, "schema_version": report.schema_version, "status": report.status.value,
              "verdict": report.verdict.value if report.verdict else None, "body": body}
    row = session.scalars(select(Report).where(Report.run_pk == run.id)).one_or_none()
    if row is None:
        try:
            with session.begin_nested():
                row = Report(run_pk=run.id, **fields)
                session.add(row)
            return row
        except IntegrityError:  # another delivery of the same stage inserted it first
            row = session.scalars(select(Report).where(Report.run_pk == run.id)).one()
    for name, value in fields.items():
        setattr(row, name, value)
    return row


def _locked_run(session: Session, run_id: str) -> AnalysisRun | None:
    # Row lock on PostgreSQL so two deliveries of one stage serialise their bookkeeping; SQLite
    # serialises writers anyway.
    return session.get(AnalysisRun, run_id, with_for_update=True, populate_existing=True)


def _set_stage(run: AnalysisRun, stage: Stage, entry: dict) -> None:
    # A new dict object: SQLAlchemy only notices JSON changes by assignment.
    run.stages = {**run.stages, stage.value: entry}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
