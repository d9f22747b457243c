"""Inputs the gate must refuse (or question), written as files: one folder per case.

Kinds and what a correct gate answers (``expected_reason`` is the loader's stable code where the
loader itself refuses; the others pass loading and must be refused by the tag or anatomy check):

* ``head``, ``abdomen``, ``knee``: CT of another body part (tags say so; no lungs, no heart);
* ``mr``: MR Image Storage objects (Modality MR) -> ``not_ct``;
* ``cr``, ``dx``: chest radiographs (CR Image Storage; Digital X-Ray For Presentation) -> ``not_ct``;
* ``localizer``: a CT scout alone (ImageType ORIGINAL\\PRIMARY\\LOCALIZER) -> ``no_ct_series``;
* ``corrupted``: chest CT files whose header after DICM is overwritten with 0xFF -> ``truncated``;
* ``truncated``: chest CT files cut short -> ``truncated``;
* ``not_dicom``: a text file, a PNG and random bytes -> ``not_dicom``;
* ``no_body_part``: a chest CT without BodyPartExamined (the anatomy check must decide);
* ``tagged_head``: a chest CT whose tags say HEAD (refused by tags although it is a chest).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

from shared.dicom.volume import Volume, VolumeMeta
from shared.dicom.writer import ct_slice_datasets, save_dataset, write_ct_series
from shared.phantoms.other_parts import abdomen_volume, head_volume, knee_volume

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

NEGATIVE_KINDS: dict[str, str | None] = {
    "head": None, "abdomen": None, "knee": None, "mr": "not_ct", "cr": "not_ct", "dx": "not_ct",
    "localizer": "no_ct_series", "corrupted": "truncated", "truncated": "truncated",
    "not_dicom": "not_dicom", "no_body_part": None, "tagged_head": None,
}
"""Every negative kind and the loader's reason code for it (None: it loads; a later check refuses)."""
EXPECTED_GATE = {
    "head": "refuse: BodyPartExamined HEAD, no lungs", "abdomen": "refuse: BodyPartExamined ABDOMEN, no lungs",
    "knee": "refuse: BodyPartExamined KNEE, no lungs", "no_body_part": "anatomy check decides (it is a chest)",
    "tagged_head": "refuse: BodyPartExamined HEAD",
}
DEFAULT_SHAPE = (32, 128, 128)


