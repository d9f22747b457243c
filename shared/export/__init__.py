"""Results back to PACS: send a run's DICOM outputs (SEG, SR, key images) to the configured destinations.

:mod:`.destinations` parses them (C-STORE ``AE@host:port``, STOW-RS URLs), :mod:`.artifacts` says which
objects go, :mod:`.cstore` and :mod:`.stow` send them, :mod:`.service` keeps one export job per (run,
destination) with its tries, backoff and dead-letter state, and :mod:`.tasks` is the ``export`` queue's
worker. The API is ``gateway/exports``.
"""
