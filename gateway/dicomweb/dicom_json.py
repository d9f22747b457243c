"""The DICOM JSON Model (PS3.18 Annex F): attributes keyed by 8-digit tag, each with its VR and values."""

from __future__ import annotations

from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword

DICOM_JSON = "application/dicom+json"

_NUMBER_VRS = frozenset({"IS", "DS", "US", "UL", "SS", "SL", "FL", "FD", "SV", "UV"})  # JSON numbers (PS3.18 F.2.3)


def tag_of(keyword: str) -> str:
    """The 8 hex digit tag of a DICOM keyword, e.g. ``PatientID`` -> ``00100020``."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return f"{tag:08X}"


def attribute(keyword: str, *values: Any) -> tuple[str, dict[str, Any]]:
    """One attribute as ``(tag, {"vr": ..., "Value": [...]})``; no ``Value`` when there is none (PS3.18 F.2.5)."""
    tag = tag_of(keyword)
    vr = dictionary_VR(int(tag, 16))
    present = [value for value in values if value is not None and value != ""]
    element: dict[str, Any] = {"vr": vr}
    if present:
        if vr == "PN":
            element["Value"] = [{"Alphabetic": str(value)} for value in present]
        elif vr in _NUMBER_VRS:
            element["Value"] = [int(value) if vr != "DS" else float(value) for value in present]
        elif vr == "SQ":
            element["Value"] = list(present)
        else:
            element["Value"] = [str(value) for value in present]
    return tag, element


def dataset(*attributes: tuple[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A DICOM JSON object from :func:`attribute` results, its keys in tag order."""
    return dict(sorted(attributes))
