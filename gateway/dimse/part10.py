"""DICOM Part 10 framing of a received data set (PS3.10 7.1): preamble, ``DICM`` and the File Meta Information.

A C-STORE carries the data set alone, encoded in the presentation context's transfer syntax; the
stored object is that data set byte for byte behind a File Meta Information group written here
(Explicit VR Little Endian, as PS3.10 requires), so nothing is decoded or transcoded on the way.
"""

from __future__ import annotations

import struct

from gateway.dimse.upper_layer import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
)

PREAMBLE = bytes(128) + b"DICM"


def file_meta(*, sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str, source_ae_title: str) -> bytes:
    """Preamble, prefix and File Meta Information group (0002,xxxx) for one received instance."""
    elements = b"".join((
        _element(0x0001, b"OB", b"\x00\x01"),  # File Meta Information Version
        _element(0x0002, b"UI", _padded(sop_class_uid, b"\x00")),  # Media Storage SOP Class UID
        _element(0x0003, b"UI", _padded(sop_instance_uid, b"\x00")),  # Media Storage SOP Instance UID
        _element(0x0010, b"UI", _padded(transfer_syntax_uid, b"\x00")),  # Transfer Syntax UID
        _element(0x0012, b"UI", _padded(IMPLEMENTATION_CLASS_UID, b"\x00")),  # Implementation Class UID
        _element(0x0013, b"SH", _padded(IMPLEMENTATION_VERSION_NAME, b" ")),  # Implementation Version Name
        _element(0x0016, b"AE", _padded(source_ae_title, b" ")),  # Source Application Entity Title
    ))
    group_length = _element(0x0000, b"UL", struct.pack("<I", len(elements)))
    return PREAMBLE + group_length + elements


def _element(element: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"UN", b"OW", b"SQ", b"UT"):  # 2 reserved bytes, then a 32-bit length (PS3.5 7.1.2)
        return struct.pack("<HH", 0x0002, element) + vr + b"\x00\x00" + struct.pack("<I", len(value)) + value
    return struct.pack("<HH", 0x0002, element) + vr + struct.pack("<H", len(value)) + value


def _padded(text: str, pad: bytes) -> bytes:
    value = text.encode("ascii", "replace")
    return value + pad if len(value) % 2 else value
