"""``/api/scans/{id}/exports`` and ``/api/exports``: results back to PACS, their state, last error and re-send."""
