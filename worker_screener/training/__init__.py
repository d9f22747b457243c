"""Training the screener from scratch: ``python -m worker_screener.training`` (``make train``)."""
