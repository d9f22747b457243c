"""``ctriage db``: migrate the database and show its revision."""

from __future__ import annotations

import click
from shared.config import get_settings
from shared.db.migrate import current_revision, head_revision, masked_url, upgrade_database

URL_OPTION = click.option("--url", default=None, help="SQLAlchemy URL; default CTRIAGE_DATABASE_URL (or embedded SQLite).")


@click.group("db")
def db_command() -> None:
    """Database schema: migrations and revision."""


@db_command.command("upgrade")
@URL_OPTION
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(url: str | None, revision: str) -> None:
    """Migrate the database to the newest schema (safe to run from several processes at once)."""
    url = url or get_settings().resolved_database_url
    reached = upgrade_database(url, revision=revision)
    click.echo(f"{masked_url(url)}: at revision {reached}")


@db_command.command("current")
@URL_OPTION
@click.option("--check", is_flag=True, help="Exit 1 unless the database is at the newest revision.")
def current(url: str | None, check: bool) -> None:
    """Print the database's revision and the newest one the code knows."""
    url = url or get_settings().resolved_database_url
    revision, head = current_revision(url), head_revision()
    state = "up to date" if revision == head else "needs `ctriage db upgrade`"
    click.echo(f"{masked_url(url)}: revision {revision or 'none'}, head {head} ({state})")
    if check and revision != head:
        raise SystemExit(1)
