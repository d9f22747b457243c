"""DICOMweb (PS3.18) for PACS intake: STOW-RS stores instances, QIDO-RS finds what was received.

STOW-RS goes through the same intake as C-STORE (:mod:`gateway.dimse.intake`): CT instances only,
stored byte for byte and indexed before the response, repeats stored once, series completeness
restarted. Same API-key auth as the REST API: the ``ingest`` role may store, ``clinician`` and up query.
"""
