"""Export jobs: one per (finished run, destination), tried on the ``export`` queue until sent or dead-lettered.

A job is ``pending`` until a worker claims a try (``sending``), then ``sent``, or ``pending`` again with
``next_attempt_at`` = now + base x 2^(tries - 1) (exponential backoff), or ``dead_letter`` after
``CTRIAGE_EXPORT_MAX_ATTEMPTS`` tries. Every state change is a conditional UPDATE, so concurrent
deliveries of one message, several export workers and a re-send meet safely on both databases.

Each message names the try it is for (the job's ``attempts`` when it was sent); a message for an
older try is a duplicate and does nothing. The database, not the broker, holds the schedule: the
export worker enqueues jobs whose next try is due (:func:`enqueue_due`), so a retry survives a worker
restart and a message lost by the embedded transport, and ETA messages never sit in a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.config import Settings, get_settings
from shared.db.models import ExportJob, ExportState, Report
from shared.db.session import transaction
from shared.export.artifacts import exported_artifact_keys
from shared.export.cstore import ExportError, send_cstore
from shared.export.destinations import CStoreDestination, configured_destinations, destination_of
from shared.export.stow import send_stow
from shared.queue.app import EXPORT_QUEUE, EXPORT_TASK, PUBLISH_RETRY_POLICY, celery_app
from shared.storage.base import ObjectStore

log = logging.getLogger(__name__)

Sessions = Callable[[], Session]


def lease_seconds(settings: Settings) -> float:
    """How long an enqueued or claimed try may go unanswered before the job is taken up again.

    Longer than any one try: an association plus a few objects, each bounded by the network timeout.
    """
    return 10 * settings.export_timeout_seconds + 60


def backoff_seconds(*, attempts: int, base: float) -> float:
    """The wait after the ``attempts``-th failed try: ``base``, then doubling."""
    return base * 2 ** max(0, attempts - 1)


def create_export_jobs(*, session: Session, run_id: str, settings: Settings) -> list[ExportJob]:
    """One pending job per configured destination for a ``done`` run with DICOM outputs (none already made)."""
    report = session.scalars(select(Report).where(Report.run_pk == run_id)).one_or_none()
    if report is None or report.status != "done" or not exported_artifact_keys(report.body.get("artifacts", {})):
        return []
    existing = {(kind, text) for kind, text in session.execute(
        select(ExportJob.kind, ExportJob.destination).where(ExportJob.run_pk == run_id))}
    due = _now() + timedelta(seconds=lease_seconds(settings))  # enqueued now; taken up again only if that is lost
    jobs = [
        ExportJob(run_pk=run_id, series_pk=report.series_pk, kind=kind, destination=str(destination), next_attempt_at=due)
        for kind, destination in configured_destinations(settings) if (kind, str(destination)) not in existing
    ]
    session.add_all(jobs)
    session.flush()
    return jobs


def export_run_results(*, sessions: Sessions, run_id: str) -> list[str]:
    """Create and enqueue the export jobs of a run that ended ``done``; returns their ids.

    Never raises: a misconfigured destination or an unreachable broker is logged and must not fail the
    analysis that has just succeeded (an unsent job is enqueued again by the export worker).
    """
    try:
        settings = get_settings()
        with transaction(sessions) as session:
            ids = [job.id for job in create_export_jobs(session=session, run_id=run_id, settings=settings)]
    except Exception as error:  # noqa: BLE001 - see the docstring
        log.error("run %s: export jobs not created: %s: %s", run_id, type(error).__name__, error)
        return []
    for export_id in ids:
        enqueue_export(export_id=export_id, attempt=0)
    return ids


def enqueue_export(*, export_id: str, attempt: int) -> bool:
    """Send the message for try ``attempt + 1`` of a job; False (logged) when the broker refused it."""
    try:
        celery_app.send_task(EXPORT_TASK, args=(export_id, attempt), queue=EXPORT_QUEUE,
                             retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception as error:  # noqa: BLE001 - the export worker's sweep enqueues it again after the lease
        log.warning("export %s: not enqueued: %s", export_id, type(error).__name__)
        return False
    return True


def run_export(*, export_id: str, attempt: int, sessions: Sessions, store: ObjectStore, settings: Settings) -> ExportState | None:
    """Make try ``attempt + 1`` of a job and record its outcome; None when the message is a duplicate."""
    with transaction(sessions) as session:
        claimed = session.execute(
            update(ExportJob).where(ExportJob.id == export_id, ExportJob.state == ExportState.pending, ExportJob.attempts == attempt)
            .values(state=ExportState.sending, attempts=attempt + 1, next_attempt_at=None)
        ).rowcount
        job = session.get(ExportJob, export_id) if claimed else None
        if job is None:
            return None
        kind, destination = job.kind, job.destination
        keys = exported_artifact_keys(session.scalars(select(Report.body).where(Report.run_pk == job.run_pk)).one().get("artifacts", {}))
    try:
        sent = deliver(kind=kind, destination=destination, objects=[store.get_bytes(key) for key in keys], settings=settings)
    except Exception as error:  # noqa: BLE001 - every failure of a try is recorded on the job, never raised
        return _record_failure(sessions=sessions, export_id=export_id, attempts=attempt + 1, error=error, settings=settings)
    with transaction(sessions) as session:
        session.execute(
            update(ExportJob).where(ExportJob.id == export_id, ExportJob.state == ExportState.sending)
            .values(state=ExportState.sent, n_objects=sent, sent_at=_now(), last_error=None)
        )
    log.info("export %s: %d objects sent to %s (try %d)", export_id, sent, destination, attempt + 1)
    return ExportState.sent


def deliver(*, kind: str, destination: str, objects: Sequence[bytes], settings: Settings) -> int:
    """Send ``objects`` to the destination a job names; returns how many went, or raises :class:`ExportError`."""
    target = destination_of(kind=kind, text=destination)
    if isinstance(target, CStoreDestination):
        return send_cstore(destination=target, objects=objects, calling_ae_title=settings.dicom_ae_title,
                           timeout_seconds=settings.export_timeout_seconds)
    return send_stow(destination=target, objects=objects, authorization=settings.export_stow_authorization,
                     timeout_seconds=settings.export_timeout_seconds)


def enqueue_due(*, sessions: Sessions, settings: Settings) -> int:
    """Enqueue every pending job whose next try is due, and take up tries whose worker vanished; returns how many."""
    now = _now()
    lease = timedelta(seconds=lease_seconds(settings))
    with transaction(sessions) as session:
        _release_stale_tries(session=session, now=now, stale_before=now - lease, settings=settings)
        due = session.execute(
            select(ExportJob.id, ExportJob.attempts)
            .where(ExportJob.state == ExportState.pending, ExportJob.next_attempt_at <= now).limit(100)
        ).all()
        taken = [(export_id, attempts) for export_id, attempts in due if session.execute(
            update(ExportJob).where(ExportJob.id == export_id, ExportJob.state == ExportState.pending,
                                    ExportJob.next_attempt_at <= now)
            .values(next_attempt_at=now + lease)
        ).rowcount]
    return sum(enqueue_export(export_id=export_id, attempt=attempts) for export_id, attempts in taken)


def resend(*, session: Session, job: ExportJob, settings: Settings) -> bool:
    """Start a job over (state ``pending``, no tries yet) and enqueue it; False while a try is under way."""
    restarted = session.execute(
        update(ExportJob).where(ExportJob.id == job.id, ExportJob.state != ExportState.sending)
        .values(state=ExportState.pending, attempts=0, sent_at=None, n_objects=None,
                next_attempt_at=_now() + timedelta(seconds=lease_seconds(settings)))
    ).rowcount
    session.commit()
    if restarted:
        enqueue_export(export_id=job.id, attempt=0)
    session.refresh(job)
    return bool(restarted)


def _record_failure(*, sessions: Sessions, export_id: str, attempts: int, error: Exception, settings: Settings) -> ExportState:
    detail = str(error) if isinstance(error, ExportError) else f"{type(error).__name__}: {error}"
    final = attempts >= settings.export_max_attempts
    state = ExportState.dead_letter if final else ExportState.pending
    delay = backoff_seconds(attempts=attempts, base=settings.export_retry_base_seconds)
    with transaction(sessions) as session:
        session.execute(
            update(ExportJob).where(ExportJob.id == export_id, ExportJob.state == ExportState.sending)
            .values(state=state, last_error=detail[:2000], next_attempt_at=None if final else _now() + timedelta(seconds=delay))
        )
    if final:
        log.error("export %s: dead-lettered after %d tries: %s", export_id, attempts, detail[:300])
    else:
        log.warning("export %s: try %d failed, next in %.1f s: %s", export_id, attempts, delay, detail[:300])
    return state


def _release_stale_tries(*, session: Session, now: datetime, stale_before: datetime, settings: Settings) -> None:
    """A try ``sending`` for longer than the lease lost its worker (killed, host gone): count it as failed."""
    stale = session.execute(
        select(ExportJob.id, ExportJob.attempts).where(ExportJob.state == ExportState.sending, ExportJob.updated_at < stale_before)
    ).all()
    for export_id, attempts in stale:
        final = attempts >= settings.export_max_attempts
        session.execute(
            update(ExportJob).where(ExportJob.id == export_id, ExportJob.state == ExportState.sending, ExportJob.updated_at < stale_before)
            .values(state=ExportState.dead_letter if final else ExportState.pending, next_attempt_at=None if final else now,
                    last_error=f"try {attempts} never finished (the export worker stopped during it)")
        )


def _now() -> datetime:
    return datetime.now(timezone.utc)
