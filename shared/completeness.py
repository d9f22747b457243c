"""Study completeness: when a series pushed instance by instance (C-STORE, STOW-RS) is whole, analyze it once.

A PACS sends a series as a stream of instances with no "end of series" message, so a series is
*complete* after ``CTRIAGE_COMPLETENESS_QUIET_SECONDS`` without a new instance, or at once when its
expected instance count (``PUT /api/scans/{id}/expected-instances``) is reached. A complete series
that passes the auto-analyze rule gets an analysis run. An instance arriving after completion reopens
the series (same row: a series is never split) and the next completion starts a new run whose report
replaces the earlier one; a run of the earlier, partial series still queued or running is cancelled.

All state is in the ``series`` row (``last_instance_at``, ``completed_at``, ``expected_instances``),
so a receiver restarted mid-study goes on where it stopped. Completing is a conditional UPDATE
("still open, no instance since I looked"), so several scanners (replicas) never complete a series twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.db.models import TERMINAL_STATES, AnalysisRun, Series

log = logging.getLogger(__name__)

SCAN_BATCH = 100  # series completed per scan pass; the rest wait for the next pass


def utcnow() -> datetime:
    """Timezone-aware now (completeness timestamps are UTC)."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class AutoAnalyzeRule:
    """Which complete series get an analysis run without anyone asking."""

    enabled: bool
    modalities: frozenset[str]
    min_instances: int

    @classmethod
    def from_settings(cls, settings: Settings) -> AutoAnalyzeRule:
        """The rule of ``CTRIAGE_AUTO_ANALYZE*``."""
        modalities = frozenset(m.strip().upper() for m in settings.auto_analyze_modalities.split(",") if m.strip())
        return cls(enabled=settings.auto_analyze, modalities=modalities, min_instances=settings.auto_analyze_min_instances)

    def applies(self, series: Series) -> bool:
        """Whether ``series`` (complete) is analyzed automatically."""
        return (
            self.enabled
            and (series.modality or "").upper() in self.modalities
            and series.n_instances >= self.min_instances
        )


@dataclass(frozen=True, slots=True)
class Completion:
    """What completing a series did: whether it was completed now, and the run it got (if any)."""

    completed: bool
    run: AnalysisRun | None = None


# A new instance of a series, in one statement (run on the driver by shared.instance_index for every
# received instance): its totals grow and its completeness clock restarts (reopening it if complete).
# The totals are added by the database on the row it locks: exact when intakes of one series commit at
# once (a count subquery reads its statement's snapshot and may miss a concurrent insert on PostgreSQL).
RECORD_NEW_INSTANCE = (
    update(Series)
    .where(Series.id == bindparam("series_pk"))
    .values(
        n_instances=Series.n_instances + 1,
        size_bytes=Series.size_bytes + bindparam("added_bytes"),
        last_instance_at=bindparam("now"),
        completed_at=None,
        updated_at=bindparam("now"),
    )
    .returning(Series.n_instances, Series.expected_instances)
    .execution_options(synchronize_session=False)
)


def expected_reached(n_instances: int, expected: int | None) -> bool:
    """Whether a series holding ``n_instances`` has its expected instance count (None: not known)."""
    return expected is not None and n_instances >= expected


def set_expected_instances(*, session: Session, series: Series, expected: int | None, rule: AutoAnalyzeRule) -> Completion:
    """Record how many instances ``series`` will have (None: unknown again), completing it at once when all are in."""
    series.expected_instances = expected
    session.commit()
    return complete_if_expected(session=session, series=series, rule=rule)


def complete_if_expected(*, session: Session, series: Series, rule: AutoAnalyzeRule) -> Completion:
    """Complete ``series`` now if it is open and holds its expected instance count (no quiet period to wait)."""
    session.refresh(series)
    reached = series.expected_instances is not None and series.n_instances >= series.expected_instances
    if series.completed_at is not None or series.last_instance_at is None or not reached:
        return Completion(completed=False)
    return complete_series(
        session=session, series_id=series.id, seen_last_instance_at=series.last_instance_at, rule=rule, now=utcnow()
    )


