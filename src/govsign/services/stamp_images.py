"""The images visible signatures show (Decree 30/2020): the agency's seal for an organization
credential, the official's handwritten signature for an individual one; stored once per
credential by an RA officer, drawn into every visible signature it makes."""

from __future__ import annotations

import hashlib

from govsign.access.policy import Permission
from govsign.clock import Clock
from govsign.errors import GovsignError, InvalidInputError, PolicyViolationError
from govsign.services.audit_log import AuditLog
from govsign.services.authorization import Authorization, Requester
from govsign.services.uow import UnitOfWork
from govsign.signing.stamp import check_png

#: The profiles whose visible signatures show an image.
STAMP_PROFILES = ("individual", "organization")


class StampImages:
    """Stores and reads the stamp image of a credential."""

    def __init__(self, *, uow: UnitOfWork, clock: Clock, authorization: Authorization, audit: AuditLog) -> None:
        self._uow = uow
        self._clock = clock
        self._authorization = authorization
        self._audit = audit

    def set(self, serial: str, image_png: bytes, requester: Requester, *, width_mm: float | None = None) -> str:
        """Store the image (a PNG with a transparent background) and, when given, its visible
        width on paper in millimetres (a seal's diameter); returns its SHA-256."""
        action = "credential.stamp-image.set"
        try:
            check_png(image_png)
            if width_mm is not None and not 5 <= width_mm <= 150:
                raise InvalidInputError("The width of a stamp image on paper must be between 5 and 150 mm.")
            digest = hashlib.sha256(image_png).hexdigest()
            with self._uow.transaction(requester.context) as work:
                record = work.ca.show(serial).record
                self._authorization.check(requester, Permission.CERTIFICATE_ENROL, agency_id=record.agency_id)
                if record.profile not in STAMP_PROFILES:
                    raise PolicyViolationError(
                        f"Visible signatures are for officials and agency seals, not the {record.profile} profile."
                    )
                assert record.id is not None
                work.ports.stamp_images.put(record.id, bytes(image_png), self._clock.now(), width_mm=width_mm)
                work.audit.certificate_event(
                    action, requester, record.serial_hex, {"image_sha256": digest, "width_mm": width_mm}
                )
        except GovsignError as exc:
            self._audit.record_refusal(action, requester, serial, exc)
            raise
        return digest
