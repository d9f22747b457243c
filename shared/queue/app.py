"""The Celery application: one queue per stage (``gate``, ``screen``, ``localize``) and one for
results going back to PACS (``export``), so a slow or unreachable PACS never holds up an analysis.

Broker: ``CTRIAGE_BROKER_URL`` (e.g. ``redis://redis:6379/0``) or, when empty (embedded mode), kombu's
server-less ``filesystem://`` transport with its folders under ``data_dir/queue``, which several
processes on one host share. The filesystem transport deletes a message when a worker takes it, so
``acks_late`` redelivery after a crash needs a real broker; the run bookkeeping still ends such a run
(see :mod:`shared.pipeline.runs`). Tasks are never run eagerly: workers are real processes.

Stage tasks are looked up by name (:data:`TASK_NAMES`), so the gateway sends work without importing
any worker code (no numpy-heavy or torch imports in the API process).
"""

from __future__ import annotations

from pathlib import Path

from celery import Celery

from shared.config import Settings, get_settings
from shared.contracts import STAGES, Stage

TASK_NAMES: dict[Stage, str] = {stage: f"ctriage.{stage.value}" for stage in STAGES}
TASK_MODULES: dict[Stage, str] = {
    Stage.gate: "worker_gate.tasks",
    Stage.screen: "worker_screener.tasks",
    Stage.localize: "worker_localizer.tasks",
}
EXPORT_QUEUE = "export"
EXPORT_TASK = "ctriage.export"
EXPORT_TASK_MODULE = "shared.export.tasks"
WORKER_QUEUES: tuple[str, ...] = (*(stage.value for stage in STAGES), EXPORT_QUEUE)
PUBLISH_RETRY_POLICY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}


def celery_config(settings: Settings) -> dict[str, object]:
    """Celery settings for ``settings``: broker, queues, delivery guarantees and time limits."""
    broker_url, transport_options = _broker(settings)
    return {
        "broker_url": broker_url,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "result_backend": settings.result_backend or None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": Stage.gate.value,
        "task_create_missing_queues": True,
        "task_routes": {**{name: {"queue": stage.value} for stage, name in TASK_NAMES.items()}, EXPORT_TASK: {"queue": EXPORT_QUEUE}},
        # At-least-once delivery: a message is acknowledged after its task ends, and given back to
        # the broker if the worker process dies; stages are idempotent, so a second run is harmless.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": settings.stage_time_limit_seconds,
        "task_soft_time_limit": max(1, settings.stage_time_limit_seconds - 30),
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "worker_send_task_events": False,
        "worker_enable_remote_control": not broker_url.startswith("filesystem"),
        "broker_pool_limit": 4,
    }


def configure(settings: Settings | None = None) -> Celery:
    """(Re)configure :data:`celery_app` from ``settings`` (default: the process settings); returns it."""
    settings = settings or get_settings()
    celery_app.conf.update(celery_config(settings))
    # Connections made under an earlier configuration must not be reused.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    return celery_app


def queue_folder(settings: Settings) -> Path:
    """Where the embedded filesystem transport keeps its messages."""
    return (settings.data_dir / "queue").resolve()


def _broker(settings: Settings) -> tuple[str, dict[str, object]]:
    if settings.broker_url:
        # Redis redelivers an unacknowledged message after visibility_timeout: it must exceed the
        # longest a stage may run, or a slow stage would run twice at once.
        return settings.broker_url, {"visibility_timeout": 2 * settings.stage_time_limit_seconds + 60}
    root = queue_folder(settings)
    messages, control = root / "messages", root / "control"
    for folder in (messages, control):
        folder.mkdir(parents=True, exist_ok=True)
    # A host name only silences kombu's "no hostname" warning; the transport ignores it.
    return "filesystem://localhost/", {
        "data_folder_in": str(messages),
        "data_folder_out": str(messages),
        "control_folder": str(control),
        "store_processed": False,
        "polling_interval": 0.2,
    }


celery_app = Celery("ctriage", set_as_current=True)
configure()
