"""The ``export`` queue's worker (``ctriage worker export``): a thin Celery task around :func:`run_export`,
and the sweep that enqueues jobs whose retry is due.

Its own queue and process: a PACS that hangs until the export timeout occupies an export thread,
never a stage worker. The sweep runs in a thread of the worker's main process, started when the
worker is ready, every ``CTRIAGE_EXPORT_POLL_SECONDS``.
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown

from shared.config import get_settings
from shared.export.service import enqueue_due, run_export
from shared.queue.app import EXPORT_TASK, celery_app
from shared.queue.stage_task import worker_sessions, worker_store

log = logging.getLogger(__name__)
_stop = threading.Event()


@celery_app.task(name=EXPORT_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def export_task(export_id: str, attempt: int) -> str | None:
    """Try once to send a job's objects; retries are scheduled in the database, not by Celery."""
    state = run_export(export_id=export_id, attempt=attempt, sessions=worker_sessions(), store=worker_store(), settings=get_settings())
    return state.value if state is not None else None


def sweep_forever(stop: threading.Event) -> None:
    """Enqueue due jobs until ``stop`` is set; a failing database is logged and tried again."""
    settings = get_settings()
    while not stop.wait(settings.export_poll_seconds):
        try:
            enqueue_due(sessions=worker_sessions(), settings=settings)
        except Exception as error:  # noqa: BLE001 - the database may be down for a while
            log.warning("export sweep failed: %s", type(error).__name__)


@worker_ready.connect
def _start_sweep(**_: object) -> None:
    _stop.clear()
    threading.Thread(target=sweep_forever, args=(_stop,), name="export-sweep", daemon=True).start()


@worker_shutdown.connect
def _stop_sweep(**_: object) -> None:
    _stop.set()
