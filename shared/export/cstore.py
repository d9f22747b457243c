"""Send DICOM objects to a C-STORE SCP over one association (pynetdicom as SCU; PS3.4 B, PS3.7 9.1.1)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from pydicom import dcmread
from pynetdicom import AE

from shared.export.destinations import CStoreDestination

# Success, and the warnings that still mean "stored" (PS3.4 B.2.3: coercion, elements discarded, ...).
_STORED_STATUSES = {0x0000, 0xB000, 0xB006, 0xB007}


class ExportError(RuntimeError):
    """A destination did not take every object (unreachable, refused, or a failure status); the message has no PHI."""


def send_cstore(
    *, destination: CStoreDestination, objects: Sequence[bytes], calling_ae_title: str, timeout_seconds: float = 30.0
) -> int:
    """Store every DICOM Part 10 object in ``objects`` at ``destination``; returns how many were sent.

    Raises :class:`ExportError` when the association cannot be made or any object is not stored.
    """
    datasets = [dcmread(io.BytesIO(data)) for data in objects]
    ae = AE(ae_title=calling_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_seconds
    ae.connection_timeout = timeout_seconds
    # One presentation context per SOP Class and transfer syntax, as each object is encoded: no transcoding.
    for sop_class, syntax in sorted({(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets}):
        ae.add_requested_context(sop_class, syntax)
    association = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not association.is_established:
        raise ExportError(f"{destination}: association not established (unreachable, or refused)")
    try:
        for index, ds in enumerate(datasets):
            try:
                status = association.send_c_store(ds)
            except ValueError:  # pynetdicom: no accepted presentation context for this SOP Class
                raise ExportError(f"{destination}: object {index + 1} of {len(datasets)} not accepted "
                                  "(SOP Class or transfer syntax refused)") from None
            code = getattr(status, "Status", None)
            if code not in _STORED_STATUSES:
                detail = "no response" if code is None else f"status 0x{int(code):04X}"
                raise ExportError(f"{destination}: object {index + 1} of {len(datasets)} not stored ({detail})")
    finally:
        if association.is_established:
            association.release()
    return len(datasets)