@dataclass
class NegativeCase:
    """One written negative case."""

    kind: str
    folder: Path
    files: list[Path]
    expected_reason: str | None
    expected: str
    tags: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready description (paths relative to the case folder)."""
        return {"kind": self.kind, "files": [p.name for p in self.files], "expected_reason": self.expected_reason,
                "expected": self.expected, "tags": self.tags}


def write_negative(kind: str, out_dir: Path, *, seed: int, shape: tuple[int, int, int] | None = None) -> NegativeCase:
    """Write the negative case ``kind`` (see :data:`NEGATIVE_KINDS`) into ``out_dir``."""
    if kind not in NEGATIVE_KINDS:
        raise ValueError(f"unknown negative kind {kind!r}; known: {', '.join(NEGATIVE_KINDS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shape = tuple(shape or DEFAULT_SHAPE)
    rng = np.random.default_rng([int(seed), 99])
    files, tags = _WRITERS[kind](out_dir, seed, shape, rng)
    reason = NEGATIVE_KINDS[kind]
    expected = EXPECTED_GATE.get(kind) or f"refuse: {reason}"
    return NegativeCase(kind=kind, folder=out_dir, files=files, expected_reason=reason, expected=expected, tags=tags)


def _meta(seed: int, kind: str, body_part: str, description: str) -> VolumeMeta:
    uid = lambda part: generate_uid(entropy_srcs=["ctriage-negative", kind, str(seed), part])  # noqa: E731
    return VolumeMeta(
        study_instance_uid=uid("study"), series_instance_uid=uid("series"), frame_of_reference_uid=uid("frame"),
        sop_class_uid=CT_IMAGE_STORAGE, patient_id=f"NEG{seed:08d}", patient_name=f"NEGATIVE^{kind.upper()}",
        patient_birth_date="19700101", patient_sex="O", study_date="20240101", study_time="120000",
        study_id=str(seed % 100000), accession_number=f"NG{seed:08d}", study_description=description,
        series_number=2, modality="CT", body_part_examined=body_part, protocol_name=description,
        manufacturer="ctriage-phantom", image_type=["ORIGINAL", "PRIMARY", "AXIAL"],
    )


def _other_ct(make, body_part: str):
    def write(out_dir: Path, seed: int, shape, rng):
        hu, grid = make(shape, rng)
        noisy = hu + rng.normal(0.0, 12.0, size=hu.shape).astype(np.float32)
        volume = Volume(hu=np.rint(np.clip(noisy, -1024, 3071)).astype(np.int16), affine=grid.affine,
                        meta=_meta(seed, body_part.lower(), body_part, f"CT {body_part}"))
        files = write_ct_series(volume, out_dir, series_description=f"CT {body_part}", uid_entropy=f"neg-{seed}")
        return files, {"Modality": "CT", "BodyPartExamined": body_part}
    return write


def _chest(seed: int, shape) -> Volume:
    from shared.phantoms.generate import generate_phantom

    return generate_phantom(seed=seed, shape=shape).volume


def _chest_ct(body_part: str | None, description: str):
    def write(out_dir: Path, seed: int, shape, rng):
        volume = _chest(seed, shape)
        volume.meta.body_part_examined = body_part or ""
        volume.meta.study_description = description
        volume.meta.protocol_name = description
        files = write_ct_series(volume, out_dir, series_description=description, uid_entropy=f"neg-{seed}")
        return files, {"Modality": "CT", "BodyPartExamined": body_part}
    return write


def _mr(out_dir: Path, seed: int, shape, rng):
    """T1-like MR of the head phantom: fat bright, brain grey, CSF and bone dark; no HU."""
    hu, grid = head_volume(shape, rng)
    signal = np.interp(hu, [-1000, -100, 0, 10, 35, 60, 600, 1200], [0, 900, 300, 150, 600, 500, 200, 40])
    signal = np.clip(signal + rng.normal(0, 15, size=hu.shape), 0, 4095).astype(np.uint16)
    volume = Volume(hu=hu.astype(np.int16), affine=grid.affine, meta=_meta(seed, "mr", "HEAD", "MR HEAD"))
    volume.meta.sop_class_uid, volume.meta.modality = MR_IMAGE_STORAGE, "MR"
    files = []
    for k, ds in enumerate(ct_slice_datasets(volume, series_description="T1 SE AX", uid_entropy=f"neg-mr-{seed}")):
        for keyword in ("RescaleIntercept", "RescaleSlope", "RescaleType", "KVP", "ConvolutionKernel",
                        "WindowCenter", "WindowWidth"):
            if keyword in ds:
                delattr(ds, keyword)
        ds.PixelRepresentation, ds.BitsStored, ds.HighBit = 0, 12, 11
        ds.PixelData = signal[k].astype("<u2").tobytes()
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "SE", "NONE", ""
        ds.MRAcquisitionType, ds.RepetitionTime, ds.EchoTime = "2D", "500", "15"
        ds.EchoTrainLength, ds.MagneticFieldStrength, ds.ImageType = 1, "1.5", ["ORIGINAL", "PRIMARY", "OTHER"]
        files.append(save_dataset(ds, out_dir / f"MR_{k + 1:05d}.dcm"))
    return files, {"Modality": "MR", "SOPClassUID": MR_IMAGE_STORAGE}


def _radiograph(seed: int, shape) -> tuple[np.ndarray, float]:
    """A PA chest radiograph made by projecting a phantom through y; 12-bit, rows = head to feet."""
    volume = _chest(seed, shape)
    mu = np.clip(volume.hu.astype(np.float32) + 1000.0, 0, None) / 1000.0 * 0.02  # 1/mm
    path = mu.sum(axis=1) * volume.spacing[1]  # (nz, nx)
    image = 1.0 - np.exp(-path)
    image = image[::-1]  # head at the top
    reps = max(1, int(round(volume.spacing[2] / volume.spacing[0])))
    image = np.repeat(image, reps, axis=0)
    return np.clip(image / max(float(image.max()), 1e-6) * 4095, 0, 4095).astype(np.uint16), volume.spacing[0]


def _xray(modality: str, sop_class: str):
    def write(out_dir: Path, seed: int, shape, rng):
        image, spacing = _radiograph(seed, shape)
        meta = _meta(seed, modality.lower(), "CHEST", f"{modality} CHEST PA")
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = generate_uid(entropy_srcs=["ctriage-negative", modality, str(seed), "sop"])
        ds.PatientName, ds.PatientID = meta.patient_name, meta.patient_id
        ds.PatientBirthDate, ds.PatientSex = meta.patient_birth_date, meta.patient_sex
        ds.StudyInstanceUID, ds.SeriesInstanceUID = meta.study_instance_uid, meta.series_instance_uid
        ds.StudyDate, ds.StudyTime, ds.StudyID = meta.study_date, meta.study_time, meta.study_id
        ds.AccessionNumber, ds.ReferringPhysicianName = meta.accession_number, ""
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, 1, 1
        ds.BodyPartExamined, ds.ViewPosition, ds.PatientOrientation = "CHEST", "PA", ["L", "F"]
        ds.Manufacturer = "ctriage-phantom"
        ds.ContentDate, ds.ContentTime = meta.study_date, meta.study_time
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.ImagerPixelSpacing = [f"{spacing:.4f}", f"{spacing:.4f}"]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = image.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        if modality == "DX":
            ds.PresentationIntentType, ds.DetectorType = "FOR PRESENTATION", "DIRECT"
            ds.PresentationLUTShape, ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "IDENTITY", "0", "1", "US"
            ds.BurnedInAnnotation, ds.LossyImageCompression = "NO", "00"
        ds.PixelData = image.astype("<u2").tobytes()
        return [save_dataset(ds, out_dir / f"{modality}_00001.dcm")], {"Modality": modality, "SOPClassUID": sop_class}
    return write


def _localizer(out_dir: Path, seed: int, shape, rng):
    """A CT scout: one coronal projection image, ImageType ORIGINAL\\PRIMARY\\LOCALIZER."""
    image, spacing = _radiograph(seed, shape)
    hu = (image.astype(np.float32) / 4095 * 1500 - 1000)[None].astype(np.int16)  # (1, rows, cols)
    affine = np.eye(4)
    affine[:3, 0] = [spacing, 0, 0]  # columns run to the patient's left
    affine[:3, 1] = [0, 0, -spacing]  # rows run to the feet
    affine[:3, 2] = [0, 1.0, 0]
    affine[:3, 3] = [-image.shape[1] / 2 * spacing, 0, 0]
    meta = _meta(seed, "localizer", "CHEST", "CT CHEST")
    meta.image_type = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    meta.series_number = 1
    files = write_ct_series(Volume(hu=hu, affine=affine, meta=meta), out_dir, series_description="Topogram",
                            uid_entropy=f"neg-loc-{seed}")
    return files, {"Modality": "CT", "ImageType": "ORIGINAL\\PRIMARY\\LOCALIZER"}


def _damaged(mode: str):
    def write(out_dir: Path, seed: int, shape, rng):
        files, tags = _chest_ct("CHEST", "CT CHEST")(out_dir, seed, shape, rng)
        for path in files:
            data = bytearray(path.read_bytes())
            if mode == "truncated":
                data = data[: int(len(data) * 0.6)]
            else:  # the preamble and DICM prefix survive; the file meta and the header after it do not
                data[132:1024] = b"\xff" * min(892, len(data) - 132)
            path.write_bytes(bytes(data))
        return files, tags
    return write


def _not_dicom(out_dir: Path, seed: int, shape, rng):
    text = out_dir / "report.txt"
    text.write_text("Chest CT report: no acute findings.\n")
    png = out_dir / "slice.png"
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, size=(64, 64), dtype=np.uint8)).save(buf, format="PNG")
    png.write_bytes(buf.getvalue())
    noise = out_dir / "random.bin"
    noise.write_bytes(rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    return [text, png, noise], {}


_WRITERS = {
    "head": _other_ct(head_volume, "HEAD"),
    "abdomen": _other_ct(abdomen_volume, "ABDOMEN"),
    "knee": _other_ct(knee_volume, "KNEE"),
    "mr": _mr,
    "cr": _xray("CR", CR_IMAGE_STORAGE),
    "dx": _xray("DX", DX_FOR_PRESENTATION),
    "localizer": _localizer,
    "corrupted": _damaged("corrupted"),
    "truncated": _damaged("truncated"),
    "not_dicom": _not_dicom,
    "no_body_part": _chest_ct(None, "CT THORAX"),
    "tagged_head": _chest_ct("HEAD", "CT HEAD"),
}
