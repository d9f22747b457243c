"""The localize stage on a 512x512x300 study: wall time and peak memory (target <= 3 s, <= 2 GB on CPU).

The study is the output tests' synthetic one (tests/outputs_testkit.py) at full size: a phantom CT
written as a DICOM series, two anomaly blobs. Its volume, organ labels and anomaly map are stored in
a local object store as the gate and screener leave them; the stage then runs in a fresh (spawned)
process, so its peak RSS is the worker's own: imports, the maps, the findings and the DICOM outputs.
Rows: the whole stage, and within it the findings alone (threshold, components, per-finding stats)
and the source headers of the DICOM outputs, from the gate's ``instances.json`` (what the stage
uses) and, for comparison, from the stored instances (the fallback for runs made before the gate
kept that copy).

Run: ``.venv/bin/python -m bench.bench_localizer [--slices 300] [--size 512] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the synthetic study lives with the tests that define it

TARGET_SECONDS, TARGET_GB = 3.0, 2.0


def _stage_in_child(root: str, request_json: str, repeats: int, results: multiprocessing.Queue) -> None:
    from shared.anatomy import label_names
    from shared.contracts import LocalizeRequest
    from shared.pipeline.artifacts import get_anomaly_map, get_label_map, get_volume_header
    from shared.storage.local import LocalStore
    from worker_localizer.delivery import source_headers
    from worker_localizer.findings import locate_findings
    from worker_localizer.stage import run_localizer

    store, request = LocalStore(Path(root), fsync=False), LocalizeRequest.model_validate_json(request_json)
    stage = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run_localizer(store=store, request=request)
        stage.append(time.perf_counter() - started)
    affine, meta = get_volume_header(store, request.volume_key)
    scores, labels = get_anomaly_map(store, request.anomaly_key).scores, get_label_map(store, request.organs_key).labels
    findings = []
    for _ in range(repeats):
        started = time.perf_counter()
        locate_findings(scores=scores, labels=labels, names=label_names(), affine=affine,
                        sop_instance_uids=meta.sop_instance_uids, voxel_threshold=request.voxel_threshold)
        findings.append(time.perf_counter() - started)
    headers = {}
    for label, run_id in (("copy", request.run_id), ("instances", "bench-no-copy")):
        started = time.perf_counter()
        sources = source_headers(store=store, run_id=run_id, source_prefix=request.source_prefix,
                                 sop_instance_uids=meta.sop_instance_uids)
        headers[label] = (time.perf_counter() - started, len(sources.datasets))
    outputs = [f"{o.name} {'ok' if o.produced else o.reason}" for o in result.outputs]
    results.put((min(stage), min(findings), len(result.findings), sorted(result.artifacts), outputs, headers))


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    from outputs_testkit import VOXEL_THRESHOLD, make_study

    from shared.anatomy import label_names
    from shared.contracts import LocalizeRequest, RunArtifacts
    import pydicom

    from shared.pipeline.artifacts import AnomalyMap, LabelMap, put_anomaly_map, put_label_map, put_source_headers, put_volume
    from shared.storage.local import LocalStore

    parser = argparse.ArgumentParser()
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv if argv is not None else [])
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        study = make_study(Path(folder), shape=(args.slices, args.size, args.size))
        store = LocalStore(Path(folder) / "objects", fsync=False)
        keys = RunArtifacts.for_run("bench-localizer")
        put_volume(store, keys.volume, study.volume)
        put_label_map(store, keys.organs, LabelMap(labels=study.organ_labels, affine=study.volume.affine, names=label_names()))
        put_anomaly_map(store, keys.anomaly, AnomalyMap(scores=study.anomaly_score, affine=study.volume.affine))
        for path in study.ct_paths:
            store.put_file(f"series/{path.name}", str(path))
        by_uid = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in study.ct_paths)}
        put_source_headers(store, keys.instances, [by_uid[uid] for uid in study.volume.meta.sop_instance_uids])
        request = LocalizeRequest(
            run_id="bench-localizer", volume_key=keys.volume, organs_key=keys.organs, anomaly_key=keys.anomaly,
            voxel_threshold=VOXEL_THRESHOLD, study_threshold=1.0, score_unit="ml", source_prefix="series/",
            models=study.report.models[:2],
        )
        print(f"study {study.volume.shape}, stored in {time.perf_counter() - started:.1f} s", flush=True)
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        child = context.Process(target=_stage_in_child, args=(str(store.root), request.model_dump_json(), args.repeats, results))
        child.start()
        stage_s, findings_s, n_findings, artifacts, outputs, headers = results.get()
        child.join()
        instances_kb = store.stat(keys.instances).size / 1024
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9  # Linux reports KiB
    print(f"{n_findings} findings; artifacts: {', '.join(artifacts)}; outputs: {', '.join(outputs)}")
    print(f"{'localizer, ' + 'x'.join(map(str, study.volume.shape[::-1])):<44} {'best of ' + str(args.repeats):>12} {'target':>8}")
    print(f"{'  whole stage (load, findings, mask, DICOM)':<44} {stage_s:>10.2f} s {TARGET_SECONDS:>6.1f} s")
    print(f"{'  findings only (threshold, components)':<44} {findings_s:>10.2f} s")
    for label, name in (("copy", f"instances.json, {instances_kb:.0f} KB"), ("instances", "the stored instances")):
        seconds, count = headers[label]
        print(f"{'  ' + str(count) + ' headers from ' + name:<44} {seconds:>10.2f} s")
    print(f"{'  peak RSS of the stage process':<44} {peak_gb:>9.2f} GB {TARGET_GB:>5.1f} GB")


if __name__ == "__main__":
    main(sys.argv[1:])
