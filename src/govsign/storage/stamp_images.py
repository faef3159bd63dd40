"""The images visible signatures show (seal or handwritten signature), per credential."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from govsign.storage.models import StampImageRow
from govsign.storage.sql import Repository


@dataclass(frozen=True, kw_only=True)
class StoredStampImage:
    """A credential's stamp image."""

    png: bytes
    """The PNG (transparent background)."""
    width_mm: float | None
    """Its visible width on paper (a seal's diameter), when registered."""


class SQLStampImageStore(Repository):
    """Images shown by credentials' visible signatures."""

    def get(self, certificate_id: int) -> StoredStampImage | None:
        row = self._session.get(StampImageRow, certificate_id)
        return StoredStampImage(png=bytes(row.image_png), width_mm=row.width_mm) if row is not None else None

    def put(self, certificate_id: int, image_png: bytes, at: dt.datetime, *, width_mm: float | None = None) -> None:
        row = self._session.get(StampImageRow, certificate_id)
        if row is None:
            self._session.add(
                StampImageRow(certificate_id=certificate_id, image_png=image_png, width_mm=width_mm, updated_at=at)
            )
        else:
            row.image_png, row.width_mm, row.updated_at = image_png, width_mm, at
        self._session.flush()