def due_series(*, session: Session, now: datetime, quiet_seconds: float, limit: int = SCAN_BATCH) -> list[tuple[str, datetime]]:
    """``(id, last_instance_at)`` of open series that are complete now: quiet long enough, or all expected instances in."""
    cutoff = now - timedelta(seconds=quiet_seconds)
    rows = session.execute(
        select(Series.id, Series.last_instance_at)
        .where(
            Series.completed_at.is_(None),
            Series.last_instance_at.is_not(None),
            or_(
                Series.last_instance_at <= cutoff,
                and_(Series.expected_instances.is_not(None), Series.n_instances >= Series.expected_instances),
            ),
        )
        .order_by(Series.last_instance_at)
        .limit(limit)
    ).all()
    return [(row.id, row.last_instance_at) for row in rows]


def complete_series(
    *,
    session: Session,
    series_id: str,
    seen_last_instance_at: datetime,
    rule: AutoAnalyzeRule,
    now: datetime,
    enqueue: Callable[..., AnalysisRun] | None = None,
) -> Completion:
    """Complete the series if no instance came since ``seen_last_instance_at``, and start its run when the rule says so.

    Not completed when the series is no longer open or an instance came meanwhile. The session is
    committed either way.
    """
    claimed = session.execute(
        update(Series)
        .where(
            Series.id == series_id,
            Series.completed_at.is_(None),
            Series.last_instance_at == seen_last_instance_at,
        )
        .values(completed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        session.rollback()
        return Completion(completed=False)
    series = session.get(Series, series_id, populate_existing=True)
    assert series is not None
    if not rule.applies(series):
        session.commit()
        log.info("series %s complete: %d instances, %s (not analyzed automatically)", series.id, series.n_instances,
                 series.modality or "no modality")
        return Completion(completed=True)
    cancelled = _cancel_open_runs(session=session, series_pk=series.id)
    if enqueue is None:
        from shared.pipeline.dispatch import enqueue_analysis as enqueue
    try:
        run = enqueue(session=session, series=series)  # commits the completion with the run
    except BrokerError:
        # The run was recorded as failed (broker_unavailable); reopen so the next quiet period tries again.
        session.execute(
            update(Series).where(Series.id == series_id).values(completed_at=None, last_instance_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        session.commit()
        log.warning("series %s complete but the broker is unavailable: analysis retried after the next quiet period", series_id)
        return Completion(completed=False)
    log.info("series %s complete: %d instances; analysis run %s queued%s", series.id, series.n_instances, run.id,
             f" (replaces {cancelled} unfinished run(s))" if cancelled else "")
    return Completion(completed=True, run=run)


def complete_due_series(
    *, session_factory: sessionmaker[Session], rule: AutoAnalyzeRule, quiet_seconds: float, now: datetime | None = None
) -> int:
    """One scanner pass: complete every series that is due; returns how many were completed."""
    now = now or utcnow()
    with session_factory() as session:
        due = due_series(session=session, now=now, quiet_seconds=quiet_seconds)
    completed = 0
    for series_id, seen in due:
        with session_factory() as session:
            try:
                completion = complete_series(
                    session=session, series_id=series_id, seen_last_instance_at=seen, rule=rule, now=now
                )
                completed += completion.completed
            except Exception:  # one bad series must not stop the others
                session.rollback()
                log.exception("completing series %s failed; retried on the next pass", series_id)
    return completed


class CompletenessScanner:
    """A daemon thread completing due series every ``completeness_scan_seconds`` (or at once when woken)."""

    def __init__(self, *, session_factory: sessionmaker[Session], settings: Settings) -> None:
        self._session_factory = session_factory
        self._rule = AutoAnalyzeRule.from_settings(settings)
        self._quiet = settings.completeness_quiet_seconds
        self._interval = settings.completeness_scan_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="completeness-scanner", daemon=True)

    def start(self) -> None:
        """Start scanning."""
        self._thread.start()

    def wake(self) -> None:
        """Scan now (a series reached its expected instance count)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current pass."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                complete_due_series(session_factory=self._session_factory, rule=self._rule, quiet_seconds=self._quiet)
            except Exception:  # the database may be briefly unreachable: try again next pass
                log.exception("completeness scan failed")
            self._wake.wait(self._interval)
            self._wake.clear()


def _cancel_open_runs(*, session: Session, series_pk: str) -> int:
    """Delete the series' unfinished runs: they analyze instances that are no longer the whole series.

    Deleted rather than failed, so the series' report stays the last *finished* one until the new run
    ends, instead of a failure nobody caused; workers holding a deleted run's task skip it.
    """
    result = session.execute(
        delete(AnalysisRun)
        .where(AnalysisRun.series_pk == series_pk, AnalysisRun.state.not_in(list(TERMINAL_STATES)))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
