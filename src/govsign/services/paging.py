"""One page of a listing (keyset pagination: the front end turns the last item into its cursor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Page(Generic[T]):
    """Up to a limit of items, in order, and whether more follow the last one."""

    items: list[T]
    """The items of this page."""
    more: bool
    """True when another page follows (its first item comes after this page's last)."""

    @classmethod
    def of(cls, fetched: list[T], limit: int) -> Page[T]:
        """The page from ``limit + 1`` fetched items (the extra one only tells that more follow)."""
        return cls(items=fetched[:limit], more=len(fetched) > limit)
