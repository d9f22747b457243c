"""The listening side of the receiver: accept TCP connections, one thread per association.

Every accepted socket gets ``TCP_NODELAY``: a C-STORE response is one small segment, and with Nagle's
algorithm on it waits for the peer's delayed ACK (about 40 ms on Linux) before leaving — per instance.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gateway.dimse.association import Association
from gateway.dimse.intake import InstanceIntake, Receipt
from gateway.dimse.negotiation import AssociationPolicy

log = logging.getLogger(__name__)

BACKLOG = 64


class DicomReceiver:
    """A C-STORE SCP listening on ``(host, port)``; :meth:`start` returns at once, :meth:`stop` ends it."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        policy: AssociationPolicy,
        intake: InstanceIntake,
        max_pdu_length: int,
        network_timeout: float,
        spill_dir: Path,
        on_receipt: Callable[[Receipt], None] | None = None,
    ) -> None:
        self._address = (host, port)
        self._policy = policy
        self._intake = intake
        self._max_pdu_length = max_pdu_length
        self._network_timeout = network_timeout
        self._spill_dir = spill_dir
        self._on_receipt = on_receipt
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._associations: set[Association] = set()
        self._threads: set[threading.Thread] = set()
        self._accepting = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)`` (the real port when 0 was asked for)."""
        assert self._listener is not None, "start() first"
        host, port = self._listener.getsockname()[:2]
        return host, port

    def associations(self) -> list[Association]:
        """The associations open now."""
        with self._lock:
            return list(self._associations)

    def start(self) -> None:
        """Bind, listen and accept connections in a background thread."""
        family = socket.AF_INET6 if ":" in self._address[0] else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(self._address)
        listener.listen(BACKLOG)
        self._listener = listener
        self._accepting.set()
        threading.Thread(target=self._accept_loop, name="dicom-accept", daemon=True).start()
        host, port = self.address
        log.info("DICOM receiver %s listening on %s:%d", self._policy.ae_title, host, port)

    def stop(self, *, grace: float = 10.0) -> None:
        """Stop accepting; let open associations finish for ``grace`` seconds, then cut them."""
        self._accepting.clear()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        deadline = time.monotonic() + grace
        for thread in self._live_threads():
            thread.join(max(0.0, deadline - time.monotonic()))
        for association in self.associations():
            with contextlib.suppress(OSError):
                association.sock.shutdown(socket.SHUT_RDWR)  # its thread sees the connection drop and exits
        for thread in self._live_threads():
            thread.join(2.0)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while self._accepting.is_set():
            try:
                sock, peer = self._listener.accept()
            except OSError:
                if self._accepting.is_set():
                    log.exception("accepting a connection failed")
                    continue
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self._network_timeout)
            association = Association(
                sock,
                peer=f"{peer[0]}:{peer[1]}",
                policy=self._policy,
                intake=self._intake,
                max_pdu_length=self._max_pdu_length,
                spill_dir=self._spill_dir,
                active_associations=self._count,
                on_receipt=self._on_receipt,
            )
            thread = threading.Thread(target=self._serve, args=(association,), name=f"association-{peer[1]}", daemon=True)
            with self._lock:
                self._associations.add(association)
                self._threads.add(thread)
            thread.start()

    def _serve(self, association: Association) -> None:
        try:
            association.run()
        except Exception:  # never let one association's bug end the thread silently
            log.exception("association from %s failed", association.peer)
        finally:
            with self._lock:
                self._associations.discard(association)
                self._threads.discard(threading.current_thread())

    def _count(self) -> int:
        with self._lock:
            return len(self._associations)

    def _live_threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._threads)
