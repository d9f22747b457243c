"""Coded concepts of the DICOM outputs (PS3.16): organ finding sites, the finding, the verdict, units.

Organs follow TotalSegmentator's DICOM mapping (``totalsegmentator_snomed_mapping.csv``): a lobe is
"Upper/Lower lobe of lung" post-coordinated with a laterality (SCT 7771000 Left, 24028007 Right),
so our SEG segments and SR finding sites match what TotalSegmentator-aware viewers expect. Codes come
from :data:`pydicom.sr.codedict.codes` where it has them; the few it lacks are spelled out here.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from shared.anatomy import BY_NAME

SCT = codes.SCT


@dataclass(frozen=True)
class AnatomicConcept:
    """Where a finding lies: an anatomic structure, optionally with its laterality (CID 244)."""

    structure: Code
    laterality: Code | None = None


ORGAN_CONCEPTS: dict[str, AnatomicConcept] = {
    "lung_upper_lobe_left": AnatomicConcept(SCT.UpperLobeOfLung, SCT.Left),
    "lung_lower_lobe_left": AnatomicConcept(SCT.LowerLobeOfLung, SCT.Left),
    "lung_upper_lobe_right": AnatomicConcept(SCT.UpperLobeOfLung, SCT.Right),
    "lung_middle_lobe_right": AnatomicConcept(SCT.MiddleLobeOfRightLung),
    "lung_lower_lobe_right": AnatomicConcept(SCT.LowerLobeOfLung, SCT.Right),
    "trachea": AnatomicConcept(SCT.Trachea),
    "bronchi": AnatomicConcept(SCT.Bronchus),
    "lung_vessels": AnatomicConcept(Code("281158006", "SCT", "Pulmonary vascular structure")),
    "heart": AnatomicConcept(SCT.Heart),
    "aorta": AnatomicConcept(SCT.Aorta),
    "pulmonary_artery": AnatomicConcept(SCT.PulmonaryArtery),
    "esophagus": AnatomicConcept(SCT.Esophagus),
    "superior_vena_cava": AnatomicConcept(SCT.SuperiorVenaCava),
    "mediastinum": AnatomicConcept(SCT.Mediastinum),
    "pleural_cavity": AnatomicConcept(SCT.Pleura),  # what lies in the cavity is sited at the pleura
    "sternum": AnatomicConcept(SCT.Sternum),
    "ribs": AnatomicConcept(SCT.Rib),
    "costal_cartilages": AnatomicConcept(SCT.CostalCartilage),
    "vertebrae": AnatomicConcept(SCT.ThoracicSpine),
    "spinal_cord": AnatomicConcept(SCT.SpinalCord),
    "skeletal_muscle": AnatomicConcept(SCT.SkeletalMuscle),
    "subcutaneous_fat": AnatomicConcept(SCT.SubcutaneousTissue),
    "skin": AnatomicConcept(SCT.Skin),
    "liver": AnatomicConcept(SCT.Liver),
    "stomach": AnatomicConcept(SCT.Stomach),
    "spleen": AnatomicConcept(SCT.Spleen),
    "body": AnatomicConcept(SCT.Thorax),  # body tissue of a chest CT outside every named organ
    "lung_left": AnatomicConcept(SCT.Lung, SCT.Left),
    "lung_right": AnatomicConcept(SCT.Lung, SCT.Right),
    "scapula_left": AnatomicConcept(SCT.Scapula, SCT.Left),
    "scapula_right": AnatomicConcept(SCT.Scapula, SCT.Right),
    "clavicula_left": AnatomicConcept(SCT.Clavicle, SCT.Left),
    "clavicula_right": AnatomicConcept(SCT.Clavicle, SCT.Right),
}
"""Finding site of each :mod:`shared.anatomy` organ name."""

FINDING_CATEGORY = SCT.MorphologicallyAbnormalStructure
"""SEG segmented property category and SR finding category (CID 7150 / TID 1411 row 11)."""
FINDING_TYPE = SCT.Lesion
"""What a finding is: tissue the model finds unlike a normal chest (no pathology class is named)."""
PROCEDURE_REPORTED = Code("169069000", "SCT", "CT of chest")
"""TID 1500 Procedure Reported (CID 100 is extensible)."""

VERDICT_CONCEPT = codes.DCM.OverallAssessment
VERDICT_VALUES: dict[str, Code] = {"normal": SCT.Normal, "pathology": SCT.Abnormal}
"""Study verdict -> coded value of the Overall Assessment qualitative evaluation."""
STUDY_SCORE = SCT.Score
ANOMALY_SCORE = SCT.Score
SCORE_MAXIMUM = SCT.Maximum
SCORE_MEAN = SCT.Mean
VOLUME = SCT.Volume

UNIT_MILLILITRE = Code("ml", "UCUM", "milliliter")
UNIT_SCORE = Code("{score}", "UCUM", "score")
"""Unitless calibrated score in [0, 1] (UCUM annotation)."""
UNITS: dict[str, Code] = {"ml": UNIT_MILLILITRE}
"""Report ``score_unit`` -> UCUM unit; any other unit is written as :data:`UNIT_SCORE`."""


def organ_concept(name: str) -> AnatomicConcept | None:
    """Finding site of a :mod:`shared.anatomy` organ name; None outside every organ or for unknown names."""
    return ORGAN_CONCEPTS.get(name) if name in BY_NAME else None
