"""Which of a run's artifacts go back to PACS: the DICOM SEG, the SR and the key images."""

from __future__ import annotations

from collections.abc import Mapping

_EXPORTED = ("seg", "sr")
_KEY_IMAGE_PREFIX = "key_image_"


def exported_artifact_keys(artifacts: Mapping[str, str]) -> list[str]:
    """Object keys of ``report.artifacts``' ``seg``, ``sr`` and ``key_image_*`` entries, in that order."""
    named = [artifacts[name] for name in _EXPORTED if name in artifacts]
    names = sorted((name for name in artifacts if name.startswith(_KEY_IMAGE_PREFIX)), key=lambda name: (len(name), name))
    key_images = [artifacts[name] for name in names]  # key_image_2 before key_image_10
    return named + key_images
