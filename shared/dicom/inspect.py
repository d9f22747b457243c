"""``ctriage inspect PATH``: what a DICOM input holds and what the loader makes of it, as JSON.

Prints the series found (headers only) and the chosen volume's geometry, HU statistics and
warnings; when the input cannot be loaded, the stable reason code with exit status 2. Patient
tags (name, birth date, ID) are never printed.
"""

from __future__ import annotations

import json

import click
import numpy as np

from shared.dicom.errors import LoadError
from shared.dicom.reader import list_series, read_study
from shared.dicom.volume import Volume

PERCENTILES = (1, 5, 50, 95, 99)
_MAX_SAMPLED_VOXELS = 4_000_000  # percentiles from a regular subsample: exact enough, fast on big CT


def inspect_report(path: str, *, series_instance_uid: str | None = None) -> tuple[dict[str, object], int]:
    """The JSON report for ``path`` and the exit status (0 loaded, 2 refused with a reason)."""
    report: dict[str, object] = {}
    try:
        report["series"] = [info.as_dict() for info in list_series(path)]
        volume = read_study(path, series_instance_uid=series_instance_uid)
    except LoadError as error:
        return {**error.as_dict(), **report}, 2
    report["volume"] = volume_summary(volume)
    return report, 0


def volume_summary(volume: Volume) -> dict[str, object]:
    """Geometry, HU statistics and warnings of a volume (no patient tags)."""
    meta = volume.meta
    return {
        "study_instance_uid": meta.study_instance_uid,
        "series_instance_uid": meta.series_instance_uid,
        "modality": meta.modality,
        "body_part_examined": meta.body_part_examined,
        "series_description": meta.series_description,
        "shape": list(volume.shape),
        "dtype": str(volume.hu.dtype),
        "spacing": [round(v, 6) for v in volume.spacing],
        "origin": [round(v, 6) for v in volume.origin],
        "direction": np.round(volume.direction, 6).tolist(),
        "hu": hu_statistics(volume.hu),
        "warnings": list(volume.warnings),
    }


def hu_statistics(hu: np.ndarray) -> dict[str, float]:
    """Min, max and percentiles (the latter from a regular subsample of at most ~4 M voxels)."""
    stride = max(1, int(np.ceil((hu.size / _MAX_SAMPLED_VOXELS) ** (1 / 3))))
    sample = hu[::stride, ::stride, ::stride]
    values = np.percentile(sample, PERCENTILES)
    stats = {"min": float(hu.min()), "max": float(hu.max())}
    stats.update({f"p{p}": round(float(v), 1) for p, v in zip(PERCENTILES, values)})
    return stats


@click.command("inspect")
@click.argument("path", type=click.Path(exists=True))
@click.option("--series", "series_instance_uid", default=None, help="SeriesInstanceUID to load instead of the default.")
@click.pass_context
def inspect_command(ctx: click.Context, path: str, series_instance_uid: str | None) -> None:
    """Print as JSON the series in PATH (file, folder or zip) and the volume the loader builds."""
    report, status = inspect_report(path, series_instance_uid=series_instance_uid)
    click.echo(json.dumps(report, indent=2))
    ctx.exit(status)
