"""``ctriage phantom``: write synthetic chest CT cases (and gate negatives) with their ground truth."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np

from shared.phantoms.generate import generate_phantom
from shared.phantoms.manifest import MANIFEST_NAME, save_manifest, write_phantom_case
from shared.phantoms.negatives import NEGATIVE_KINDS, write_negative
from shared.phantoms.pathologies import PATHOLOGY_TYPES, canonical


def _shape(text: str | None) -> tuple[int, int, int] | None:
    if not text:
        return None
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise click.BadParameter(f"expected NZxNYxNX, e.g. 300x512x512, got {text!r}")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def _names(text: str | None, known, what: str) -> list[str]:
    if not text:
        return []
    names = [t.strip() for t in text.split(",") if t.strip()]
    if what == "negative" and names == ["all"]:
        return list(known)
    for name in names:
        if name not in ("random", "none") and what == "pathology":
            try:
                canonical(name)
            except ValueError as exc:
                raise click.BadParameter(str(exc)) from None
        elif what == "negative" and name not in known:
            raise click.BadParameter(f"unknown negative {name!r}; known: {', '.join(known)}, all")
    return names


def _pathologies_for(names: list[str], seed: int) -> list[str]:
    """Expand ``random`` into 1-3 random types (deterministic per case seed); drop ``none``."""
    out: list[str] = []
    for name in names:
        if name == "random":
            rng = np.random.default_rng([seed, 42])
            out += list(rng.choice(PATHOLOGY_TYPES, size=int(rng.integers(1, 4)), replace=False))
        elif name != "none":
            out.append(name)
    return out


@click.command("phantom")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the cases into.")
@click.option("--count", default=1, show_default=True, type=click.IntRange(min=0), help="Number of phantom cases.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the first case (then seed+1, ...).")
@click.option("--pathology", "pathology", default=None,
              help=f"Comma-separated pathologies for every case ({', '.join(PATHOLOGY_TYPES)}; aliases such as "
                   "nodule, effusion, ggo; 'random' for 1-3 random ones; 'none').")
@click.option("--negative", "negative", default=None,
              help=f"Comma-separated gate negatives to write as well ({', '.join(NEGATIVE_KINDS)}, or all).")
@click.option("--shape", "shape_text", default=None, help="Volume shape NZxNYxNX (default: 512x512, slices from the "
              "drawn slice thickness).")
@click.option("--contrast", type=click.Choice(["none", "arterial", "venous"]), default=None,
              help="Contrast phase (default: random per case).")
def phantom_command(out_dir: Path, count: int, seed: int, pathology: str | None, negative: str | None,
                    shape_text: str | None, contrast: str | None) -> None:
    """Write synthetic chest CT phantoms (DICOM + NIfTI masks + JSON ground truth) and gate negatives."""
    shape = _shape(shape_text)
    pathologies = _names(pathology, PATHOLOGY_TYPES, "pathology")
    negatives = _names(negative, NEGATIVE_KINDS, "negative")
    out_dir.mkdir(parents=True, exist_ok=True)
    index: dict = {"cases": [], "negatives": []}
    for n in range(count):
        case_seed = seed + n
        case = f"phantom_{case_seed:06d}"
        started = time.perf_counter()
        phantom = generate_phantom(seed=case_seed, shape=shape, pathologies=_pathologies_for(pathologies, case_seed),
                                   contrast=contrast)
        manifest = write_phantom_case(phantom, out_dir / case, case=case)
        index["cases"].append({"case": case, "seed": case_seed, "normal": manifest["normal"],
                               "lesions": [lesion["type"] for lesion in manifest["lesions"]]})
        click.echo(json.dumps({"case": case, "shape": manifest["shape"], "lesions": len(manifest["lesions"]),
                               "seconds": round(time.perf_counter() - started, 2)}))
    for kind in negatives:
        case = write_negative(kind, out_dir / "negatives" / kind, seed=seed, shape=shape and (min(shape[0], 64),) + shape[1:])
        save_manifest({"kind": "negative", **case.as_dict()}, case.folder / MANIFEST_NAME)
        index["negatives"].append({"case": f"negatives/{kind}", **case.as_dict()})
        click.echo(json.dumps({"negative": kind, "files": len(case.files), "expected_reason": case.expected_reason}))
    save_manifest(index, out_dir / MANIFEST_NAME)
