"""Where results go: DICOM C-STORE SCPs given as ``AE@host:port`` (``CTRIAGE_EXPORT_CSTORE_DESTINATIONS``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_DESTINATION = re.compile(r"^(?P<ae>[^@\\\x00-\x1f]{1,16})@(?P<host>[^\s:@]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")


@dataclass(frozen=True, slots=True)
class CStoreDestination:
    """A C-STORE SCP: its AE title (PS3.5 AE VR: at most 16 characters, no backslash), host and port."""

    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_cstore_destinations(text: str) -> list[CStoreDestination]:
    """The destinations of a comma-separated ``AE@host:port`` list (empty: none); ValueError names a malformed one."""
    destinations = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = _DESTINATION.match(item)
        port = int(match["port"]) if match else 0
        if match is None or not 0 < port < 65536 or not match["ae"].strip():
            raise ValueError(f"export destination {item!r} is not AE@host:port")
        destinations.append(CStoreDestination(ae_title=match["ae"].strip(), host=match["host"].strip("[]"), port=port))
    return destinations
