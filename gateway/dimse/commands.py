"""DIMSE command sets (PS3.7 Annex E): decode the requests we serve, encode our responses.

A command set is group 0000 encoded Implicit VR Little Endian (PS3.7 6.3.1). It holds a dozen
elements of fixed VR, so it is read and written here directly: pydicom's general decoder costs more
than the rest of receiving a CT slice.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Command Field values (PS3.7 E.1-1).
C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
NO_DATA_SET = 0x0101  # Command Data Set Type: no data set follows (PS3.7 E.1-1)

# Element numbers of group 0000 (PS3.7 E.1-1).
_GROUP_LENGTH = 0x0000
_AFFECTED_SOP_CLASS_UID = 0x0002
_COMMAND_FIELD = 0x0100
_MESSAGE_ID = 0x0110
_MESSAGE_ID_BEING_RESPONDED_TO = 0x0120
_COMMAND_DATA_SET_TYPE = 0x0800
_STATUS = 0x0900
_ERROR_COMMENT = 0x0902
_AFFECTED_SOP_INSTANCE_UID = 0x1000


class Status:
    """DIMSE status codes we answer with (PS3.4 B.2.3 for C-STORE, PS3.7 Annex C for the general ones)."""

    SUCCESS = 0x0000
    PROCESSING_FAILURE = 0x0110  # Failure: an unexpected error of ours (PS3.7 C.4.2)
    SOP_CLASS_NOT_SUPPORTED = 0x0122  # Refused: SOP Class not supported (PS3.7 C.5.2)
    UNRECOGNIZED_OPERATION = 0x0211  # Refused: the operation is not one we perform (PS3.7 C.5.19)
    OUT_OF_RESOURCES = 0xA700  # Refused: storage or database unavailable; the SCU may retry later
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900  # Error (PS3.4 B.2.3)
    CANNOT_UNDERSTAND = 0xC000  # Error: the object cannot be parsed (PS3.4 B.2.3)


class CommandError(ValueError):
    """The command set cannot be decoded (a protocol error: the association is aborted)."""


@dataclass(frozen=True, slots=True)
class Command:
    """The elements of a request command set that the SCP uses."""

    command_field: int
    message_id: int
    affected_sop_class_uid: str
    affected_sop_instance_uid: str
    has_data_set: bool


def decode_command(encoded: bytes | bytearray) -> Command:
    """Decode an Implicit VR Little Endian command set; :class:`CommandError` when it is malformed."""
    values: dict[int, bytes] = {}
    position, end = 0, len(encoded)
    while position < end:
        if position + 8 > end:
            raise CommandError("command set ends inside an element header")
        group, element, length = struct.unpack_from("<HHI", encoded, position)
        position += 8
        if group != 0x0000 or position + length > end:
            raise CommandError("command set holds an element outside group 0000 or past its end")
        values[element] = bytes(encoded[position:position + length])
        position += length
    try:
        return Command(
            command_field=_us(values[_COMMAND_FIELD]),
            message_id=_us(values.get(_MESSAGE_ID, b"\x00\x00")),
            affected_sop_class_uid=_text(values.get(_AFFECTED_SOP_CLASS_UID, b"")),
            affected_sop_instance_uid=_text(values.get(_AFFECTED_SOP_INSTANCE_UID, b"")),
            has_data_set=_us(values.get(_COMMAND_DATA_SET_TYPE, struct.pack("<H", NO_DATA_SET))) != NO_DATA_SET,
        )
    except (KeyError, struct.error) as error:
        raise CommandError(f"command set lacks or garbles a required element: {error}") from None


def encode_response(request: Command, *, status: int, error_comment: str | None = None) -> bytes:
    """The response command set (C-STORE-RSP, C-ECHO-RSP, or the generic one) to ``request``."""
    elements = [
        (_AFFECTED_SOP_CLASS_UID, _ui(request.affected_sop_class_uid)),
        (_COMMAND_FIELD, struct.pack("<H", request.command_field | 0x8000)),
        (_MESSAGE_ID_BEING_RESPONDED_TO, struct.pack("<H", request.message_id)),
        (_COMMAND_DATA_SET_TYPE, struct.pack("<H", NO_DATA_SET)),
        (_STATUS, struct.pack("<H", status)),
    ]
    if error_comment:
        # LO, at most 64 characters (PS3.7 C.4.2), padded to even length with a space.
        elements.append((_ERROR_COMMENT, _padded(error_comment[:64].encode("ascii", "replace"), b" ")))
    if request.command_field == C_STORE_RQ:
        elements.append((_AFFECTED_SOP_INSTANCE_UID, _ui(request.affected_sop_instance_uid)))
    body = b"".join(struct.pack("<HHI", 0x0000, element, len(value)) + value for element, value in elements)
    return struct.pack("<HHII", 0x0000, _GROUP_LENGTH, 4, len(body)) + body


def _us(value: bytes) -> int:
    return struct.unpack("<H", value[:2])[0]


def _text(value: bytes) -> str:
    return value.decode("ascii", "replace").rstrip("\x00 ")


def _ui(uid: str) -> bytes:
    return _padded(uid.encode("ascii"), b"\x00")  # UI values are padded with NUL (PS3.5 6.2)


def _padded(value: bytes, pad: bytes) -> bytes:
    return value + pad if len(value) % 2 else value
