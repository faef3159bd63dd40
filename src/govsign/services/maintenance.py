"""What the running service does by itself, so no cron is needed: CRLs signed when a revocation
changed or nextUpdate approaches, pre-produced OCSP responses refreshed, the OCSP responder and
TSA certificates rolled over before they expire (and at once when there is no valid one: revoked,
expired or missing, so time-stamping never stays down), audit checkpoints signed and the audit
head exported."""

from __future__ import annotations

import datetime as dt

from govsign.clock import Clock
from govsign.pki.crl import PublishedCRLs
from govsign.pki.profiles import OCSP_RESPONDER, TSA, CertificateProfile
from govsign.pki.records import CARecord, CARole, CertificateRecord
from govsign.services.audit_checkpoints import AuditCheckpoints
from govsign.services.authorization import Requester
from govsign.services.status import CRLService, OCSPService, TimeStampService
from govsign.services.uow import UnitOfWork, Work
from govsign.storage.ports import SQLPorts

ROLLOVER_ACTOR = "system:ocsp-rollover"
TSA_ROLLOVER_ACTOR = "system:tsa-rollover"


class Maintenance:
    """The periodic work; each method is safe to run in several processes at once (the rows it
    changes are locked, so each CRL number and each rollover happens once)."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        clock: Clock,
        ocsp: OCSPService,
        crls: CRLService,
        checkpoints: AuditCheckpoints,
        responder_validity: dt.timedelta,
        timestamps: TimeStampService | None = None,
        tsa_validity: dt.timedelta = dt.timedelta(days=1826),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._ocsp = ocsp
        self._crls = crls
        self._checkpoints = checkpoints
        self._responder_validity = responder_validity
        self._timestamps = timestamps
        self._tsa_validity = tsa_validity

    def publish_crls(self) -> dict[str, PublishedCRLs]:
        """CRLs of the CAs that are due (every second)."""
        return self._crls.publish()

    def refresh_ocsp(self) -> CertificateRecord | None:
        """Roll the responder over when due, then pre-produce missing and expiring responses
        (every 30 seconds)."""
        rolled = self.rollover_ocsp_responder()
        self.rollover_tsa()
        self._ocsp.refresh()
        return rolled

    def audit(self) -> None:
        """The audit checkpoints that are due (at every 100th event, and when an event waited five
        minutes uncovered) and a head record in the export while events arrive (every second)."""
        self._checkpoints.tick()

    def rollover_ocsp_responder(self) -> CertificateRecord | None:
        """Issue a new responder certificate (new HSM key) when the current one has less than a
        third of its validity left or there is no valid one; returns the new certificate, or None
        when none was due."""
        issued = self._rollover(OCSP_RESPONDER, self._responder_validity, ROLLOVER_ACTOR, "ocsp.rollover")
        if issued is not None:
            self._ocsp.responder(reload=True)
        return issued

    def rollover_tsa(self) -> CertificateRecord | None:
        """Issue a new TSA certificate (new HSM key) when the current one is revoked, expired or
        has less than a third of its validity left; returns it, or None when none was due."""
        issued = self._rollover(TSA, self._tsa_validity, TSA_ROLLOVER_ACTOR, "tsa.rollover")
        if issued is not None and self._timestamps is not None:
            self._timestamps.authority(reload=True)
        return issued

    def _rollover(
        self, profile: CertificateProfile, validity: dt.timedelta, actor: str, action: str
    ) -> CertificateRecord | None:
        def due(ports: SQLPorts, ca: CARecord, now: dt.datetime) -> tuple[bool, CertificateRecord | None, bool]:
            """(due, the current certificate, whether it is usable now)."""
            if ca.role is not CARole.ISSUING or ca.not_after <= now:
                return False, None, False
            current = ports.certificates.find_service_certificate(issuer_id=ca.id, profile=profile.name)
            usable = current is not None and current.not_before <= now < current.not_after
            if usable and current is not None and current.not_after - now > validity / 3:
                return False, current, usable
            if usable and current is not None and current.not_after >= ca.not_after:
                return False, current, usable  # a new certificate could not outlive the current one
            return True, current, usable

        with self._uow.reading() as reading:  # most ticks: nothing is due, nothing is written
            if not any(due(reading.ports, ca, self._clock.now())[0] for ca in reading.ports.cas.list_cas()):
                return None

        def operation(work: Work) -> CertificateRecord | None:
            issued: CertificateRecord | None = None
            now = self._clock.now()
            for ca in work.ports.cas.list_cas():
                if ca.role is not CARole.ISSUING or ca.not_after <= now:
                    continue
                work.ports.crls.lock_crl_state(ca.id)  # one rollover at a time per CA, across processes
                needed, current, usable = due(work.ports, ca, now)
                if not needed:
                    continue
                issued = work.hierarchy.issue_service_certificate(
                    ca, profile, actor=actor, algorithm=current.key_algorithm if current is not None else None
                )
                work.audit.record(
                    "service-certificate.rollover",
                    actor=actor,
                    object_type="certificate",
                    object_id=issued.serial_hex,
                    details={
                        "profile": profile.name,
                        "issuer": ca.id,
                        "replaces": current.serial_hex if current is not None else None,
                        "why": "expiring" if usable else ("expired" if current is not None else "no valid certificate"),
                    },
                )
            return issued

        return self._uow.run(
            operation,
            action=action,
            requester=Requester.operator(actor),
            object_id=profile.name,
            reserve_keys=("tsa" if profile is TSA else "ocsp",),
        )
