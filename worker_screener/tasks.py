"""Celery task of the screen queue: a thin wrapper over :mod:`worker_screener.stage` (see :class:`StageTask`)."""

from __future__ import annotations

from shared.contracts import Stage
from shared.queue.app import TASK_NAMES, celery_app
from shared.queue.stage_task import StageTask
from worker_screener import stage as _stage  # noqa: F401 - imported before the pool forks, not per task


@celery_app.task(bind=True, base=StageTask, name=TASK_NAMES[Stage.screen], stage=Stage.screen)
def screen_task(self: StageTask, payload: dict) -> dict:
    """The screener stage for the run in ``payload`` (a :class:`shared.contracts.ChainState`)."""
    return self.run_stage(payload)
