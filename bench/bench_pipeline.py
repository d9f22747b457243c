"""Baseline pipeline speed and memory on a 512x512x300 phantom: in process per stage, and through the
embedded queue with real worker processes.

* Input: a synthetic chest CT (``shared.phantoms``, one solid nodule) written as a 300-slice DICOM
  series into a local object store, as the gateway would have stored it.
* In process: each stage function (gate, screen, localize) runs in a fresh Python process, so its
  peak RSS (``ru_maxrss``, imports included) is the stage's own; seconds are the stage call alone.
* Queue: ``ctriage worker gate|screen|localize`` processes on SQLite + the kombu filesystem transport
  + the local store; the run is sent with ``enqueue_analysis`` and the database polled until it
  ends. End to end = enqueue to terminal state (queue hand-offs and artifact I/O included); peak RSS
  per worker is ``VmHWM`` of its main process and of its pool child (the one that runs the stage).

Run: ``.venv/bin/python -m bench.bench_pipeline [--shape 300,512,512] [--seed 7]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bench.memory import peak_rss_mb

STAGE_CHILD = """
import json, resource, sys, time
from shared.contracts import ChainState, Stage
from shared.pipeline.stages import _stage_function, advance
from shared.storage.local import LocalStore
_stage_function(Stage(sys.argv[2]))  # imports are not the stage's time
store = LocalStore(sys.argv[1], fsync=False)
state = ChainState.model_validate_json(open(sys.argv[3]).read())
started = time.perf_counter()
state = advance(stage=Stage(sys.argv[2]), store=store, state=state)
seconds = time.perf_counter() - started
open(sys.argv[3], "w").write(state.model_dump_json())
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main(argv: list[str] | None = None) -> None:
    """Build the phantom study, run both measurements, print the table."""
    parser = argparse.ArgumentParser(description="baseline pipeline benchmark")
    parser.add_argument("--shape", default="300,512,512", help="nz,ny,nx of the phantom")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv or [])
    shape = tuple(int(n) for n in args.shape.split(","))

    with tempfile.TemporaryDirectory(prefix="ctriage-bench-pipeline-") as folder:
        root = Path(folder)
        started = time.perf_counter()
        files, mb = _write_study(root / "dicom", shape=shape, seed=args.seed)
        print(f"phantom {shape[2]}x{shape[1]}x{shape[0]} written as {len(files)} DICOM files ({mb:.0f} MB) in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        rows = _in_process(root / "inproc", files)
        queue_rows, end_to_end, verdict = _through_queue(root / "queue", files)

    print()
    print(f"{'stage':<10} {'in-process s':>13} {'peak RSS MB':>12} {'queue: wait s':>14} {'task s':>7} {'stage s':>8} "
          f"{'worker RSS MB':>14} {'pool child RSS MB':>18}")
    for stage in ("gate", "screen", "localize"):
        seconds, rss = rows[stage]
        q = queue_rows[stage]
        print(f"{stage:<10} {seconds:>13.2f} {rss:>12.0f} {q['wait']:>14.2f} {q['task']:>7.2f} {q['seconds']:>8.2f} "
              f"{q['main_mb']:>14.0f} {q['child_mb']:>18.0f}")
    total = sum(seconds for seconds, _ in rows.values())
    print(f"{'total':<10} {total:>13.2f} {'':>12} {sum(q['wait'] for q in queue_rows.values()):>14.2f} "
          f"{sum(q['task'] for q in queue_rows.values()):>7.2f} {sum(q['seconds'] for q in queue_rows.values()):>8.2f}")
    print("(queue: wait = hand-off from the previous stage or the enqueue; task = the worker's whole task, "
          "bookkeeping and report included; stage = the stage function alone)")
    print(f"end to end through the embedded queue (enqueue -> report): {end_to_end:.2f} s, verdict {verdict}")


def _write_study(folder: Path, *, shape: tuple[int, ...], seed: int) -> tuple[list[Path], float]:
    from shared.dicom.writer import write_ct_series
    from shared.phantoms import generate_phantom

    volume = generate_phantom(seed=seed, shape=shape, pathologies=("solid_nodule",)).volume
    files = write_ct_series(volume, folder, uid_entropy=f"bench-{seed}")
    return files, sum(path.stat().st_size for path in files) / 1e6


def _put(store, files: list[Path], prefix: str) -> str:  # type: ignore[no-untyped-def]
    for path in files:
        store.put_file(f"{prefix}/{path.name}", str(path))
    return prefix + "/"


def _in_process(root: Path, files: list[Path]) -> dict[str, tuple[float, float]]:
    from shared.contracts import ChainState, GateRequest
    from shared.storage.local import LocalStore

    store = LocalStore(root / "objects", fsync=False)
    prefix = _put(store, files, "studies/bench/series/inproc")
    state_file = root / "state.json"
    run_id = str(uuid.uuid4())
    state_file.write_text(ChainState(run_id=run_id, gate_request=GateRequest(run_id=run_id, source_prefix=prefix)).model_dump_json())
    rows = {}
    for stage in ("gate", "screen", "localize"):
        done = subprocess.run(
            [sys.executable, "-c", STAGE_CHILD, str(root / "objects"), stage, str(state_file)],
            capture_output=True, text=True, check=True,
        )
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        rows[stage] = (measured["seconds"], measured["peak_rss_mb"])
        print(f"in process: {stage} {measured['seconds']:.2f} s, peak RSS {measured['peak_rss_mb']:.0f} MB", flush=True)
    return rows


def _through_queue(root: Path, files: list[Path]) -> tuple[dict[str, dict[str, float]], float, str]:
    from shared.config import Settings
    from shared.db.migrate import upgrade_database
    from shared.db.models import TERMINAL_STATES, AnalysisRun, Series, Study
    from shared.db.session import session_factory
    from shared.embedded import Child, ctriage_argv, stop_children
    from shared.pipeline.dispatch import enqueue_analysis
    from shared.queue.app import configure
    from shared.storage.factory import store_from_settings

    settings = Settings(_env_file=None, data_dir=root / "var")  # type: ignore[call-arg]
    upgrade_database(settings.resolved_database_url)
    configure(settings)
    store = store_from_settings(settings)
    prefix = _put(store, files, "studies/bench/series/queue")
    env = {key: value for key, value in os.environ.items() if not key.startswith("CTRIAGE_")}
    env["CTRIAGE_DATA_DIR"] = str(settings.data_dir.resolve())
    children = [
        Child(name=stage, process=subprocess.Popen(ctriage_argv("worker", stage, "--quiet"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for stage in ("gate", "screen", "localize")
    ]
    sessions = session_factory(settings.resolved_database_url)
    try:
        time.sleep(8)  # let the workers import and connect, so start-up is not counted
        with sessions() as session:
            study = Study(study_instance_uid=f"1.2.{uuid.uuid4().int}")
            session.add(study)
            session.flush()
            series = Series(study_pk=study.id, series_instance_uid=f"1.3.{uuid.uuid4().int}", storage_prefix=prefix, modality="CT")
            session.add(series)
            session.commit()
            started = time.perf_counter()
            enqueued_at = datetime.now(timezone.utc)
            run_id = enqueue_analysis(session=session, series=series).id
        while True:
            with sessions() as session:
                run = session.get(AnalysisRun, run_id)
                if run.state in TERMINAL_STATES:
                    end_to_end = time.perf_counter() - started
                    stages, verdict = dict(run.stages), run.report.verdict if run.report else run.state.value
                    break
            time.sleep(0.1)
        peaks = {child.name: _peak_rss_mb(child.process.pid) for child in children}
    finally:
        stop_children(children, grace=20)
        configure()
    rows = {stage: {"seconds": stages[stage].get("seconds") or float("nan"), **peaks[stage]} for stage in peaks}
    previous = enqueued_at
    for stage in ("gate", "screen", "localize"):
        # Hand-off: from the previous stage's end (or the enqueue) to this stage's start in its worker.
        begun = datetime.fromisoformat(stages[stage]["started_at"])
        rows[stage]["wait"] = (begun - previous).total_seconds()
        rows[stage]["task"] = (datetime.fromisoformat(stages[stage]["finished_at"]) - begun).total_seconds()
        previous = datetime.fromisoformat(stages[stage]["finished_at"])
    print(f"queue: run {run.state.value} in {end_to_end:.2f} s", flush=True)
    return rows, end_to_end, str(verdict)


def _peak_rss_mb(pid: int) -> dict[str, float]:
    """VmHWM of a worker's main process and the largest of its children (the prefork pool)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {"main_mb": peak_rss_mb(pid), "child_mb": max((peak_rss_mb(int(child)) for child in children), default=0.0)}




if __name__ == "__main__":
    main(sys.argv[1:])
