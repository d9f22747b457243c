"""Writing phantom cases to disk: DICOM series, NIfTI organ labels and lesion masks, JSON ground truth.

Layout of one case folder::

    dicom/CT_00001.dcm ...   the CT series (shared.dicom.writer)
    labels.nii.gz            organ label map (ids of shared.anatomy)
    lesions.nii.gz           lesion mask (0 = none, n = lesion with mask_id n)
    manifest.json            ground truth: geometry, lesions (type, organ, size, centre in LPS mm
                             and voxel), parameters, label names
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from shared.anatomy import label_names
from shared.dicom.nifti import write_label_nifti
from shared.dicom.writer import write_ct_series
from shared.phantoms.generate import Phantom

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def phantom_manifest(phantom: Phantom, *, case: str) -> dict:
    """The JSON ground truth of a phantom (no file names yet)."""
    v = phantom.volume
    return {
        "version": MANIFEST_VERSION,
        "case": case,
        "kind": "phantom",
        "seed": phantom.params.seed,
        "shape": list(v.shape),
        "spacing": list(v.spacing),
        "affine_lps": np.round(v.affine, 6).tolist(),
        "study_instance_uid": v.meta.study_instance_uid,
        "series_instance_uid": v.meta.series_instance_uid,
        "body_part_examined": v.meta.body_part_examined,
        "contrast_phase": phantom.params.scanner.contrast_phase,
        "normal": not phantom.lesions,
        "lesions": [lesion.as_dict() for lesion in phantom.lesions],
        "label_names": {str(k): name for k, name in label_names().items()},
        "params": phantom.params.as_dict(),
    }


def write_phantom_case(phantom: Phantom, out_dir: Path, *, case: str | None = None) -> dict:
    """Write one phantom as a case folder; returns its manifest (also saved as manifest.json)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    case = case or out_dir.name
    v = phantom.volume
    files = write_ct_series(v, out_dir / "dicom", series_description=v.meta.series_description,
                            uid_entropy=f"ctriage-phantom-{phantom.params.seed}")
    write_label_nifti(phantom.labels, out_dir / "labels.nii.gz", v.affine)
    write_label_nifti(phantom.lesion_mask, out_dir / "lesions.nii.gz", v.affine)
    manifest = phantom_manifest(phantom, case=case)
    manifest["files"] = {
        "dicom_dir": "dicom", "dicom_count": len(files), "labels": "labels.nii.gz", "lesion_mask": "lesions.nii.gz",
    }
    save_manifest(manifest, out_dir / MANIFEST_NAME)
    return manifest


def save_manifest(manifest: dict, path: Path) -> Path:
    """Write a manifest as indented JSON."""
    path = Path(path)
    path.write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n")
    return path


def load_manifest(path: Path) -> dict:
    """Read a manifest (a case folder or the file itself)."""
    path = Path(path)
    return json.loads((path / MANIFEST_NAME if path.is_dir() else path).read_text())


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
