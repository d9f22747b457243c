"""What identifies a received instance (its SOP Class and the three instance UIDs), read straight off its bytes.

The PACS intake (C-STORE, STOW-RS) indexes every instance it receives under its study, series and
SOP Instance UID, and once the series is known it needs nothing else from the header. pydicom builds
an element object per attribute, which costs more than storing the instance; this walks the encoded
elements instead (PS3.5 7.1 data elements, 7.5 nested data sets; PS3.10 7.1 File Meta Information)
and stops after group 0020, where the UIDs end. Anything it does not expect (big endian, deflate, a
UN sequence, an attribute missing or cut short) returns ``None``: the caller then parses the object
with pydicom (:func:`shared.dicom.instances.read_instance`), which also says why a bad object is bad.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

_PREAMBLE_AND_PREFIX = 132  # 128-byte preamble, then "DICM" (PS3.10 7.1)
_IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
_NOT_WALKED = frozenset({
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired)
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian: the data set is compressed
})
# Explicit VRs with 2 reserved bytes and a 32-bit length (PS3.5 Table 7.1-1); the rest have a 16-bit one.
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_SHORT_VRS = frozenset({
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL", b"SS",
    b"ST", b"TM", b"UI", b"UL", b"US",
})
_UNDEFINED_LENGTH = 0xFFFFFFFF
_ITEM, _ITEM_DELIMITATION, _SEQUENCE_DELIMITATION = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_TRANSFER_SYNTAX_UID = 0x00020010
_WANTED = {
    0x00080016: "sop_class_uid",
    0x00080018: "sop_instance_uid",
    0x0020000D: "study_instance_uid",
    0x0020000E: "series_instance_uid",
}
_LAST_GROUP = 0x0020
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")  # PS3.5 9.1
_TAG_AND_LENGTH = struct.Struct("<HHI")  # implicit VR, and item tags in every transfer syntax (PS3.5 7.5)
_EXPLICIT_SHORT = struct.Struct("<HH2sH")
_LONG_LENGTH = struct.Struct("<I")


class _Unwalkable(Exception):
    """The encoding is not one this walker follows; pydicom decides."""


@dataclass(frozen=True, slots=True)
class InstanceIdentity:
    """SOP Class UID (0008,0016), SOP Instance UID (0008,0018), Study (0020,000D) and Series (0020,000E) Instance UIDs."""

    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str


def read_identity(head: bytes | bytearray | memoryview) -> InstanceIdentity | None:
    """The identity of the DICOM Part 10 object that starts with ``head``, or None when this walker cannot tell.

    ``head`` may be the whole object or only its first bytes (the UIDs lie in the first few KiB).
    """
    view = memoryview(head)
    if len(view) < _PREAMBLE_AND_PREFIX or bytes(view[128:132]) != b"DICM":
        return None
    try:
        meta, position = _walk(view, _PREAMBLE_AND_PREFIX, implicit=False, last_group=0x0002, wanted={_TRANSFER_SYNTAX_UID: "ts"})
        transfer_syntax = meta.get("ts", "")
        if not transfer_syntax or transfer_syntax in _NOT_WALKED:
            return None
        found, _ = _walk(view, position, implicit=transfer_syntax == _IMPLICIT_VR_LITTLE_ENDIAN, last_group=_LAST_GROUP,
                         wanted=_WANTED)
    except (_Unwalkable, struct.error, UnicodeDecodeError, IndexError, RecursionError):
        return None
    if len(found) < len(_WANTED) or not all(_UID.fullmatch(value) for value in found.values()):
        return None  # e.g. UIDs blanked in the data set and kept only in the File Meta Information
    return InstanceIdentity(**found)


def _walk(view: memoryview, position: int, *, implicit: bool, last_group: int, wanted: dict[int, str]) -> tuple[dict[str, str], int]:
    """Values of the ``wanted`` tags among the data elements from ``position`` up to group ``last_group``; and where it stopped."""
    found: dict[str, str] = {}
    end = len(view)
    while position + 8 <= end:
        group, element, length = _TAG_AND_LENGTH.unpack_from(view, position)
        if group > last_group:
            return found, position
        tag = group << 16 | element
        position, length, vr = _value_start(view, position, implicit=implicit)
        if length == _UNDEFINED_LENGTH:
            if vr == b"UN" or (vr is None and not implicit):
                raise _Unwalkable("UN of undefined length: a sequence in implicit VR (PS3.5 6.2.2)")
            position = _skip_sequence(view, position, implicit=implicit)
            continue
        if position + length > end:
            raise _Unwalkable("the value runs past the bytes at hand")
        if tag in wanted:
            found[wanted[tag]] = bytes(view[position:position + length]).decode("ascii").rstrip("\x00 ")
        position += length
    if len(found) < len(wanted):
        raise _Unwalkable("the bytes at hand end before the wanted attributes")
    return found, position


def _value_start(view: memoryview, position: int, *, implicit: bool) -> tuple[int, int, bytes | None]:
    """(offset of the value, its length, the explicit VR or None) of the element at ``position``."""
    if implicit or view[position + 1] == 0xFF and view[position] == 0xFE and view[position + 2] in (0x00, 0x0D, 0xDD):
        # Item tags (FFFE,xxxx) carry no VR in any transfer syntax (PS3.5 7.5).
        _, _, length = _TAG_AND_LENGTH.unpack_from(view, position)
        return position + 8, length, None
    _, _, vr, short_length = _EXPLICIT_SHORT.unpack_from(view, position)
    if vr in _LONG_VRS:
        return position + 12, _LONG_LENGTH.unpack_from(view, position + 8)[0], vr
    if vr not in _SHORT_VRS:
        raise _Unwalkable("not a VR (PS3.5 6.2): the element is damaged")
    return position + 8, short_length, vr


def _skip_sequence(view: memoryview, position: int, *, implicit: bool) -> int:
    """Offset after a sequence of undefined length whose items start at ``position`` (PS3.5 7.5.2)."""
    while True:
        group, element, length = _TAG_AND_LENGTH.unpack_from(view, position)
        tag = group << 16 | element
        position += 8
        if tag == _SEQUENCE_DELIMITATION:
            return position
        if tag != _ITEM:
            raise _Unwalkable("a sequence holds something other than items")
        if length != _UNDEFINED_LENGTH:
            position += length
            continue
        position = _skip_item(view, position, implicit=implicit)


def _skip_item(view: memoryview, position: int, *, implicit: bool) -> int:
    """Offset after an item of undefined length whose data set starts at ``position``."""
    end = len(view)
    while position + 8 <= end:
        group, element, _ = _TAG_AND_LENGTH.unpack_from(view, position)
        if (group << 16 | element) == _ITEM_DELIMITATION:
            return position + 8
        position, length, vr = _value_start(view, position, implicit=implicit)
        if length == _UNDEFINED_LENGTH:
            if vr == b"UN":
                raise _Unwalkable("UN of undefined length: a sequence in implicit VR (PS3.5 6.2.2)")
            position = _skip_sequence(view, position, implicit=implicit)
        else:
            position += length
    raise _Unwalkable("the bytes at hand end inside an item")
