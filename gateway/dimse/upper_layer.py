"""DICOM Upper Layer PDUs (PS3.8 Section 9): reading them off a socket and writing the ones an SCP sends.

The A-ASSOCIATE-RQ is decoded and the -AC encoded here too, item by item (PS3.8 9.3.2, 9.3.3): a
PACS such as dcmtk's storescu proposes over a hundred presentation contexts, and pynetdicom's PDU
classes, which validate every UID as an object, took tenths of a second per association for them
(a 64-slice series takes dcmtk's storescp about that long in all). Reads go into one reusable buffer
per association, so a 512 KiB slice costs a handful of ``recv_into`` calls and one copy.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

# PDU types (PS3.8 9.3.1).
ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ = 0x01, 0x02, 0x03
P_DATA_TF, RELEASE_RQ, RELEASE_RP, ABORT = 0x04, 0x05, 0x06, 0x07

APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"  # the DICOM Application Context (PS3.7 A.2.1)
# Our Implementation Class UID (PS3.7 D.3.3.2): a UUID-derived UID (PS3.5 B.2), fixed for ctriage
# (uuid5 of the URL namespace and "https://ctriage/dicom/implementation").
IMPLEMENTATION_CLASS_UID = "2.25.270772804364860420393095030979581073467"
IMPLEMENTATION_VERSION_NAME = "CTRIAGE_1"
_HEADER = struct.Struct(">BBI")  # PDU type, reserved, PDU length (PS3.8 9.3.1)
_PDV_HEADER = struct.Struct(">IBB")  # item length, presentation context ID, message control header
_ITEM_HEADER = struct.Struct(">BBH")  # item type, reserved, item length (PS3.8 9.3.2.1 to 9.3.2.3)
_ASSOCIATE_FIXED = struct.Struct(">HH16s16s32x")  # protocol version, reserved, called AE, calling AE, reserved
# Item types of the A-ASSOCIATE PDUs (PS3.8 9.3.2, 9.3.3, D.1, D.3.3.2).
_APPLICATION_CONTEXT, _PRESENTATION_CONTEXT_RQ, _PRESENTATION_CONTEXT_AC = 0x10, 0x20, 0x21
_ABSTRACT_SYNTAX, _TRANSFER_SYNTAX, _USER_INFORMATION = 0x30, 0x40, 0x50
_MAXIMUM_LENGTH, _IMPLEMENTATION_CLASS_UID, _IMPLEMENTATION_VERSION_NAME = 0x51, 0x52, 0x55
ASSOCIATE_RQ_MAX_BYTES = 1 << 20  # an A-ASSOCIATE-RQ with hundreds of contexts is a few tens of KiB


class ProtocolError(Exception):
    """The peer broke the Upper Layer protocol; the association is aborted (A-P-ABORT)."""

    def __init__(self, message: str, *, reason: int = 0x02) -> None:
        super().__init__(message)
        self.reason = reason  # A-ABORT reason (PS3.8 9.3.8): 1 unrecognized PDU, 2 unexpected PDU, 6 invalid parameter


class ConnectionClosed(Exception):
    """The peer closed the TCP connection."""


@dataclass(frozen=True, slots=True)
class ProposedContext:
    """A presentation context item of an A-ASSOCIATE-RQ (PS3.8 9.3.2.2)."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ContextResult:
    """A presentation context item of an A-ASSOCIATE-AC (PS3.8 9.3.3.2): the result and the chosen transfer syntax."""

    context_id: int
    result: int
    transfer_syntax: str


@dataclass(frozen=True, slots=True)
class AssociateRequest:
    """What the SCP decides on from an A-ASSOCIATE-RQ."""

    calling_ae_title: str
    called_ae_title: str
    application_context_name: str
    protocol_version: int
    contexts: list[ProposedContext]
    max_pdu_length: int  # the requestor's Maximum Length Received; 0 = unlimited
    ae_title_fields: bytes  # Called- and Calling-AE-title as received: the -AC returns them (PS3.8 9.3.3)


