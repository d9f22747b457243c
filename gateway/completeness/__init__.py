"""``/api/scans/{id}/completeness`` and ``.../expected-instances``: whether a series pushed by a PACS is whole."""
