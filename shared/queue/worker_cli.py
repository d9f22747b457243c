"""``ctriage worker gate|screen|localize``: a real Celery worker process consuming one stage's queue."""

from __future__ import annotations

import importlib
import logging
import socket

import click

from shared.config import get_settings
from shared.contracts import STAGES, Stage
from shared.queue.app import TASK_MODULES, configure


@click.command("worker")
@click.argument("stage", type=click.Choice([stage.value for stage in STAGES]))
@click.option("--concurrency", "-c", default=1, show_default=True, help="Worker child processes (one stage each).")
@click.option("--pool", default="prefork", show_default=True, type=click.Choice(["prefork", "solo", "threads"]),
              help="prefork enforces hard time limits; solo runs in the main process.")
@click.option("--loglevel", "-l", default=None, help="Log level (default: CTRIAGE_LOG_LEVEL).")
@click.option("--quiet", "-q", is_flag=True, help="No start-up banner.")
def worker_command(stage: str, concurrency: int, pool: str, loglevel: str | None, quiet: bool) -> None:
    """Start a Celery worker on the STAGE queue (gate, screen or localize)."""
    settings = get_settings()
    level = (loglevel or settings.log_level).upper()
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s [{stage}] %(name)s: %(message)s")
    app = configure(settings)
    importlib.import_module(TASK_MODULES[Stage(stage)])
    argv = [
        *(["--quiet"] if quiet else []), "worker", "--queues", stage, "--hostname", f"{stage}@{socket.gethostname()}",
        "--concurrency", str(concurrency), "--pool", pool, "--loglevel", level,
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]
    app.worker_main(argv)
