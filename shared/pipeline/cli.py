"""``ctriage analyze PATH``: the three stages in this process on a DICOM file, folder or zip.

No queue, no server, no database: the input is copied into a temporary local object store and the
same stage functions the workers run are called in turn. Prints the report (a summary, or the JSON
with ``--json``); ``--out DIR`` keeps ``report.json``, the organ, anomaly and findings maps, the
DICOM outputs (``seg.dcm``, ``sr.dcm``, ``key_image_NNN.dcm``) and ``report.pdf``.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

import click

from shared.dicom.errors import LoadError
from shared.dicom.sources import iter_dicom_sources
from shared.pipeline.inprocess import analyze_in_process
from shared.report import GateSummary, ReportStatus, ReportV1
from shared.storage.base import ObjectStore
from shared.storage.local import LocalStore

INPUT_PREFIX = "input"
KEPT_ARTIFACTS = ("organs", "anomaly", "findings", "seg", "sr")


@click.command("analyze")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Write report.json, maps, DICOM outputs and report.pdf here.")
def analyze_command(path: Path, as_json: bool, out_dir: Path | None) -> None:
    """Analyze the chest CT at PATH (DICOM file, folder or zip) and print its report."""
    with tempfile.TemporaryDirectory(prefix="ctriage-analyze-") as folder:
        store = LocalStore(Path(folder) / "objects", fsync=False)
        report = analyze_path(store=store, path=path)
        if out_dir is not None:
            _write_outputs(store, report, out_dir)
    if as_json:
        click.echo(json.dumps(report.model_dump(mode="json"), indent=2))
    else:
        click.echo(summary(report))
    if out_dir is not None:
        click.echo(f"written to {out_dir}", err=True)


def analyze_path(*, store: ObjectStore, path: Path) -> ReportV1:
    """Copy the DICOM objects at ``path`` into ``store`` and run the pipeline on them."""
    run_id = str(uuid.uuid4())
    try:
        count = _copy_input(store, path)
    except LoadError as error:
        return ReportV1(
            status=ReportStatus.rejected, reason=error.reason.value, reason_detail=error.detail, run_id=run_id,
            gate=GateSummary(accepted=False, method="input"), created_at=datetime.now(timezone.utc),
        )
    click.echo(f"analyzing {count} object(s) from {path} ...", err=True)
    return analyze_in_process(store=store, source_prefix=INPUT_PREFIX, run_id=run_id)


def summary(report: ReportV1) -> str:
    """A few human-readable lines about ``report``."""
    lines = []
    if report.study_instance_uid:
        lines.append(f"study  {report.study_instance_uid}\nseries {report.series_instance_uid}")
    if report.status is ReportStatus.done:
        lines.append(
            f"status: done   verdict: {report.verdict.value.upper() if report.verdict else '?'}   "
            f"score {report.score:.3g} {report.score_unit} (threshold {report.threshold:.3g})"
        )
    else:
        lines.append(f"status: {report.status.value}   reason: {report.reason}")
        if report.reason_detail:
            lines.append(f"  {report.reason_detail}")
    if report.gate is not None and report.gate.checks:
        checks = ", ".join(f"{check.name}={check.value}{'' if check.passed else ' (FAILED)'}" for check in report.gate.checks)
        lines.append(f"gate ({report.gate.method}): {checks}")
    if report.status is ReportStatus.done:
        lines.append(f"findings: {len(report.findings)}")
    for number, finding in enumerate(report.findings, start=1):
        x, y, z = finding.centroid_mm
        lines.append(
            f"  {number}. {finding.organ_display}: {finding.volume_ml:.2f} ml, score max {finding.score_max:.2f} "
            f"mean {finding.score_mean:.2f}, centre ({x:.0f}, {y:.0f}, {z:.0f}) mm LPS, slices {finding.slice_range[0]}-{finding.slice_range[1]}"
        )
    if report.models:
        lines.append("models: " + "; ".join(f"{m.stage} {m.name} v{m.version}" + (f" ({m.checksum[:12]})" if m.checksum else "") for m in report.models))
    if report.timings:
        lines.append("timings: " + ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in report.timings.items()))
    return "\n".join(lines)


def _copy_input(store: ObjectStore, path: Path) -> int:
    count = 0
    for count, (_name, item) in enumerate(iter_dicom_sources(path), start=1):
        key = f"{INPUT_PREFIX}/{count:06d}.dcm"
        if isinstance(item, Path):
            store.put_file(key, str(item))
        else:
            store.put_bytes(key, item)
    return count


def _write_outputs(store: ObjectStore, report: ReportV1, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
    names = [*KEPT_ARTIFACTS, *sorted(name for name in report.artifacts if name.startswith("key_image_"))]
    for name in names:
        key = report.artifacts.get(name)
        if key and store.exists(key):
            store.download(key, str(out_dir / Path(key).name))
    if report.status is ReportStatus.done:
        (out_dir / "report.pdf").write_bytes(_report_pdf(store, report))


def _report_pdf(store: ObjectStore, report: ReportV1) -> bytes:
    from shared.pipeline.artifacts import get_anomaly_map, get_label_map, get_volume
    from worker_localizer.outputs import report_pdf  # the localizer's code, loaded only for --out

    findings = report.artifacts.get("findings")
    return report_pdf(
        volume=get_volume(store, report.artifacts["volume"]), report=report,
        anomaly_score=get_anomaly_map(store, report.artifacts["anomaly"]).scores,
        anomaly_mask=get_label_map(store, findings).labels if findings else None,
        organ_labels=get_label_map(store, report.artifacts["organs"]).labels,
    )

