"""Offset pagination shared by every list endpoint: ``limit``/``offset`` in, ``total`` out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query
from pydantic import BaseModel, Field

MAX_LIMIT = 500


@dataclass(frozen=True)
class Pagination:
    """The page a client asked for."""

    limit: int
    offset: int


async def pagination(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
) -> Pagination:
    """The ``limit`` and ``offset`` query parameters."""
    return Pagination(limit=limit, offset=offset)


PageParams = Annotated[Pagination, Depends(pagination)]


class Page(BaseModel):
    """A page of a list; ``total`` counts every item matching the filters."""

    total: int = Field(..., description="Items matching the filters, over all pages.")
    limit: int
    offset: int
