"""Arrays in object storage: the gate's volume, the organ label map and the anomaly map, as ``.npz``;
and the source instances' headers, as DICOM JSON.

Each array artifact is one ``.npz`` holding its array(s), the 4x4 LPS ``affine`` and JSON metadata, written
through a temporary file and streamed into the store (no pickles: everything loads with
``allow_pickle=False``). Writing the same arrays twice gives the same bytes, so a re-delivered stage
rewrites identical objects.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from pydicom.dataset import Dataset

from shared.dicom.volume import Volume, VolumeMeta
from shared.storage.base import ObjectStore


@dataclass
class LabelMap:
    """An organ label map (``uint8``, shape ``(nz, ny, nx)``) with its geometry and label names."""

    labels: np.ndarray
    affine: np.ndarray
    names: dict[int, str]


@dataclass
class AnomalyMap:
    """A calibrated anomaly map in [0, 1] (``float32``, shape ``(nz, ny, nx)``) on the volume grid."""

    scores: np.ndarray
    affine: np.ndarray


def put_volume(store: ObjectStore, key: str, volume: Volume) -> None:
    """Store a volume (HU as ``int16`` when lossless, else ``float32``) with its affine and metadata."""
    hu = volume.hu
    if hu.dtype != np.int16 and _fits_int16(hu):
        hu = hu.astype(np.int16)
    meta = {"meta": dataclasses.asdict(volume.meta), "warnings": list(volume.warnings)}
    _put_npz(store, key, compressed=False, hu=hu, affine=volume.affine, meta=_json_array(meta))


def get_volume(store: ObjectStore, key: str) -> Volume:
    """Load a volume stored by :func:`put_volume`."""
    arrays = _get_npz(store, key)
    meta = json.loads(str(arrays["meta"]))
    return Volume(hu=arrays["hu"], affine=arrays["affine"], meta=VolumeMeta(**meta["meta"]), warnings=meta["warnings"])


def get_volume_header(store: ObjectStore, key: str) -> tuple[np.ndarray, VolumeMeta]:
    """The affine and metadata of a stored volume, without decoding its voxels."""
    arrays = _get_npz(store, key, members=("affine", "meta"))
    return arrays["affine"], VolumeMeta(**json.loads(str(arrays["meta"]))["meta"])


def put_label_map(store: ObjectStore, key: str, label_map: LabelMap) -> None:
    """Store an organ label map (compressed: mostly zeros)."""
    names = {str(label): name for label, name in sorted(label_map.names.items())}
    _put_npz(
        store, key, compressed=True,
        labels=label_map.labels.astype(np.uint8, copy=False), affine=label_map.affine, names=_json_array(names),
    )


def get_label_map(store: ObjectStore, key: str) -> LabelMap:
    """Load a label map stored by :func:`put_label_map`."""
    arrays = _get_npz(store, key)
    names = {int(label): name for label, name in json.loads(str(arrays["names"])).items()}
    return LabelMap(labels=arrays["labels"], affine=arrays["affine"], names=names)


def put_anomaly_map(store: ObjectStore, key: str, anomaly: AnomalyMap) -> None:
    """Store an anomaly map as ``float16`` (scores in [0, 1] need no more; halves the bytes)."""
    _put_npz(store, key, compressed=False, scores=anomaly.scores.astype(np.float16), affine=anomaly.affine)


def get_anomaly_map(store: ObjectStore, key: str, *, dtype: type[np.floating] = np.float32) -> AnomalyMap:
    """Load an anomaly map stored by :func:`put_anomaly_map` (as ``float32``; ``np.float16``, as stored,
    saves a copy of the whole map)."""
    arrays = _get_npz(store, key)
    return AnomalyMap(scores=arrays["scores"].astype(dtype, copy=False), affine=arrays["affine"])


def _fits_int16(hu: np.ndarray) -> bool:
    if hu.size == 0:
        return True
    if np.issubdtype(hu.dtype, np.integer):
        return bool(hu.min() >= -32768 and hu.max() <= 32767)
    # Rescaled CT is integral in practice; a fractional RescaleSlope keeps float32.
    return bool(np.all(np.abs(hu) <= 32767)) and bool(np.array_equal(hu, np.round(hu)))


def _json_array(value: object) -> np.ndarray:
    return np.array(json.dumps(value, sort_keys=True))


def _put_npz(store: ObjectStore, key: str, *, compressed: bool, **arrays: np.ndarray) -> None:
    fd, path = tempfile.mkstemp(suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_npz(handle, arrays, compressed=compressed)
        store.put_file(key, path, content_type="application/x-npz")
    finally:
        os.unlink(path)


def _write_npz(handle: BinaryIO, arrays: dict[str, np.ndarray], *, compressed: bool) -> None:
    """An ``.npz`` numpy can load, with fixed timestamps (same arrays, same bytes) and fast deflate."""
    # np.savez_compressed uses zlib level 6: on a 512x512x300 label map that is seconds for a few
    # percent less; level 1 gets nearly all of the gain of a mostly-zero array.
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(handle, "w", compression=method, compresslevel=1 if compressed else None, allowZip64=True) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def _get_npz(store: ObjectStore, key: str, *, members: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    fd, path = tempfile.mkstemp(suffix=".npz")
    os.close(fd)
    try:
        store.download(key, path)
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in (members or npz.files)}
    finally:
        os.unlink(path)


SOURCE_HEADERS_VERSION = 1
_BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_DROPPED_TAGS = frozenset({0x00880200})  # Icon Image Sequence: a thumbnail, pixel data in a sequence


def put_source_headers(store: ObjectStore, key: str, headers: Sequence[Dataset]) -> None:
    """Store the source instances' headers as DICOM JSON (PS3.18 F.2): attributes every instance
    shares once, the rest (SOPInstanceUID, ImagePositionPatient, ...) per instance, in the given order.

    Private attributes and binary values are left out: the derived objects copy neither.
    """
    instances = [_header_json(header) for header in headers]
    common: dict[str, Any] = {}
    if instances:
        encoded = [{tag: json.dumps(value, sort_keys=True) for tag, value in one.items()} for one in instances]
        shared = set(encoded[0].items()).intersection(*(one.items() for one in encoded[1:]))
        common = {tag: instances[0][tag] for tag, _ in sorted(shared)}
        instances = [{tag: value for tag, value in one.items() if tag not in common} for one in instances]
    body = {"version": SOURCE_HEADERS_VERSION, "common": common, "instances": instances}
    store.put_bytes(key, json.dumps(body, separators=(",", ":"), sort_keys=True).encode(), content_type="application/json")


def get_source_headers(store: ObjectStore, key: str) -> list[Dataset]:
    """The headers stored by :func:`put_source_headers` (``ObjectNotFound`` when there are none)."""
    body = json.loads(store.get_bytes(key))
    if body.get("version") != SOURCE_HEADERS_VERSION:
        raise ValueError(f"source headers version {body.get('version')!r} is not {SOURCE_HEADERS_VERSION}")
    common = Dataset.from_json(body["common"])
    headers = []
    for instance in body["instances"]:
        # Decoding the shared attributes once is most of the time saved: the headers share those
        # elements, which their readers (the DICOM output builders) only read.
        header = Dataset({element.tag: element for element in common})
        header.update(Dataset.from_json(instance))
        headers.append(header)
    return headers


def _header_json(header: Dataset) -> dict[str, Any]:
    kept = Dataset()
    for element in header:
        if not (element.tag.is_private or element.VR in _BULK_VRS or element.tag in _DROPPED_TAGS):
            kept.add(element)
    return kept.to_json_dict(bulk_data_threshold=1 << 30, suppress_invalid_tags=True)
