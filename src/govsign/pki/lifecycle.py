"""The life of an issued certificate after issuance: finding and listing, revocation, hold and
release (RFC 5280 reasons; certificateHold is the only revocation that can be undone)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from govsign.errors import AlreadyRevokedError, InvalidInputError, InvalidStateTransitionError
from govsign.pki.authority import CAContext, CertificateView
from govsign.pki.profiles import SUBSCRIBER_PROFILE_NAMES
from govsign.pki.records import CertificateStatus, RevocationReason, RevocationRecord


class CertificateLifecycle:
    """Reads and status changes of issued certificates inside one unit of work."""

    def __init__(self, context: CAContext) -> None:
        self._ca = context

    def show(self, serial: str, issuer_id: str | None = None) -> CertificateView:
        return self._ca.show(serial, issuer_id)

    def list_certificates(self, status: CertificateStatus | None = None, limit: int = 1000) -> list[CertificateView]:
        records = self._ca.ports.certificates.list_certificates(status=status, now=self._ca.clock.now(), limit=limit)
        return [self._ca.view(record) for record in records]

    def revoke(
        self,
        serial: str,
        *,
        reason: RevocationReason,
        actor: str,
        invalidity_date: dt.datetime | None = None,
        issuer_id: str | None = None,
    ) -> CertificateView:
        """Revoke (or, with certificateHold, suspend) a certificate."""
        found = self._ca.find(serial, issuer_id)
        assert found.id is not None
        ports = self._ca.ports
        record = ports.certificates.get_for_update(found.id)
        now = self._ca.clock.now()
        if invalidity_date is not None:
            if invalidity_date.tzinfo is None:
                raise InvalidInputError("The invalidity date needs a time zone.")
            if invalidity_date > now:
                raise InvalidInputError("The invalidity date cannot be in the future.")
            if invalidity_date < record.not_before:
                raise InvalidInputError(
                    f"The invalidity date cannot be before the certificate was issued ({record.not_before.isoformat()})."
                )
        if reason is RevocationReason.AA_COMPROMISE:
            raise InvalidInputError("aACompromise applies to attribute certificates only.")
        if record.status is CertificateStatus.REVOKED:
            active = ports.revocations.active_revocation(found.id)
            when = f" on {active.revoked_at.isoformat()}" if active else ""
            why = f" ({active.reason.value})" if active else ""
            raise AlreadyRevokedError(f"Certificate {record.serial_hex} is already revoked{why}{when}.")
        if record.status is CertificateStatus.ON_HOLD:
            hold = ports.revocations.active_revocation(found.id)
            if reason is RevocationReason.CERTIFICATE_HOLD:
                raise InvalidStateTransitionError(f"Certificate {record.serial_hex} is already on hold.")
            if hold is not None and hold.id is not None:
                # The hold becomes a permanent revocation: close the hold, then revoke.
                ports.revocations.release_hold(hold.id, released_at=now, released_by=actor)
        if reason is RevocationReason.CERTIFICATE_HOLD and record.profile not in SUBSCRIBER_PROFILE_NAMES:
            raise InvalidStateTransitionError("Only subscriber certificates can be put on hold.")
        revocation = ports.revocations.add_revocation(
            RevocationRecord(
                id=None,
                certificate_id=found.id,
                issuer_id=record.issuer_id,
                serial_hex=record.serial_hex,
                reason=reason,
                revoked_at=now,
                invalidity_date=invalidity_date,
                actor=actor,
                released_at=None,
                released_by=None,
            )
        )
        on_hold = reason is RevocationReason.CERTIFICATE_HOLD
        new_status = CertificateStatus.ON_HOLD if on_hold else CertificateStatus.REVOKED
        ports.certificates.set_status(found.id, new_status)
        details: dict[str, object] = {"reason": reason.value, "issuer": record.issuer_id}
        if invalidity_date is not None:
            details["invalidity_date"] = invalidity_date.isoformat()
        self._ca.audit.record(
            "certificate.hold" if on_hold else "certificate.revoke",
            actor=actor,
            object_type="certificate",
            object_id=record.serial_hex,
            details=details,
        )
        updated = replace(record, status=new_status)
        self._ca.status_changed(updated, revocation)
        return CertificateView(record=updated, status=new_status, revocation=revocation)

    def release(self, serial: str, *, actor: str, issuer_id: str | None = None) -> CertificateView:
        """Release a certificate from hold (the only way back from a revocation status)."""
        found = self._ca.find(serial, issuer_id)
        assert found.id is not None
        ports = self._ca.ports
        record = ports.certificates.get_for_update(found.id)
        if record.status is not CertificateStatus.ON_HOLD:
            raise InvalidStateTransitionError(
                f"Certificate {record.serial_hex} is {record.status.value}, not on hold; only a held certificate can be released."
            )
        hold = ports.revocations.active_revocation(found.id)
        if hold is None or hold.id is None:
            raise InvalidStateTransitionError(f"Certificate {record.serial_hex} has no hold to release.")
        ports.revocations.release_hold(hold.id, released_at=self._ca.clock.now(), released_by=actor)
        ports.certificates.set_status(found.id, CertificateStatus.VALID)
        self._ca.audit.record(
            "certificate.release",
            actor=actor,
            object_type="certificate",
            object_id=record.serial_hex,
            details={"issuer": record.issuer_id},
        )
        released = replace(record, status=CertificateStatus.VALID)
        self._ca.status_changed(released, None)
        return CertificateView(record=released, status=CertificateStatus.VALID, revocation=None)
