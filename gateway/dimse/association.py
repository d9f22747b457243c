"""One association, acceptor side: negotiation, then C-ECHO and C-STORE requests until release (PS3.8, PS3.7).

Each association runs in its own thread, blocking on its socket: a request is read, persisted and
answered in turn, with no polling between the steps. This is the part pynetdicom's ``AE`` did not
do fast enough: its reactors poll their queues every millisecond and pass every PDU through
several threads, which made a 300-slice study take several times what dcmtk's ``storescp`` needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.dimse import upper_layer as ul
from gateway.dimse.commands import (
    C_ECHO_RQ,
    C_STORE_RQ,
    Command,
    CommandError,
    Status,
    decode_command,
    encode_response,
)
from gateway.dimse.intake import InstanceIntake, Receipt
from gateway.dimse.negotiation import (
    VERIFICATION_SOP_CLASS,
    AcceptedContext,
    AssociationPolicy,
    check_request,
    negotiate,
)
from gateway.dimse.part10 import file_meta

log = logging.getLogger(__name__)

SPILL_BYTES = 64 * 1024**2  # a data set larger than this (a big multi-frame object) is gathered on disk


@dataclass
class AssociationStats:
    """What one association did, for its closing log line."""

    stored: int = 0
    repeated: int = 0
    failed: int = 0
    bytes: int = 0
    started: float = field(default_factory=time.perf_counter)


class DataSetBuffer:
    """A received data set behind its Part 10 header: in memory, or in a temp file once it is large.

    The object's SHA-256 is computed fragment by fragment as they arrive, while the SCU is still
    sending the rest, rather than after the last one, when the SCU waits on our response.
    """

    def __init__(self, header: bytes, *, spill_dir: Path) -> None:
        self._memory: bytearray | None = bytearray(header)
        self._file = None
        self._path: Path | None = None
        self._spill_dir = spill_dir
        self._digest = hashlib.sha256(header)
        self.size = 0

    @property
    def sha256(self) -> str:
        """The SHA-256 of the whole Part 10 object (header and every fragment appended)."""
        return self._digest.hexdigest()

    def append(self, fragment: memoryview) -> None:
        """Add the next fragment of the data set."""
        self.size += len(fragment)
        self._digest.update(fragment)
        if self._memory is not None:
            self._memory += fragment
            if len(self._memory) > SPILL_BYTES:
                self._spill()
        else:
            assert self._file is not None
            self._file.write(fragment)

    def finish(self) -> bytes | Path:
        """The whole Part 10 object."""
        if self._memory is not None:
            return bytes(self._memory)
        assert self._file is not None and self._path is not None
        self._file.close()
        return self._path

    def discard(self) -> None:
        """Drop what was gathered (a temp file is removed)."""
        self._memory = None
        if self._file is not None:
            self._file.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)

    def _spill(self) -> None:
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="cstore-", suffix=".dcm", dir=self._spill_dir)
        self._path = Path(name)
        self._file = os.fdopen(fd, "wb")
        assert self._memory is not None
        self._file.write(self._memory)
        self._memory = None


class Association:
    """The acceptor's side of one association on ``sock``."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        peer: str,
        policy: AssociationPolicy,
        intake: InstanceIntake,
        max_pdu_length: int,
        spill_dir: Path,
        active_associations: Callable[[], int],
        on_receipt: Callable[[Receipt], None] | None = None,
    ) -> None:
        self.sock = sock
        self.peer = peer
        self._policy = policy
        self._intake = intake
        self._max_pdu_length = max_pdu_length
        self._spill_dir = spill_dir
        self._active_associations = active_associations
        self._on_receipt = on_receipt
        self._reader = ul.PduReader(sock, max_pdu_length=max_pdu_length)
        self._contexts: dict[int, AcceptedContext] = {}
        self.calling_ae_title = ""
        self.stats = AssociationStats()

    def run(self) -> None:
        """Serve the association until it is released, aborted or its connection drops; always closes the socket."""
        try:
            if self._establish():
                self._serve()
        except ul.ConnectionClosed:
            log.info("association from %s (%s): connection closed by the peer", self.calling_ae_title or "?", self.peer)
        except (TimeoutError, socket.timeout):
            log.warning("association from %s (%s): no PDU within the network timeout; aborting",
                        self.calling_ae_title or "?", self.peer)
            self._send_quietly(ul.abort(source=0x02, reason=0x00))
        except ul.ProtocolError as error:
            log.warning("association from %s (%s): protocol error, aborting: %s", self.calling_ae_title or "?", self.peer, error)
            self._send_quietly(ul.abort(source=0x02, reason=error.reason))
        except OSError as error:
            log.info("association from %s (%s): connection lost: %s", self.calling_ae_title or "?", self.peer, error)
        finally:
            self._close()

    def _establish(self) -> bool:
        pdu_type, body = self._reader.read()
        if pdu_type != ul.ASSOCIATE_RQ:
            raise ul.ProtocolError(f"expected A-ASSOCIATE-RQ, got PDU type 0x{pdu_type:02X}")
        request = ul.decode_associate_rq(body)
        self.calling_ae_title = request.calling_ae_title
        # This association counts itself among the active ones.
        rejection = check_request(request, policy=self._policy, active_associations=self._active_associations() - 1)
        if rejection is not None:
            log.warning("association from %s (%s) refused: %s", request.calling_ae_title, self.peer, rejection.message)
            self.sock.sendall(ul.associate_rj(result=rejection.result, source=rejection.source, reason=rejection.reason))
            return False
        results, self._contexts = negotiate(request.contexts)
        self.sock.sendall(ul.encode_associate_ac(request, results=results, max_pdu_length=self._max_pdu_length))
        log.info("association from %s (%s) accepted: %d of %d presentation contexts", request.calling_ae_title,
                 self.peer, len(self._contexts), len(results))
        return True

    def _serve(self) -> None:
        command_bytes = bytearray()
        pending: tuple[Command, AcceptedContext, DataSetBuffer] | None = None
        try:
            while True:
                pdu_type, body = self._reader.read()
                if pdu_type == ul.RELEASE_RQ:
                    self.sock.sendall(ul.release_rp())
                    self._log_end("released")
                    return
                if pdu_type == ul.ABORT:
                    self._log_end("aborted by the peer")
                    return
                if pdu_type != ul.P_DATA_TF:
                    raise ul.ProtocolError(f"unexpected PDU type 0x{pdu_type:02X} during the association")
                for fragment in ul.fragments(body):
                    context = self._contexts.get(fragment.context_id)
                    if context is None:
                        raise ul.ProtocolError(f"PDV on presentation context {fragment.context_id}, not accepted", reason=0x06)
                    if fragment.is_command:
                        if pending is not None:
                            raise ul.ProtocolError("a command arrived before the previous data set ended")
                        command_bytes += fragment.data
                        if not fragment.is_last:
                            continue
                        command = self._decode(command_bytes)
                        command_bytes = bytearray()
                        if command.has_data_set:
                            pending = (command, context, self._data_set_buffer(command, context))
                        else:
                            self._respond(context, command, self._answer(command, context, None))
                    else:
                        if pending is None or pending[1].context_id != context.context_id:
                            raise ul.ProtocolError("a data set fragment arrived without its command")
                        pending[2].append(fragment.data)
                        if fragment.is_last:
                            command, context, buffer = pending
                            pending = None
                            self._respond(context, command, self._answer(command, context, buffer))
        finally:
            if pending is not None:
                pending[2].discard()

    def _decode(self, encoded: bytearray) -> Command:
        try:
            return decode_command(encoded)
        except CommandError as error:
            raise ul.ProtocolError(str(error), reason=0x06) from None

    def _data_set_buffer(self, command: Command, context: AcceptedContext) -> DataSetBuffer:
        header = file_meta(
            sop_class_uid=command.affected_sop_class_uid, sop_instance_uid=command.affected_sop_instance_uid,
            transfer_syntax_uid=context.transfer_syntax, source_ae_title=self.calling_ae_title,
        )
        return DataSetBuffer(header, spill_dir=self._spill_dir)

    def _answer(self, command: Command, context: AcceptedContext, data_set: DataSetBuffer | None) -> tuple[int, str | None]:
        """The status (and error comment) that answers ``command``."""
        try:
            if command.command_field == C_ECHO_RQ and context.abstract_syntax == VERIFICATION_SOP_CLASS:
                return Status.SUCCESS, None
            if command.command_field != C_STORE_RQ or data_set is None or context.abstract_syntax == VERIFICATION_SOP_CLASS:
                return Status.UNRECOGNIZED_OPERATION, "only C-ECHO and C-STORE are served"
            if command.affected_sop_class_uid != context.abstract_syntax:
                return Status.SOP_CLASS_NOT_SUPPORTED, "SOP Class differs from the presentation context's"
            return self._store(command, data_set)
        finally:
            if data_set is not None:
                data_set.discard()

    def _store(self, command: Command, data_set: DataSetBuffer) -> tuple[int, str | None]:
        try:
            receipt = self._intake.receive(
                name=f"C-STORE message {command.message_id}", data=data_set.finish(),
                sop_class_uid=command.affected_sop_class_uid, sha256=data_set.sha256,
            )
        except Exception:  # a bug of ours must cost this instance, not the association
            log.exception("association from %s: storing an instance failed", self.calling_ae_title)
            self.stats.failed += 1
            return Status.PROCESSING_FAILURE, "internal error storing the instance"
        if receipt.ok:
            self.stats.stored += receipt.new
            self.stats.repeated += not receipt.new
            self.stats.bytes += data_set.size
        else:
            self.stats.failed += 1
            log.info("association from %s: instance refused with status 0x%04X: %s", self.calling_ae_title,
                     receipt.status, receipt.comment)
        if self._on_receipt is not None:
            self._on_receipt(receipt)
        return receipt.status, receipt.comment

    def _respond(self, context: AcceptedContext, command: Command, answer: tuple[int, str | None]) -> None:
        status, comment = answer
        self.sock.sendall(ul.p_data_tf_command(context.context_id, encode_response(command, status=status, error_comment=comment)))

    def _log_end(self, how: str) -> None:
        seconds = time.perf_counter() - self.stats.started
        log.info("association from %s (%s) %s: %d stored, %d already stored, %d refused, %.1f MB in %.2f s",
                 self.calling_ae_title, self.peer, how, self.stats.stored, self.stats.repeated, self.stats.failed,
                 self.stats.bytes / 1e6, seconds)

    def _send_quietly(self, pdu: bytes) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(pdu)

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
