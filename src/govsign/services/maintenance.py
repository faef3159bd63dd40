"""What the running service does by itself, so no cron is needed: CRLs signed when a revocation
changed or nextUpdate approaches, pre-produced OCSP responses refreshed, the OCSP responder
certificate rolled over before it expires, audit checkpoints signed and the audit head exported."""

from __future__ import annotations

import datetime as dt

from govsign.clock import Clock
from govsign.pki.crl import PublishedCRLs
from govsign.pki.profiles import OCSP_RESPONDER
from govsign.pki.records import CARole, CertificateRecord
from govsign.services.audit_checkpoints import AuditCheckpoints
from govsign.services.authorization import Requester
from govsign.services.status import CRLService, OCSPService
from govsign.services.uow import UnitOfWork, Work

ROLLOVER_ACTOR = "system:ocsp-rollover"


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
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._ocsp = ocsp
        self._crls = crls
        self._checkpoints = checkpoints
        self._responder_validity = responder_validity

    def publish_crls(self) -> dict[str, PublishedCRLs]:
        """CRLs of the CAs that are due (every second)."""
        return self._crls.publish()

    def refresh_ocsp(self) -> CertificateRecord | None:
        """Roll the responder over when due, then pre-produce missing and expiring responses
        (every 30 seconds)."""
        rolled = self.rollover_ocsp_responder()
        self._ocsp.refresh()
        return rolled

    def audit(self) -> None:
        """The audit checkpoints that are due (at every 100th event, and when an event waited five
        minutes uncovered) and a head record in the export while events arrive (every second)."""
        self._checkpoints.tick()

    def rollover_ocsp_responder(self) -> CertificateRecord | None:
        """Issue a new responder certificate (new HSM key) when the current one has less than a
        third of its validity left; returns the new certificate, or None when none was due."""

        def operation(work: Work) -> CertificateRecord | None:
            issued: CertificateRecord | None = None
            for ca in work.ports.cas.list_cas():
                if ca.role is not CARole.ISSUING:
                    continue
                work.ports.crls.lock_crl_state(ca.id)  # one rollover at a time per CA, across processes
                current = work.ports.certificates.find_service_certificate(issuer_id=ca.id, profile=OCSP_RESPONDER.name)
                if current is not None and current.not_after - self._clock.now() > self._responder_validity / 3:
                    continue
                if current is not None and current.not_after >= ca.not_after:
                    continue  # a new certificate could not outlive the current one (CA near its end)
                issued = work.hierarchy.issue_service_certificate(
                    ca,
                    OCSP_RESPONDER,
                    actor=ROLLOVER_ACTOR,
                    algorithm=current.key_algorithm if current is not None else None,
                )
            return issued

        issued = self._uow.run(
            operation, action="ocsp.rollover", requester=Requester.operator(ROLLOVER_ACTOR), object_id="responders"
        )
        if issued is not None:
            self._ocsp.responder(reload=True)
        return issued
