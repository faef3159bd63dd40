"""The signing time in the signature dictionary, in Vietnam time (Decree 30/2020: ISO 8601, +07:00).

pyHanko writes the signature dictionary's ``/M`` from its signing session's ``system_time``,
with the offset of that datetime's zone: the machine's local zone by default (``Z`` on a server
running in UTC). :class:`VietnamTimePdfSigner` makes it the given signing time, or pyHanko's own
instant when none is given, in ``+07:00``: ``/M (D:20261125091530+07'00')`` (pyHanko's form of
the PDF date offset, with the apostrophe after the minutes that Adobe Reader insists on).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from pyhanko.sign import signers

__all__ = ["VIETNAM_TZ", "VietnamTimePdfSigner"]

#: Vietnam time (ICT, UTC+07:00, no daylight saving), the zone Decree 30 shows signing times in.
VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")


class VietnamTimePdfSigner(signers.PdfSigner):
    """A pyHanko ``PdfSigner`` whose ``/M`` (and the signing time of pyHanko's own CMS path) is
    ``signing_time`` shown in ``+07:00``; without one, pyHanko's clock reading in ``+07:00``."""

    def __init__(self, *args: Any, signing_time: datetime | None = None, **kwargs: Any) -> None:
        if signing_time is not None and signing_time.utcoffset() is None:
            raise ValueError("the signing time must be timezone-aware")
        super().__init__(*args, **kwargs)
        self._signing_time = signing_time

    def init_signing_session(self, pdf_out: Any, existing_fields_only: bool = False) -> Any:
        """pyHanko's session, with its ``system_time`` set to the signing time in Vietnam time."""
        session = super().init_signing_session(pdf_out, existing_fields_only=existing_fields_only)
        instant = self._signing_time if self._signing_time is not None else session.system_time
        session.system_time = instant.astimezone(VIETNAM_TZ)
        return session
