"""Celery task of the gate queue: a thin wrapper over :mod:`worker_gate.stage` (see :class:`StageTask`).

Importing it (the gate worker's start) logs which organ segmentation backend is active; a backend
that cannot run here is logged as an error, and each gate task then fails with that error.
"""

from __future__ import annotations

import logging

from shared.contracts import Stage
from shared.queue.app import TASK_NAMES, celery_app
from shared.queue.stage_task import StageTask
from worker_gate import stage as _stage  # noqa: F401 - imported before the pool forks, not per task
from worker_gate.backend import BackendUnavailable, describe_active_backend

log = logging.getLogger(__name__)

try:
    log.info(describe_active_backend())
except BackendUnavailable as error:
    log.error("%s", error)


@celery_app.task(bind=True, base=StageTask, name=TASK_NAMES[Stage.gate], stage=Stage.gate)
def gate_task(self: StageTask, payload: dict) -> dict:
    """The gate stage for the run in ``payload`` (a :class:`shared.contracts.ChainState`)."""
    return self.run_stage(payload)
