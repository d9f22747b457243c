"""The TotalSegmentator backend of the gate: the ``totalsegmentator`` package's own Python API, fast mode.

:func:`run_totalsegmentator` writes the volume as NIfTI and runs
``totalsegmentator.python_api.totalsegmentator(fast=True, roi_subset=roi_subset(), ml=True)`` on the
GPU when torch sees one (else the CPU); :func:`to_anatomy` maps its ``total`` class ids onto
:mod:`shared.anatomy` ids: same names where both have them, its 24 ribs onto ``ribs`` and its
vertebrae onto ``vertebrae``. The backend (:mod:`worker_gate.backend`) then labels the rest of the
body outline ``body`` and trims the lobes to aerated lung like the built-in ones
(:mod:`worker_gate.aerated`), since the screener is calibrated on lungs drawn that way; the organ
volumes the anatomy check judges are TotalSegmentator's own.

Fast mode with ``roi_subset`` runs two nnU-Net models: the 6 mm ``total`` model, whose organs
crop the scan, then the 3 mm one (:data:`TASK_IDS`). TotalSegmentator downloads missing weights
and sends usage statistics by default; here neither can happen: every model folder must already be
where TotalSegmentator looks (``TOTALSEG_WEIGHTS_PATH``, else ``TOTALSEG_HOME_DIR``/nnunet/results,
else ``~/.totalsegmentator/nnunet/results``) or :class:`BackendUnavailable` is raised before it is
called, and its ``config.json`` says ``send_usage_stats: false`` before every call (its
``send_usage_stats`` posts only when that key is true; no API flag exists for it).
"""

from __future__ import annotations

import multiprocessing
import tempfile
from functools import cache
from pathlib import Path

import numpy as np

from shared.anatomy import BY_LABEL, label_of
from shared.dicom.nifti import write_nifti
from shared.dicom.volume import Volume

TASK = "total"
TASK_IDS = (298, 297)
"""The 6 mm model that crops to the organs asked for, then the 3 mm fast model."""
TRAINER, PLANS, CONFIGURATION = "nnUNetTrainer_4000epochs_NoMirroring", "nnUNetPlans", "3d_fullres"
"""The model sub-folder TotalSegmentator's fast mode loads: ``{trainer}__{plans}__{configuration}``."""

RIBS = tuple(f"rib_{side}_{n}" for side in ("left", "right") for n in range(1, 13))
THORACIC_SPINE = ("vertebrae_C7", *(f"vertebrae_T{n}" for n in range(1, 13)), "vertebrae_L1")
OURS: dict[str, str] = {
    **{o.name: o.name for o in BY_LABEL.values() if o.totalsegmentator}, **dict.fromkeys(RIBS, "ribs"),
    **dict.fromkeys(THORACIC_SPINE, "vertebrae"),
}
"""TotalSegmentator class name -> :mod:`shared.anatomy` name (those of its other tasks never occur)."""


@cache
def roi_subset() -> tuple[str, ...]:
    """The ``total`` classes asked for: every organ of :mod:`shared.anatomy` the task segments, the
    ribs and the thoracic spine (what the screener and the localizer name findings by)."""
    names = set(_class_map().values())
    return tuple(name for name in OURS if name in names)


class TotalSegmentatorError(RuntimeError):
    """TotalSegmentator ran but failed; the message names the model file when one is unreadable."""


def weights_dir() -> Path:
    """The folder TotalSegmentator reads its model folders from (its own rule, see module doc)."""
    from totalsegmentator.config import get_weights_dir

    return Path(get_weights_dir())


def model_folders() -> dict[int, Path]:
    """Task id -> the model folder holding ``plans.json``, ``dataset.json`` and ``fold_0``."""
    from totalsegmentator.map_tasks_config import TASK_ID_WEIGHTS_CONFIGS

    folders = {}
    for task_id in TASK_IDS:
        info = TASK_ID_WEIGHTS_CONFIGS[task_id]
        dataset = Path(info.get("rel_path") or "") / info["foldername"]  # as libs.download_pretrained_weights
        folders[task_id] = weights_dir() / dataset / f"{TRAINER}__{PLANS}__{CONFIGURATION}"
    return folders


def missing_weights() -> list[str]:
    """What is missing for fast mode (empty when every model file is in place)."""
    missing = []
    for task_id, folder in model_folders().items():
        for name in ("plans.json", "dataset.json", "fold_0/checkpoint_final.pth"):
            if not (folder / name).is_file():
                missing.append(f"task {task_id}: {folder / name}")
    return missing


def disable_usage_stats() -> Path:
    """Write ``send_usage_stats: false`` into TotalSegmentator's ``config.json``; its path."""
    from totalsegmentator.config import get_totalseg_dir, set_config_key, setup_totalseg

    setup_totalseg()  # creates the config file (locally) when absent; sends nothing
    set_config_key("send_usage_stats", False)
    set_config_key("statistics_disclaimer_shown", True)
    return Path(get_totalseg_dir()) / "config.json"


def device() -> str:
    """``gpu`` when torch sees a CUDA device, else ``cpu``."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def run_totalsegmentator(volume: Volume) -> np.ndarray:
    """TotalSegmentator's multilabel map ``(nz, ny, nx)`` of ``volume``, its ``total`` class ids."""
    from totalsegmentator.python_api import totalsegmentator

    if multiprocessing.current_process().daemon:
        # nnU-Net spawns its preprocessing and export workers, which a daemonic process may not start
        raise TotalSegmentatorError("TotalSegmentator starts worker processes, which a daemonic process (a Celery "
                                    "prefork pool child) cannot do: run the gate worker with --pool solo or threads")
    disable_usage_stats()
    with tempfile.TemporaryDirectory(prefix="ctriage-totalseg-") as folder:
        path = write_nifti(volume, Path(folder) / "ct.nii.gz")
        try:
            image = totalsegmentator(path, None, ml=True, fast=True, roi_subset=list(roi_subset()), device=device(),
                                     quiet=True, nr_thr_resamp=1, nr_thr_saving=1)
        except Exception as error:
            raise TotalSegmentatorError(_failure(error)) from error
    labels = np.asarray(image.dataobj).astype(np.uint8).transpose(2, 1, 0)
    if labels.shape != volume.shape:
        raise TotalSegmentatorError(f"TotalSegmentator returned shape {labels.shape}, expected {volume.shape}")
    return np.ascontiguousarray(labels)


def to_anatomy(totalseg: np.ndarray) -> np.ndarray:
    """A TotalSegmentator ``total`` label map as :mod:`shared.anatomy` ids (classes not asked for -> 0)."""
    table = np.zeros(256, dtype=np.uint8)
    for index, name in _class_map().items():
        if name in OURS:
            table[index] = label_of(OURS[name])
    return table[totalseg]


@cache
def _class_map() -> dict[int, str]:
    from totalsegmentator.map_to_binary import class_map

    return dict(class_map[TASK])


def _failure(error: Exception) -> str:
    """Why the run failed; an unreadable checkpoint is named (the usual cause: a broken copy)."""
    import torch

    for task_id, folder in model_folders().items():
        checkpoint = folder / "fold_0" / "checkpoint_final.pth"
        try:
            torch.load(checkpoint, map_location="cpu", weights_only=False)
        except Exception as load_error:  # noqa: BLE001 - any failure to read it is the finding
            return (f"TotalSegmentator checkpoint of task {task_id} is unreadable ({type(load_error).__name__}: "
                    f"{load_error}); replace {checkpoint}")
    return f"TotalSegmentator failed: {type(error).__name__}: {error}"
