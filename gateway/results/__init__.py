"""``/api/scans/{id}/...`` clinical outputs of the latest finished run: DICOM SEG, SR, key images,
slice PNGs and the report PDF."""
