"""Built-in organ segmentation (no downloaded weights): :func:`segment_organs`."""

from worker_gate.organs.segment import OrganSegmentation, segment_organs

__all__ = ["OrganSegmentation", "segment_organs"]