@dataclass(frozen=True, slots=True)
class Fragment:
    """One presentation data value of a P-DATA-TF (PS3.8 9.3.5.1, E.2)."""

    context_id: int
    is_command: bool
    is_last: bool
    data: memoryview


class PduReader:
    """Reads whole PDUs from a connected socket into a buffer reused from one PDU to the next."""

    def __init__(self, sock: socket.socket, *, max_pdu_length: int) -> None:
        self._sock = sock
        self._max = max_pdu_length
        self._buffer = bytearray(64 * 1024)

    def read(self) -> tuple[int, memoryview]:
        """The next PDU's type and body (valid until the next call)."""
        header = self._read_into(_HEADER.size)
        pdu_type, _, length = _HEADER.unpack(header)
        limit = ASSOCIATE_RQ_MAX_BYTES if pdu_type == ASSOCIATE_RQ else self._max + _PDV_HEADER.size
        if pdu_type not in (ASSOCIATE_RQ, P_DATA_TF, RELEASE_RQ, RELEASE_RP, ABORT, ASSOCIATE_AC, ASSOCIATE_RJ):
            raise ProtocolError(f"unrecognized PDU type 0x{pdu_type:02X}", reason=0x01)
        if length > limit:
            raise ProtocolError(f"PDU of {length} bytes exceeds the negotiated maximum", reason=0x06)
        return pdu_type, self._read_into(length)

    def _read_into(self, size: int) -> memoryview:
        if len(self._buffer) < size:
            self._buffer = bytearray(size)
        view = memoryview(self._buffer)[:size]
        received = 0
        while received < size:
            count = self._sock.recv_into(view[received:], size - received)
            if count == 0:
                raise ConnectionClosed("the peer closed the connection")
            received += count
        return view


def decode_associate_rq(body: bytes | memoryview) -> AssociateRequest:
    """Decode the body (after the 6-byte PDU header) of an A-ASSOCIATE-RQ PDU (PS3.8 9.3.2)."""
    try:
        version, _, called, calling = _ASSOCIATE_FIXED.unpack_from(body, 0)
        application_context, contexts, max_length = "", [], 0
        for item_type, value in _items(body, _ASSOCIATE_FIXED.size, len(body)):
            if item_type == _APPLICATION_CONTEXT:
                application_context = _uid(value)
            elif item_type == _PRESENTATION_CONTEXT_RQ:
                contexts.append(_proposed_context(value))
            elif item_type == _USER_INFORMATION:
                for sub_type, sub_value in _items(value, 0, len(value)):
                    if sub_type == _MAXIMUM_LENGTH:
                        (max_length,) = struct.unpack(">I", sub_value)
    except (struct.error, ValueError) as error:
        raise ProtocolError(f"malformed A-ASSOCIATE-RQ: {error}", reason=0x06) from None
    return AssociateRequest(
        calling_ae_title=_ae_title(calling), called_ae_title=_ae_title(called),
        application_context_name=application_context, protocol_version=version, contexts=contexts,
        max_pdu_length=max_length, ae_title_fields=called + calling,
    )


def encode_associate_ac(request: AssociateRequest, *, results: list[ContextResult], max_pdu_length: int) -> bytes:
    """The A-ASSOCIATE-AC answering ``request`` with the presentation context ``results`` (PS3.8 9.3.3)."""
    user_information = b"".join((
        _item(_MAXIMUM_LENGTH, struct.pack(">I", max_pdu_length)),
        _item(_IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_CLASS_UID.encode()),
        _item(_IMPLEMENTATION_VERSION_NAME, IMPLEMENTATION_VERSION_NAME.encode()),
    ))
    body = b"".join((
        struct.pack(">HH", 0x0001, 0), request.ae_title_fields, bytes(32),
        _item(_APPLICATION_CONTEXT, APPLICATION_CONTEXT_NAME.encode()),
        *(
            _item(_PRESENTATION_CONTEXT_AC, bytes((result.context_id, 0, result.result, 0))
                  + _item(_TRANSFER_SYNTAX, result.transfer_syntax.encode()))
            for result in results
        ),
        _item(_USER_INFORMATION, user_information),
    ))
    return _HEADER.pack(ASSOCIATE_AC, 0, len(body)) + body


