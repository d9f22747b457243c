"""HU of lung, fat, muscle, blood and bone: real chest CT (../shared/data/ct) beside phantoms.

The same threshold/morphology masks are applied to both, so the numbers compare like with like:

* lung: inside the body outline, below -400 HU, eroded 2 voxels in-plane (vessels fall out);
* fat: -200..-30 HU inside the body, eroded 1 voxel;
* muscle: 0..100 HU within 5-45 mm of the skin (chest wall), eroded 1 voxel;
* bone: above 300 HU within 45 mm of the skin (ribs, sternum, scapulae; not contrast-filled vessels);
* blood: the aorta (TotalSegmentator's mask on the CTA; the phantom's own aorta label), eroded.

Each real scan is compared with phantoms of its contrast phase. Run: ``python -m bench.phantom_hu``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

REPO = Path(__file__).resolve().parents[1]
SHARED_CT = Path(os.environ.get("CTRIAGE_SHARED_CT", REPO.parent / "shared" / "data" / "ct"))
TISSUES = ("lung", "fat", "muscle", "blood", "bone")


@dataclass
class Scan:
    """A CT as ``(nz, ny, nx)`` HU with in-plane pixel size, and an optional aorta mask."""

    name: str
    phase: str
    hu: np.ndarray
    pixel_mm: float
    aorta: np.ndarray | None = None


def tissue_masks(scan: Scan) -> dict[str, np.ndarray]:
    """The threshold/morphology masks of the module doc, ``{tissue: bool (nz, ny, nx)}``."""
    hu = scan.hu
    body = np.zeros(hu.shape, dtype=bool)
    depth = np.zeros(hu.shape, dtype=np.float32)
    for k in range(hu.shape[0]):
        sl = ndi.binary_opening(hu[k] > -400, iterations=2)
        lab, n = ndi.label(sl)
        if n == 0:
            continue
        sizes = ndi.sum(sl, lab, index=np.arange(1, n + 1))
        body[k] = ndi.binary_fill_holes(lab == 1 + int(np.argmax(sizes)))
        depth[k] = ndi.distance_transform_edt(body[k]) * scan.pixel_mm
    in_plane = np.zeros((1, 3, 3), dtype=bool)
    in_plane[0, 1, :] = in_plane[0, :, 1] = True
    masks = {
        "lung": ndi.binary_erosion(body & (hu < -400), in_plane, iterations=2),
        "fat": ndi.binary_erosion(body & (hu > -200) & (hu < -30), in_plane),
        "muscle": ndi.binary_erosion(body & (hu > 0) & (hu < 100) & (depth > 5) & (depth < 45), in_plane),
        "bone": body & (hu > 300) & (depth < 45),
    }
    if scan.aorta is not None:
        masks["blood"] = ndi.binary_erosion(scan.aorta, iterations=2)
    return masks


def stats(scan: Scan) -> dict[str, tuple[float, float, float, int]]:
    """``{tissue: (median, q25, q75, voxels)}``."""
    out = {}
    for tissue, mask in tissue_masks(scan).items():
        values = scan.hu[mask]
        if values.size < 50:
            continue
        q25, med, q75 = np.percentile(values, [25, 50, 75])
        out[tissue] = (float(med), float(q25), float(q75), int(values.size))
    return out


def real_scans(root: Path = SHARED_CT) -> list[Scan]:
    """The whole-thorax real scans present in ``root`` (skipped when absent)."""
    scans: list[Scan] = []
    a0001 = root / "lungdx_A0001_adenocarcinoma" / "dicom_5mm_kernelL"
    if a0001.is_dir():
        from shared.dicom.reader import read_study

        v = read_study(a0001)
        scans.append(Scan("lungdx_A0001 (5 mm, kernel L)", "none", v.hu.astype(np.float32), v.spacing[0]))
    for name in ("lung1", "lung2"):
        path = root / f"chest_ct_nsclc_pyradiomics_{name}" / f"{name}_image.nrrd"
        if path.exists():
            import nrrd

            data, header = nrrd.read(str(path))  # (x, y, z) in LPS ("left-posterior-superior")
            pixel = float(np.linalg.norm(np.asarray(header["space directions"])[0]))
            scans.append(Scan(f"pyradiomics {name} (5 mm)", "venous", data.transpose(2, 1, 0).astype(np.float32), pixel))
    cta = root / "chest_cta_normal_lungs_totalseg_aorta"
    if (cta / "example_ct.nii.gz").exists():
        import nibabel as nib

        img = nib.load(str(cta / "example_ct.nii.gz"))
        hu = np.asarray(img.dataobj, dtype=np.float32)
        aorta = np.zeros(hu.shape, dtype=bool)
        mask_img = nib.load(str(cta / "model_masks" / "aorta.nii.gz"))
        offset = np.rint(np.linalg.solve(img.affine, mask_img.affine)[:3, 3]).astype(int)
        m = np.asarray(mask_img.dataobj) > 0
        sl = tuple(slice(o, o + s) for o, s in zip(offset, m.shape))
        aorta[sl] = m
        scans.append(Scan("CTA normal lungs (1.5 mm)", "arterial", hu.transpose(2, 1, 0), abs(float(img.affine[0, 0])),
                          aorta.transpose(2, 1, 0)))
    return scans


def phantom_scans(phase: str, *, seeds: tuple[int, ...] = (101, 102), shape=(72, 320, 320)) -> list[Scan]:
    """Phantoms of one contrast phase, measured like the real scans (aorta = their own label)."""
    from shared.anatomy import label_of
    from shared.phantoms import generate_phantom

    scans = []
    for seed in seeds:
        ph = generate_phantom(seed=seed, shape=shape, contrast=phase)
        scans.append(Scan(f"phantom {seed}", phase, ph.volume.hu.astype(np.float32), ph.volume.spacing[0],
                          ph.labels == label_of("aorta")))
    return scans


def pooled(scans: list[Scan]) -> dict[str, tuple[float, float, float, int]]:
    """Median of the per-scan medians and quartiles, per tissue."""
    per = [stats(s) for s in scans]
    out = {}
    for tissue in TISSUES:
        rows = [p[tissue] for p in per if tissue in p]
        if rows:
            arr = np.array([r[:3] for r in rows])
            out[tissue] = (*np.median(arr, axis=0), sum(r[3] for r in rows))
    return out


def comparison_rows() -> list[tuple[str, str, str, str, str, str]]:
    """``(real scan, phase, tissue, real median [IQR], phantom median [IQR], difference)`` rows."""
    rows = []
    phantoms: dict[str, dict] = {}
    for scan in real_scans():
        real = stats(scan)
        if scan.phase not in phantoms:
            phantoms[scan.phase] = pooled(phantom_scans(scan.phase))
        ph = phantoms[scan.phase]
        for tissue in TISSUES:
            r, p = real.get(tissue), ph.get(tissue)
            fmt = lambda s: f"{s[0]:7.0f} [{s[1]:.0f}, {s[2]:.0f}]" if s else "    n/a"  # noqa: E731
            diff = f"{p[0] - r[0]:+6.0f}" if r and p else "   n/a"
            rows.append((scan.name, scan.phase, tissue, fmt(r), fmt(p), diff))
    return rows


def print_table() -> None:
    """Print the comparison table (or say why there is none)."""
    if not SHARED_CT.is_dir():
        print(f"phantom HU comparison skipped: real CT folder {SHARED_CT} is missing")
        return
    print("HU median [IQR]: real chest CT vs phantoms of the same contrast phase (same masks on both)")
    print(f"{'real scan':32s} {'phase':8s} {'tissue':7s} {'real':>22s} {'phantom':>22s} {'diff':>6s}")
    for row in comparison_rows():
        print(f"{row[0]:32s} {row[1]:8s} {row[2]:7s} {row[3]:>22s} {row[4]:>22s} {row[5]:>6s}")


if __name__ == "__main__":
    print_table()
