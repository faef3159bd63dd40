"""The images visible signatures show (seal or handwritten signature), per credential."""

from __future__ import annotations

import datetime as dt

from govsign.storage.models import StampImageRow
from govsign.storage.sql import Repository


class SQLStampImageStore(Repository):
    """Images shown by credentials' visible signatures."""

    def get(self, certificate_id: int) -> bytes | None:
        row = self._session.get(StampImageRow, certificate_id)
        return bytes(row.image_png) if row is not None else None

    def put(self, certificate_id: int, image_png: bytes, at: dt.datetime) -> None:
        row = self._session.get(StampImageRow, certificate_id)
        if row is None:
            self._session.add(StampImageRow(certificate_id=certificate_id, image_png=image_png, updated_at=at))
        else:
            row.image_png, row.updated_at = image_png, at
        self._session.flush()