def _items(data: bytes | memoryview, position: int, end: int) -> Iterator[tuple[int, memoryview]]:
    """(type, value) of the items between ``position`` and ``end``."""
    view = memoryview(data)
    while position < end:
        item_type, _, length = _ITEM_HEADER.unpack_from(view, position)
        position += _ITEM_HEADER.size
        if position + length > end:
            raise ValueError(f"item 0x{item_type:02X} runs past its PDU")
        yield item_type, view[position:position + length]
        position += length


def _proposed_context(value: memoryview) -> ProposedContext:
    abstract_syntax, transfer_syntaxes = "", []
    for sub_type, sub_value in _items(value, 4, len(value)):  # context ID, 3 reserved bytes, then sub-items
        if sub_type == _ABSTRACT_SYNTAX:
            abstract_syntax = _uid(sub_value)
        elif sub_type == _TRANSFER_SYNTAX:
            transfer_syntaxes.append(_uid(sub_value))
    return ProposedContext(context_id=value[0], abstract_syntax=abstract_syntax, transfer_syntaxes=tuple(transfer_syntaxes))


def _item(item_type: int, value: bytes) -> bytes:
    return _ITEM_HEADER.pack(item_type, 0, len(value)) + value


def _uid(value: memoryview) -> str:
    """A UID of an item (PS3.8 9.3.2.2.1: not padded, but some senders pad it with a NUL as in PS3.5)."""
    return bytes(value).decode("ascii").rstrip("\x00 ")


def _ae_title(field: bytes) -> str:
    return field.decode("ascii", "replace").strip(" \x00")


def associate_rj(*, result: int, source: int, reason: int) -> bytes:
    """An A-ASSOCIATE-RJ PDU (PS3.8 9.3.4): result 1 permanent / 2 transient, source, reason/diag."""
    return _HEADER.pack(ASSOCIATE_RJ, 0, 4) + bytes((0, result, source, reason))


def release_rp() -> bytes:
    """An A-RELEASE-RP PDU (PS3.8 9.3.7)."""
    return _HEADER.pack(RELEASE_RP, 0, 4) + bytes(4)


def abort(*, source: int = 0x02, reason: int = 0x00) -> bytes:
    """An A-ABORT PDU (PS3.8 9.3.8): source 0 service-user, 2 service-provider, with its reason."""
    return _HEADER.pack(ABORT, 0, 4) + bytes((0, 0, source, reason))


def p_data_tf_command(context_id: int, command: bytes) -> bytes:
    """One P-DATA-TF carrying a whole command set as its last fragment (PS3.8 E.2: header 0b11)."""
    item = _PDV_HEADER.pack(len(command) + 2, context_id, 0x03) + command
    return _HEADER.pack(P_DATA_TF, 0, len(item)) + item


def fragments(body: memoryview) -> Iterator[Fragment]:
    """The presentation data values of a P-DATA-TF body."""
    position, end = 0, len(body)
    while position < end:
        if position + _PDV_HEADER.size > end:
            raise ProtocolError("P-DATA-TF ends inside a PDV item header", reason=0x06)
        length, context_id, control = _PDV_HEADER.unpack_from(body, position)
        if length < 2 or position + 4 + length > end:
            raise ProtocolError("PDV item length runs past its P-DATA-TF", reason=0x06)
        yield Fragment(
            context_id=context_id, is_command=bool(control & 0x01), is_last=bool(control & 0x02),
            data=body[position + _PDV_HEADER.size:position + 4 + length],
        )
        position += 4 + length
