"""``ctriage worker gate|screen|localize|export``: a real Celery worker process consuming one queue."""

from __future__ import annotations

import importlib
import logging
import socket

import click

from shared.config import get_settings
from shared.contracts import Stage
from shared.queue.app import EXPORT_QUEUE, EXPORT_TASK_MODULE, TASK_MODULES, WORKER_QUEUES, configure


@click.command("worker")
@click.argument("stage", type=click.Choice(WORKER_QUEUES))
@click.option("--concurrency", "-c", default=None, type=int,
              help="Worker child processes or threads (default 1; export: 4, so one slow PACS leaves others served).")
@click.option("--pool", default=None, type=click.Choice(["prefork", "solo", "threads"]),
              help="prefork (default; enforces hard time limits), solo (main process) or threads (export's default: "
                   "it waits on the network, and its own timeouts bound each try).")
@click.option("--loglevel", "-l", default=None, help="Log level (default: CTRIAGE_LOG_LEVEL).")
@click.option("--quiet", "-q", is_flag=True, help="No start-up banner.")
def worker_command(stage: str, concurrency: int | None, pool: str | None, loglevel: str | None, quiet: bool) -> None:
    """Start a Celery worker on the STAGE queue (gate, screen, localize, or export: results back to PACS)."""
    settings = get_settings()
    level = (loglevel or settings.log_level).upper()
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s [{stage}] %(name)s: %(message)s")
    app = configure(settings)
    importlib.import_module(EXPORT_TASK_MODULE if stage == EXPORT_QUEUE else TASK_MODULES[Stage(stage)])
    exporting = stage == EXPORT_QUEUE
    concurrency = concurrency or (4 if exporting else 1)
    pool = pool or _default_pool(stage, settings.gate_backend)
    argv = [
        *(["--quiet"] if quiet else []), "worker", "--queues", stage, "--hostname", f"{stage}@{socket.gethostname()}",
        "--concurrency", str(concurrency), "--pool", pool, "--loglevel", level,
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]
    app.worker_main(argv)


def _default_pool(stage: str, gate_backend: str) -> str:
    """threads for export; solo for a gate that may run TotalSegmentator, since nnU-Net starts worker
    processes and a prefork child is daemonic (TotalSegmentator issue #503); prefork otherwise."""
    if stage == EXPORT_QUEUE:
        return "threads"
    if stage == Stage.gate and gate_backend.strip().lower() in ("totalsegmentator", "auto"):
        return "solo"
    return "prefork"
