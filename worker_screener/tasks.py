"""Celery task of the screen queue: a thin wrapper over :mod:`worker_screener.stage` (see :class:`StageTask`).

Importing it (the screen worker's start, before the pool forks) loads and checksum-verifies the model
once and logs which screener is active; a model that cannot load is logged as an error, and each
screen task then fails with that error.
"""

from __future__ import annotations

import logging

from shared.contracts import Stage
from shared.queue.app import TASK_NAMES, celery_app
from shared.queue.stage_task import StageTask
from worker_screener.stage import ScreenerUnavailable, describe_active_screener

log = logging.getLogger(__name__)

try:
    log.info(describe_active_screener())
except ScreenerUnavailable as error:
    log.error("%s", error)


@celery_app.task(bind=True, base=StageTask, name=TASK_NAMES[Stage.screen], stage=Stage.screen)
def screen_task(self: StageTask, payload: dict) -> dict:
    """The screener stage for the run in ``payload`` (a :class:`shared.contracts.ChainState`)."""
    return self.run_stage(payload)
