"""Synthetic chest CT phantoms with organ labels and ground-truth pathologies (see generate.py)."""

from shared.phantoms.generate import Phantom, PhantomParams, generate_phantom
from shared.phantoms.pathologies import PATHOLOGY_TYPES, Lesion

__all__ = ["PATHOLOGY_TYPES", "Lesion", "Phantom", "PhantomParams", "generate_phantom"]
