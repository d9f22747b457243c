"""The ctriage API gateway (FastAPI): ``gateway.main:create_app``; one package per domain (patients, scans, inference, auth, audit)."""
