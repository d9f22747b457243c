"""Organ names and label ids shared by the phantoms, the gate, the screener and the localizer.

Names follow TotalSegmentator's class names where such a class exists (``lung_upper_lobe_left``,
``heart``, ``aorta``...), so organ masks from TotalSegmentator and from the built-in segmenter are
interchangeable. Names marked ``ours`` have no TotalSegmentator counterpart. A label map is an
``uint8`` array on a volume's grid whose values are the ids below (0 = outside the body).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Organ:
    """One label of an organ label map."""

    label: int
    name: str
    display: str
    totalsegmentator: bool = True


ORGANS: tuple[Organ, ...] = (
    Organ(1, "lung_upper_lobe_left", "left lung, upper lobe"),
    Organ(2, "lung_lower_lobe_left", "left lung, lower lobe"),
    Organ(3, "lung_upper_lobe_right", "right lung, upper lobe"),
    Organ(4, "lung_middle_lobe_right", "right lung, middle lobe"),
    Organ(5, "lung_lower_lobe_right", "right lung, lower lobe"),
    Organ(6, "trachea", "trachea"),
    Organ(7, "bronchi", "main and lobar bronchi", totalsegmentator=False),
    Organ(8, "lung_vessels", "pulmonary vessels"),
    Organ(9, "heart", "heart"),
    Organ(10, "aorta", "aorta"),
    Organ(11, "pulmonary_artery", "pulmonary artery"),
    Organ(12, "esophagus", "esophagus"),
    Organ(13, "superior_vena_cava", "superior vena cava"),
    Organ(14, "mediastinum", "mediastinum", totalsegmentator=False),
    Organ(15, "pleural_cavity", "pleural cavity", totalsegmentator=False),
    Organ(16, "sternum", "sternum"),
    Organ(17, "ribs", "ribs", totalsegmentator=False),
    Organ(18, "costal_cartilages", "costal cartilages"),
    Organ(19, "vertebrae", "thoracic spine", totalsegmentator=False),
    Organ(20, "spinal_cord", "spinal cord"),
    Organ(21, "skeletal_muscle", "chest wall muscle"),
    Organ(22, "subcutaneous_fat", "subcutaneous fat"),
    Organ(23, "skin", "skin", totalsegmentator=False),
    Organ(24, "liver", "liver"),
    Organ(25, "stomach", "stomach"),
    Organ(26, "spleen", "spleen"),
    Organ(27, "body", "other body tissue", totalsegmentator=False),
    # Whole lungs for segmenters that cannot split lobes (the baseline gate's threshold mask).
    Organ(28, "lung_left", "left lung", totalsegmentator=False),
    Organ(29, "lung_right", "right lung", totalsegmentator=False),
    Organ(30, "scapula_left", "left scapula"),
    Organ(31, "scapula_right", "right scapula"),
    Organ(32, "clavicula_left", "left clavicle"),
    Organ(33, "clavicula_right", "right clavicle"),
)

BY_NAME: dict[str, Organ] = {o.name: o for o in ORGANS}
BY_LABEL: dict[int, Organ] = {o.label: o for o in ORGANS}

LEFT_LUNG = ("lung_upper_lobe_left", "lung_lower_lobe_left")
RIGHT_LUNG = ("lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right")
LUNG_LOBES = LEFT_LUNG + RIGHT_LUNG
LEFT_LUNG_ANY = LEFT_LUNG + ("lung_left",)
RIGHT_LUNG_ANY = RIGHT_LUNG + ("lung_right",)
LUNG_ANY = LEFT_LUNG_ANY + RIGHT_LUNG_ANY
"""Every name that denotes (part of) a lung, whether the segmenter split lobes or not."""


def label_of(name: str) -> int:
    """Label id of an organ name; ``KeyError`` for unknown names."""
    return BY_NAME[name].label


def label_names() -> dict[int, str]:
    """``{label id: name}`` for every organ, as stored beside label-map artifacts."""
    return {o.label: o.name for o in ORGANS}
