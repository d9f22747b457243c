"""``ctriage dicom-receiver``: the C-STORE SCP and the completeness scanner, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
import threading

import click

from shared.config import Settings, get_settings

log = logging.getLogger("gateway.dimse")


@click.command("dicom-receiver")
@click.option("--host", default=None, help="Bind address (default CTRIAGE_DICOM_HOST).")
@click.option("--port", type=int, default=None, help="TCP port (default CTRIAGE_DICOM_PORT).")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Upgrade the database schema first.")
@click.option("--scanner/--no-scanner", default=True, show_default=True,
              help="Also complete quiet series and start their analysis (one scanner per deployment suffices; more are safe).")
def dicom_receiver_command(host: str | None, port: int | None, migrate: bool, scanner: bool) -> None:
    """Receive studies from a PACS over DICOM (C-STORE, C-ECHO) and analyze complete series."""
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if migrate:
        from shared.db.migrate import upgrade_database

        upgrade_database(settings.resolved_database_url)
    receiver, completeness = build_receiver(settings, host=host, port=port, scanner=scanner)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    receiver.start()
    if completeness is not None:
        completeness.start()
    bound_host, bound_port = receiver.address
    click.echo(f"ctriage dicom-receiver: AE {settings.dicom_ae_title} on {bound_host}:{bound_port}", err=True)
    stop.wait()
    log.info("stopping: no new associations; open ones get a grace period")
    receiver.stop()
    if completeness is not None:
        completeness.stop()


def build_receiver(settings: Settings, *, host: str | None = None, port: int | None = None, scanner: bool = True):  # type: ignore[no-untyped-def]
    """The receiver (its intake warmed up) and (when ``scanner``) the completeness scanner for ``settings``, not yet started."""
    from gateway.dimse.intake import InstanceIntake
    from gateway.dimse.negotiation import AssociationPolicy
    from gateway.dimse.server import DicomReceiver
    from shared.completeness import CompletenessScanner
    from shared.db.session import session_factory
    from shared.queue.app import configure as configure_queue
    from shared.storage.factory import store_from_settings

    configure_queue(settings)  # the broker these settings name: complete series are enqueued from here
    sessions = session_factory(settings.resolved_database_url)
    policy = AssociationPolicy.from_settings(settings)
    if policy.allowed_calling_aes is not None and not policy.allowed_calling_aes:
        log.warning("CTRIAGE_DICOM_ALLOWED_CALLING_AES is empty: every association will be refused; "
                    "list your PACS' AE titles there ('*' allows any caller)")
    completeness = CompletenessScanner(session_factory=sessions, settings=settings) if scanner else None
    intake = InstanceIntake(session_factory=sessions, store=store_from_settings(settings), source="cstore")
    intake.warm_up()
    receiver = DicomReceiver(
        host=host or settings.dicom_host,
        port=settings.dicom_port if port is None else port,
        policy=policy,
        intake=intake,
        max_pdu_length=settings.dicom_max_pdu_bytes,
        network_timeout=settings.dicom_network_timeout_seconds,
        spill_dir=settings.data_dir / "tmp",
        # A series that just reached its expected instance count is completed now, not at the next pass.
        on_receipt=(lambda receipt: completeness.wake() if receipt.expected_reached else None) if completeness else None,
    )
    return receiver, completeness
