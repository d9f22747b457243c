"""The shipped screener: weights (``screener-dense-vicreg-v*.pt``), ``manifest.json`` (SHA-256),
``MODEL_CARD.md``, ``training.json`` and ``evaluation.json``; loaded by
:func:`worker_screener.model.checkpoint.load_screener`."""
