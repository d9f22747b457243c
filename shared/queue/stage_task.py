"""The base class of the three stage tasks: retries, time limits and failure bookkeeping.

A stage task is a thin wrapper: it hands its message to :func:`shared.pipeline.execute.execute_stage`.
Transient errors (object storage, database, broker) are retried with exponential backoff and jitter,
up to ``CTRIAGE_STAGE_MAX_RETRIES`` times; a missing object is not transient. When a stage fails for
good (an error, retries exhausted, a soft or hard time limit), :meth:`StageTask.on_failure` ends the
run ``failed`` with a reason code; Celery calls it for hard time limits too, from the worker's main
process after killing the child.
"""

from __future__ import annotations

import logging
from functools import cache

from celery import Task
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError as DatabaseError
from sqlalchemy.orm import Session, sessionmaker

from shared.config import get_settings
from shared.contracts import Stage
from shared.db.session import session_factory
from shared.pipeline import runs
from shared.db.session import transaction
from shared.pipeline.execute import execute_stage, fail_stage
from shared.storage import ObjectNotFound, ObjectStore, StorageError, get_store

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = (StorageError, DatabaseError, BrokerError, ConnectionError, TimeoutError)


@cache
def worker_store() -> ObjectStore:
    """The object store of this worker process (built once)."""
    return get_store()


def worker_sessions() -> sessionmaker[Session]:
    """Sessions on this worker's configured database."""
    return session_factory(get_settings().resolved_database_url)


class StageTask(Task):
    """Celery task base for one pipeline stage (set :attr:`stage` in the task decorator)."""

    abstract = True
    stage: Stage
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
    autoretry_for = TRANSIENT_ERRORS
    dont_autoretry_for = (ObjectNotFound,)
    retry_backoff = 2
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = get_settings().stage_max_retries
    resultrepr_maxsize = 160  # the worker log shows the returned chain state; keep it to its start

    def run_stage(self, payload: dict) -> dict:
        """Execute the stage on ``payload``; stop the chain when the run ended (rejected, done, duplicate)."""
        outcome = execute_stage(
            stage=self.stage, payload=payload, store=worker_store(), sessions=worker_sessions(), max_lost=self.max_retries,
        )
        if not outcome.proceed:
            self.request.chain = None
        return outcome.state.model_dump(mode="json")

    def on_retry(self, exc, task_id, args, kwargs, einfo) -> None:  # type: ignore[no-untyped-def]
        run_id = _run_id(args)
        log.warning("run %s: %s stage will retry after %s", run_id, self.stage.value, type(exc).__name__)
        try:
            with transaction(worker_sessions()) as session:
                runs.retry_stage(session=session, run_id=run_id, stage=self.stage, detail=f"{type(exc).__name__}: {exc}"[:500])
        except Exception:  # noqa: BLE001 - the database may be the transient failure itself
            log.warning("run %s: could not record the retry", run_id)

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:  # type: ignore[no-untyped-def]
        run_id = _run_id(args)
        log.error("run %s: %s stage failed: %s", run_id, self.stage.value, type(exc).__name__)
        try:
            store = worker_store()
        except Exception:  # noqa: BLE001
            store = None
        fail_stage(stage=self.stage, payload=args[0] if args else {"run_id": run_id}, error=exc, store=store, sessions=worker_sessions())


def _run_id(args: tuple) -> str:
    payload = args[0] if args else {}
    return str(payload.get("run_id", "")) if isinstance(payload, dict) else ""

