"""DICOM Upper Layer PDUs (PS3.8 Section 9): reading them off a socket and writing the ones an SCP sends.

A-ASSOCIATE-RQ and -AC, with their many variable items, are decoded and encoded by pynetdicom's PDU
classes; the fixed-size PDUs and P-DATA-TF framing are written here. Reads go into one reusable
buffer per association, so a 512 KiB slice costs a handful of ``recv_into`` calls and one copy.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from pydicom.uid import UID
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import PresentationContext

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
ASSOCIATE_RQ_MAX_BYTES = 1 << 20  # an A-ASSOCIATE-RQ with hundreds of contexts is a few tens of KiB


class ProtocolError(Exception):
    """The peer broke the Upper Layer protocol; the association is aborted (A-P-ABORT)."""

    def __init__(self, message: str, *, reason: int = 0x02) -> None:
        super().__init__(message)
        self.reason = reason  # A-ABORT reason (PS3.8 9.3.8): 1 unrecognized PDU, 2 unexpected PDU, 6 invalid parameter


class ConnectionClosed(Exception):
    """The peer closed the TCP connection."""


@dataclass(frozen=True, slots=True)
class AssociateRequest:
    """What the SCP decides on from an A-ASSOCIATE-RQ."""

    calling_ae_title: str
    called_ae_title: str
    application_context_name: str
    protocol_version: int
    contexts: list[PresentationContext]
    max_pdu_length: int  # the requestor's Maximum Length Received; 0 = unlimited
    primitive: A_ASSOCIATE


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


def decode_associate_rq(header_and_body: bytes) -> AssociateRequest:
    """Decode an A-ASSOCIATE-RQ PDU (header included)."""
    pdu = A_ASSOCIATE_RQ()
    try:
        pdu.decode(header_and_body)
        primitive = pdu.to_primitive()
    except Exception as error:  # pynetdicom raises assorted errors on garbage
        raise ProtocolError(f"malformed A-ASSOCIATE-RQ: {type(error).__name__}", reason=0x06) from None
    max_length = next(
        (item.maximum_length_received for item in primitive.user_information if isinstance(item, MaximumLengthNotification)),
        0,
    )
    return AssociateRequest(
        calling_ae_title=(primitive.calling_ae_title or "").strip(),
        called_ae_title=(primitive.called_ae_title or "").strip(),
        application_context_name=str(primitive.application_context_name or ""),
        protocol_version=pdu.protocol_version,
        contexts=list(primitive.presentation_context_definition_list),
        max_pdu_length=max_length or 0,
        primitive=primitive,
    )


def encode_associate_ac(request: AssociateRequest, *, results: list[PresentationContext], max_pdu_length: int) -> bytes:
    """The A-ASSOCIATE-AC answering ``request`` with the presentation context ``results`` (PS3.8 9.3.3)."""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = UID(APPLICATION_CONTEXT_NAME)
    primitive.calling_ae_title = request.primitive.calling_ae_title
    primitive.called_ae_title = request.primitive.called_ae_title
    primitive.result = 0x00
    primitive.result_source = 0x01
    primitive.presentation_context_definition_results_list = results
    maximum = MaximumLengthNotification()
    maximum.maximum_length_received = max_pdu_length
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = UID(IMPLEMENTATION_CLASS_UID)
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    primitive.user_information = [maximum, implementation, version]
    pdu = A_ASSOCIATE_AC()
    pdu.from_primitive(primitive)
    return pdu.encode()


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
