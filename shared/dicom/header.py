"""Header values read straight from pydicom's raw elements, for the per-slice hot path.

pydicom converts an element on first access (VR lookup, character set decoding, one ``DSfloat`` per
number), which costs more than parsing the whole header; the loader reads a dozen attributes from
each of hundreds of slices. String-VR values (CS, DS, IS, UI, ...; PS3.5 6.2: default character
repertoire) are split from the raw bytes here, binary ones (US, SS) unpacked; elements already
converted (or in datasets built in memory) are read from their value.
"""

from __future__ import annotations

import struct
from functools import lru_cache

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

_BINARY_FORMATS = {"US": "H", "SS": "h", "UL": "I", "SL": "i"}


@lru_cache(maxsize=None)
def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(f"{keyword!r} is not a DICOM keyword")
    return tag


@lru_cache(maxsize=None)
def _vr(keyword: str) -> str:
    return dictionary_VR(_tag(keyword)).split(" ")[0]  # 'US or SS' -> 'US' (callers wrap as needed)


def strings(ds: Dataset, keyword: str) -> list[str] | None:
    """The values of a string or integer attribute as stripped strings; None when absent."""
    element = ds.get_item(_tag(keyword))
    if element is None:
        return None
    if isinstance(element, RawDataElement):
        raw = element.value
        if not raw:
            return []
        vr = _vr(keyword)
        if vr in _BINARY_FORMATS:
            code = _BINARY_FORMATS[vr]
            count = len(raw) // struct.calcsize(code)
            order = "<" if element.is_little_endian else ">"
            return [str(v) for v in struct.unpack(f"{order}{count}{code}", raw[: count * struct.calcsize(code)])]
        return [v.strip(" \x00") for v in raw.decode("latin-1").split("\\")]
    value = element.value
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return [str(v).strip() for v in value]
    return [str(value).strip(" \x00")]


def string(ds: Dataset, keyword: str) -> str:
    """The first value of an attribute as a string ('' when absent or empty)."""
    values = strings(ds, keyword)
    return values[0] if values else ""


def floats(ds: Dataset, keyword: str, count: int) -> tuple[float, ...] | None:
    """Exactly ``count`` finite numbers (DS values such as ImagePositionPatient); None otherwise."""
    values = strings(ds, keyword)
    if not values or len(values) != count:
        return None
    try:
        numbers = tuple(float(v) for v in values)
    except ValueError:
        return None
    return numbers if all(n == n and abs(n) != float("inf") for n in numbers) else None


def number(ds: Dataset, keyword: str) -> float | None:
    """The first value as a float; None when absent, empty or not a number."""
    value = string(ds, keyword)
    try:
        return float(value) if value else None
    except ValueError:
        return None


def integer(ds: Dataset, keyword: str, default: int) -> int:
    """The first value as an int (IS, US, SS), or ``default``."""
    value = number(ds, keyword)
    return int(value) if value is not None else default
