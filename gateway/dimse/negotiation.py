"""Association negotiation (PS3.8 7.1, PS3.7 Annex D): who may associate, and which presentation contexts we accept.

Every storage SOP class is accepted at negotiation, so that a non-CT object in a pushed study gets a
C-STORE failure status of its own (the rest of the study still arrives) instead of failing the
whole association. Transfer syntaxes are the ones the DICOM loader decodes; among those the
requestor proposed we take its first, so the SCU sends its objects as they are (no transcoding).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom import uid
from pynetdicom.presentation import AllStoragePresentationContexts

from gateway.dimse.upper_layer import (
    APPLICATION_CONTEXT_NAME,
    AssociateRequest,
    ContextResult,
    ProposedContext,
)
from shared.config import Settings

VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"
STORAGE_SOP_CLASSES = frozenset(str(context.abstract_syntax) for context in AllStoragePresentationContexts)

# Transfer syntaxes received and stored as they are (PS3.5 Section 10 and Annex A).
TRANSFER_SYNTAXES = frozenset({
    uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian, uid.ExplicitVRBigEndian,
    uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1,
    uid.JPEGLSLossless, uid.JPEGLSNearLossless,
    uid.JPEG2000Lossless, uid.JPEG2000, uid.HTJ2KLossless, uid.HTJ2KLosslessRPCL, uid.HTJ2K,
    uid.RLELossless,
})
_VERIFICATION_TRANSFER_SYNTAXES = frozenset({uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian})

# A-ASSOCIATE-RJ fields (PS3.8 9.3.4 and Table 9-21).
REJECTED_PERMANENT, REJECTED_TRANSIENT = 0x01, 0x02
SOURCE_SERVICE_USER, SOURCE_ACSE, SOURCE_PRESENTATION = 0x01, 0x02, 0x03
# Presentation context results (PS3.8 9.3.3.2).
ACCEPTANCE, ABSTRACT_SYNTAX_NOT_SUPPORTED, TRANSFER_SYNTAXES_NOT_SUPPORTED = 0x00, 0x03, 0x04


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an association is refused: the A-ASSOCIATE-RJ fields and a log message (no PHI)."""

    result: int
    source: int
    reason: int
    message: str


@dataclass(frozen=True, slots=True)
class AcceptedContext:
    """A presentation context accepted for the association's lifetime."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str


@dataclass(frozen=True, slots=True)
class AssociationPolicy:
    """Who may associate with us: our AE title and the allowed calling AE titles (``None`` = anyone)."""

    ae_title: str
    allowed_calling_aes: frozenset[str] | None
    max_associations: int

    @classmethod
    def from_settings(cls, settings: Settings) -> AssociationPolicy:
        """The policy of ``CTRIAGE_DICOM_*``: ``*`` allows every caller, an empty list none."""
        listed = {name.strip() for name in settings.dicom_allowed_calling_aes.split(",") if name.strip()}
        return cls(
            ae_title=settings.dicom_ae_title.strip(),
            allowed_calling_aes=None if "*" in listed else frozenset(listed),
            max_associations=settings.dicom_max_associations,
        )


def check_request(request: AssociateRequest, *, policy: AssociationPolicy, active_associations: int) -> Rejection | None:
    """The rejection an A-ASSOCIATE-RQ earns, or ``None`` to go on negotiating its contexts."""
    if not request.protocol_version & 0x01:
        return Rejection(REJECTED_PERMANENT, SOURCE_ACSE, 0x02, "protocol version not supported")
    if request.application_context_name != APPLICATION_CONTEXT_NAME:
        return Rejection(REJECTED_PERMANENT, SOURCE_SERVICE_USER, 0x02, "application context name not supported")
    if request.called_ae_title != policy.ae_title:
        return Rejection(REJECTED_PERMANENT, SOURCE_SERVICE_USER, 0x07,
                         f"called AE title {request.called_ae_title!r} is not ours ({policy.ae_title!r})")
    allowed = policy.allowed_calling_aes
    if allowed is not None and request.calling_ae_title not in allowed:
        hint = "" if allowed else " (CTRIAGE_DICOM_ALLOWED_CALLING_AES is empty: every caller is refused)"
        return Rejection(REJECTED_PERMANENT, SOURCE_SERVICE_USER, 0x03,
                         f"calling AE title {request.calling_ae_title!r} is not allowed{hint}")
    if active_associations >= policy.max_associations:
        return Rejection(REJECTED_TRANSIENT, SOURCE_PRESENTATION, 0x02,
                         f"{active_associations} associations already open (local limit)")
    return None


def negotiate(proposed: list[ProposedContext]) -> tuple[list[ContextResult], dict[int, AcceptedContext]]:
    """The result of every proposed presentation context, and the accepted ones by context ID."""
    results, accepted = [], {}
    for context in proposed:
        supported = _transfer_syntaxes_for(context.abstract_syntax)
        chosen = next((syntax for syntax in context.transfer_syntaxes if syntax in supported), None)
        if chosen is None:
            result = ABSTRACT_SYNTAX_NOT_SUPPORTED if not supported else TRANSFER_SYNTAXES_NOT_SUPPORTED
            # Not significant when the context is rejected (PS3.8 9.3.3.2), but the sub-item must be there.
            results.append(ContextResult(context.context_id, result, next(iter(context.transfer_syntaxes), uid.ImplicitVRLittleEndian)))
        else:
            results.append(ContextResult(context.context_id, ACCEPTANCE, chosen))
            accepted[context.context_id] = AcceptedContext(context.context_id, context.abstract_syntax, chosen)
    return results, accepted


def _transfer_syntaxes_for(abstract_syntax: str) -> frozenset[str]:
    if abstract_syntax == VERIFICATION_SOP_CLASS:
        return _VERIFICATION_TRANSFER_SYNTAXES
    if abstract_syntax in STORAGE_SOP_CLASSES:
        return TRANSFER_SYNTAXES
    return frozenset()
