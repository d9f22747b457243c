"""The ``ctriage`` console command: one group, each subcommand loaded from the module that owns it."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command; imported only when used, so `ctriage inspect`
# does not pay for torch or FastAPI.
SUBCOMMANDS: dict[str, str] = {
    "inspect": "shared.dicom.inspect:inspect_command",
    "phantom": "shared.phantoms.cli:phantom_command",
    "data": "shared.realdata.fetch:data_command",
    "db": "shared.db.cli:db_command",
    "analyze": "shared.pipeline.cli:analyze_command",
    "run": "shared.embedded:run_command",
    "api": "gateway.main:api_command",
    "worker": "shared.queue.worker_cli:worker_command",
    "dicom-receiver": "gateway.dimse.cli:dicom_receiver_command",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup)
def main() -> None:
    """ctriage: chest CT triage service and tools."""
