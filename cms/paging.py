"""Offset pagination: page arithmetic shared by every list, and admin lists with an optional counting cap."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")

MAX_PER_PAGE = 200


class PageMath:
    """Page arithmetic for a dataclass with `page`, `per_page` and `total` fields."""

    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


@dataclass(frozen=True)
class Page(PageMath, Generic[T]):
    """One page of results. With `capped`, `total` is a lower bound (the count stopped there)."""

    items: list[T]
    page: int
    per_page: int
    total: int
    capped: bool = False


def paginate(
    session: Session, stmt: Select[Any], page: int, per_page: int, count_cap: int | None = None
) -> Page[Any]:
    """Run `stmt` (ordered) for page `page` (1-based, clamped to the last page); return a Page.

    With `count_cap`, counting stops after that many rows, so huge tables stay cheap to page.
    """
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    counted = stmt.order_by(None)
    if count_cap is not None:
        counted = counted.limit(count_cap + 1)
    total = session.scalar(select(func.count()).select_from(counted.subquery())) or 0
    capped = count_cap is not None and total > count_cap
    if capped:
        total = count_cap  # type: ignore[assignment]
    last = max(1, math.ceil(total / per_page))
    page = max(1, min(page, last))
    items = list(session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).unique())
    return Page(items, page, per_page, total, capped)
