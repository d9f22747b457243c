"""The shipped screener: one weights file, its manifest (version, SHA-256) and model card.

``weights/manifest.json`` names the file and its SHA-256; :func:`load_screener` refuses a file whose
digest differs (a truncated copy or a swapped model must not score patients silently).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from shared.report import ModelInfo
from worker_screener.model.calibration import Calibration
from worker_screener.model.condition import ConditionConfig, ConditionNet
from worker_screener.model.density import ConditionalDensity
from worker_screener.model.network import DescriptorConfig, DescriptorNet
from worker_screener.model.synthetic import SyntheticConfig, SyntheticNet

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST = "manifest.json"
MODEL_NAME = "screener-dense-vicreg"


class ModelIntegrityError(RuntimeError):
    """The weights file is missing, or its checksum is not the manifest's."""


@dataclass
class Screener:
    """A loaded screener: descriptor network (eval mode, on ``device``), density, condition network and
    calibration. ``terms`` names what the voxel NLL sums: ``descriptor`` (the density of the descriptor given
    the organ group), ``context`` (the condition model's NLL of the local intensity) and/or ``synthetic`` (the
    synthetic-anomaly segmenter's ``-log(1 - p)``)."""

    network: DescriptorNet
    density: ConditionalDensity
    condition: ConditionNet | None
    synthetic: SyntheticNet | None
    terms: tuple[str, ...]
    calibration: Calibration
    study_threshold: float
    score_unit: str
    version: str
    checksum: str
    device: torch.device
    metadata: dict

    @property
    def model(self) -> ModelInfo:
        """Identity for reports."""
        return ModelInfo(stage="screen", name=MODEL_NAME, version=self.version, checksum=self.checksum)


def save_screener(
    *, folder: Path, network: DescriptorNet, density: ConditionalDensity, condition: ConditionNet | None,
    synthetic: SyntheticNet | None = None, terms: tuple[str, ...], calibration: Calibration, study_threshold: float,
    version: str, metadata: dict,
) -> Path:
    """Write ``screener-v{version}.pt`` and the manifest with its SHA-256 into ``folder``, replacing the model the
    folder held; returns the file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{MODEL_NAME}-v{version}.pt"
    # One model per folder: a superseded weights file left beside the new one would be committed with it.
    superseded = [old for old in folder.glob(f"{MODEL_NAME}-v*.pt") if old != path]
    torch.save({
        "format": 3, "version": version, "config": network.config.as_dict(),
        "network": _cpu_state(network),
        "density": density.state(), "terms": list(terms), "calibration": calibration.as_dict(),
        "condition_config": None if condition is None else condition.config.as_dict(),
        "condition": None if condition is None else _cpu_state(condition),
        "synthetic_config": None if synthetic is None else synthetic.config.as_dict(),
        "synthetic": None if synthetic is None else _cpu_state(synthetic),
        "study_threshold": float(study_threshold), "score_unit": "ml", "metadata": json.dumps(metadata),
    }, path)
    manifest = {"name": MODEL_NAME, "version": version, "file": path.name, "sha256": _sha256(path),
                "bytes": path.stat().st_size}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    for old in superseded:
        old.unlink()
    return path


def next_version(folder: Path) -> str:
    """The version after the one ``folder``'s manifest names ("1" for an empty folder or a non-numeric version)."""
    try:
        return str(int(json.loads((folder / MANIFEST).read_text())["version"]) + 1)
    except (FileNotFoundError, KeyError, ValueError, json.JSONDecodeError):
        return "1"


@lru_cache(maxsize=2)
def load_screener(folder: Path = WEIGHTS_DIR, device: str | None = None) -> Screener:
    """Load (once per process) and verify the screener in ``folder``; GPU when present, else CPU."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ModelIntegrityError(f"no screener manifest at {manifest_path}; train one with `make train`")
    manifest = json.loads(manifest_path.read_text())
    path = folder / manifest["file"]
    if not path.is_file():
        raise ModelIntegrityError(f"screener weights {path.name} named by the manifest are missing")
    digest = _sha256(path)
    if digest != manifest["sha256"]:
        raise ModelIntegrityError(f"screener weights {path.name}: SHA-256 {digest[:12]}… is not the manifest's {manifest['sha256'][:12]}…")
    chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    state = torch.load(path, map_location="cpu", weights_only=True)
    config = DescriptorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items()})
    network = DescriptorNet(config)
    network.load_state_dict(state["network"])
    network.eval().to(chosen)
    condition = None
    if state.get("condition") is not None:
        condition = ConditionNet(ConditionConfig.from_dict(state["condition_config"]))
        condition.load_state_dict(state["condition"])
        condition.eval().to(chosen)
    synthetic = None
    if state.get("synthetic") is not None:
        synthetic = SyntheticNet(SyntheticConfig.from_dict(state["synthetic_config"]))
        synthetic.load_state_dict(state["synthetic"])
        synthetic.eval().to(chosen)
    return Screener(
        network=network, density=ConditionalDensity.from_state(state["density"]).to(chosen), condition=condition,
        synthetic=synthetic, terms=tuple(state.get("terms", ("descriptor",))),
        calibration=Calibration(**state["calibration"]), study_threshold=state["study_threshold"],
        score_unit=state["score_unit"], version=str(state["version"]), checksum=digest, device=chosen,
        metadata=json.loads(state["metadata"]),
    )


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's state on the CPU, detached, for the weights file."""
    return {key: value.detach().cpu() for key, value in module.state_dict().items()}
