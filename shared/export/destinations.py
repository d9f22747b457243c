"""Where results go: DICOM C-STORE SCPs given as ``AE@host:port`` (``CTRIAGE_EXPORT_CSTORE_DESTINATIONS``) and
DICOMweb STOW-RS services given by URL (``CTRIAGE_EXPORT_STOW_URLS``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from shared.config import Settings

_DESTINATION = re.compile(r"^(?P<ae>[^@\\\x00-\x1f]{1,16})@(?P<host>[^\s:@]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")

Kind = Literal["cstore", "stow"]


@dataclass(frozen=True, slots=True)
class CStoreDestination:
    """A C-STORE SCP: its AE title (PS3.5 AE VR: at most 16 characters, no backslash), host and port."""

    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class StowDestination:
    """A STOW-RS resource (PS3.18 10.5): the studies URL objects are POSTed to, e.g. ``http://pacs/dicom-web/studies``."""

    url: str

    def __str__(self) -> str:
        return self.url


Destination = CStoreDestination | StowDestination


def parse_cstore_destinations(text: str) -> list[CStoreDestination]:
    """The destinations of a comma-separated ``AE@host:port`` list (empty: none); ValueError names a malformed one."""
    destinations = []
    for item in _items(text):
        match = _DESTINATION.match(item)
        port = int(match["port"]) if match else 0
        if match is None or not 0 < port < 65536 or not match["ae"].strip():
            raise ValueError(f"export destination {item!r} is not AE@host:port")
        destinations.append(CStoreDestination(ae_title=match["ae"].strip(), host=match["host"].strip("[]"), port=port))
    return destinations


def parse_stow_urls(text: str) -> list[StowDestination]:
    """The STOW-RS destinations of a comma-separated URL list; ValueError names a malformed one.

    Credentials in the URL are refused: the URL is shown in the API, so they belong in
    ``CTRIAGE_EXPORT_STOW_AUTHORIZATION``.
    """
    destinations = []
    for item in _items(text):
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"STOW-RS destination {item!r} is not an http(s) URL")
        if parts.username or parts.password:
            raise ValueError(f"STOW-RS destination {parts.hostname!r} carries credentials: use CTRIAGE_EXPORT_STOW_AUTHORIZATION")
        destinations.append(StowDestination(url=item))
    return destinations


def configured_destinations(settings: Settings) -> list[tuple[Kind, Destination]]:
    """Every destination the settings name, C-STORE first; ValueError names a malformed one."""
    cstore: list[tuple[Kind, Destination]] = [("cstore", d) for d in parse_cstore_destinations(settings.export_cstore_destinations)]
    return cstore + [("stow", d) for d in parse_stow_urls(settings.export_stow_urls)]


def destination_of(*, kind: str, text: str) -> Destination:
    """The destination an export job row names (``kind`` and its text form)."""
    if kind == "cstore":
        return parse_cstore_destinations(text)[0]
    if kind == "stow":
        return parse_stow_urls(text)[0]
    raise ValueError(f"unknown export destination kind {kind!r}")


def _items(text: str) -> list[str]:
    return [part for part in (part.strip() for part in text.split(",")) if part]
