"""Results back to PACS: send a run's DICOM outputs (SEG, SR, key images) to the configured destinations.

Built so far: the destinations' settings (:mod:`.destinations`), which artifacts go
(:mod:`.artifacts`) and the C-STORE SCU (:mod:`.cstore`). Still to come (issue 7 §4): the Celery
task on its own ``export`` queue with exponential backoff, the dead-letter state in the API with the
last error, the re-send endpoint, and the DICOMweb STOW-RS sender.
"""
