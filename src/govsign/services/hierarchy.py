"""CA administration: the hierarchy created by ``govsign init``, the CAs and their published
certificates, CRL publication on request and the replacement of the service certificates (OCSP
responder, TSA), both under dual control by default."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from govsign.access.policy import Permission
from govsign.errors import GovsignError, InvalidInputError, NotFoundError
from govsign.pki.authority import ISSUING_CA_ID, IssuedCertificate, Progress
from govsign.pki.crl import PublishedCRLs
from govsign.pki.hierarchy import REPLACEMENT_REASONS, SERVICE_PROFILES, HierarchyResult, HierarchySpec
from govsign.pki.issuer import PublicURLs
from govsign.pki.records import CARecord, RevocationReason
from govsign.services.approvals import PUBLISH_CRLS, REPLACE_SERVICE_CERTIFICATE, DualControl
from govsign.services.authorization import Authorization, Requester
from govsign.services.uow import UnitOfWork, Work
from govsign.storage.approvals import ApprovalRecord
from govsign.storage.engine import Database


class Hierarchy:
    """The CAs of this service."""

    def __init__(
        self,
        *,
        database: Database,
        uow: UnitOfWork,
        authorization: Authorization,
        dual_control: DualControl,
        publish_crls: Callable[[], Mapping[str, PublishedCRLs]],
        service_certificates_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self._database = database
        self._uow = uow
        self._authorization = authorization
        self._dual_control = dual_control
        self._publish_crls = publish_crls
        self._service_certificates_changed = service_certificates_changed

    @property
    def urls(self) -> PublicURLs:
        """Where relying parties find the CAs' certificates, CRLs and OCSP."""
        return self._uow.policy.urls

    def initialize(self, spec: HierarchySpec, *, actor: str, progress: Progress | None = None) -> HierarchyResult:
        """Create the root CA, the issuing CA and its service certificates once (idempotent)."""
        return self._uow.run(
            lambda work: work.hierarchy.initialize(spec, actor=actor),
            action="ca.init",
            requester=Requester.operator(actor),
            object_id="hierarchy",
            progress=progress,
            reserve_keys=("ocsp", "tsa"),
        )

    def list_cas(self, requester: Requester | None = None) -> list[CARecord]:
        if requester is not None:
            self._authorization.check_role(requester, Permission.CA_READ)
        with self._database.read_only() as ports:
            return ports.cas.list_cas()

    def ca_certificate(self, ca_id: str) -> bytes | None:
        """The DER certificate of a CA (published at its AIA caIssuers URL), or None."""
        with self._database.read_only() as ports:
            ca = ports.cas.get_ca(ca_id)
            return ca.certificate_der if ca is not None else None

    def request_crl_publication(self, requester: Requester) -> Mapping[str, PublishedCRLs] | ApprovalRecord:
        """Publish fresh CRLs of every CA now, or file the request for a second administrator."""
        self._authorization.check_role(requester, Permission.CA_ADMINISTER)
        if not self._dual_control.applies(requester, "ca-administration"):
            try:
                return self._publish_crls()
            except GovsignError as exc:  # e.g. the HSM is unavailable: a refusal, audited
                self._uow.record_refusal("crl.publish", requester, "all", exc)
                raise

        def operation(work: Work) -> ApprovalRecord:
            return self._dual_control.request(
                work, operation=PUBLISH_CRLS, target="all", parameters={}, agency_id=None, requester=requester
            )

        return self._uow.run(operation, action="crl.publish", requester=requester, object_id="all")

    def replace_service_certificate(
        self,
        profile: str,
        requester: Requester,
        *,
        reason: RevocationReason = RevocationReason.SUPERSEDED,
        ca_id: str = ISSUING_CA_ID,
    ) -> IssuedCertificate | ApprovalRecord:
        """Replace the OCSP responder or TSA certificate of an issuing CA: a new certificate with a
        new HSM key, the old one revoked with ``reason``. A CA administration operation: under
        dual control by default (an API client's request, or the operator's at the CLI, waits for
        a second administrator or operator). The subscriber lifecycle refuses these certificates."""
        self._authorization.check_role(requester, Permission.CA_ADMINISTER)
        parameters = {"ca_id": ca_id, "profile": profile, "reason": reason.value}

        def operation(work: Work) -> IssuedCertificate | ApprovalRecord:
            if self._dual_control.applies_to_ca_administration(requester):
                # checked now, so that a request that cannot be executed is refused at once
                _check_replacement(work, ca_id, profile, reason)
                return self._dual_control.request(
                    work,
                    operation=REPLACE_SERVICE_CERTIFICATE,
                    target=f"{ca_id}/{profile}",
                    parameters=parameters,
                    agency_id=None,
                    requester=requester,
                )
            return self._replace(work, parameters, requester.actor)

        result = self._uow.run(
            operation,
            action="service-certificate.replace",
            requester=requester,
            object_id=f"{ca_id}/{profile}",
            reserve_keys=("tsa" if profile == "tsa" else "ocsp",),
        )
        if isinstance(result, IssuedCertificate):
            self._service_certificates_changed()
        return result

    def execute(self, work: Work, approval: ApprovalRecord, requester: Requester) -> object:
        """Execute an approved replacement inside the approving unit of work."""
        if approval.operation != REPLACE_SERVICE_CERTIFICATE:
            raise InvalidInputError(f"Unknown operation '{approval.operation}'.")
        return self._replace(work, approval.parameters, requester.actor)

    @staticmethod
    def _replace(work: Work, parameters: Mapping[str, object], actor: str) -> IssuedCertificate:
        ca_id, profile = str(parameters["ca_id"]), str(parameters["profile"])
        reason = RevocationReason(str(parameters["reason"]))
        if work.ports.cas.get_ca(ca_id) is not None:
            work.ports.crls.lock_crl_state(ca_id)  # one replacement or rollover at a time per CA
        issued, _replaced = work.hierarchy.replace_service_certificate(ca_id, profile, reason=reason, actor=actor)
        return issued


def _check_replacement(work: Work, ca_id: str, profile: str, reason: RevocationReason) -> None:
    """Refuse at once a replacement that could not be executed when approved."""
    if profile not in SERVICE_PROFILES:
        raise InvalidInputError(f"'{profile}' is not a service certificate; use one of {', '.join(SERVICE_PROFILES)}.")
    if reason not in REPLACEMENT_REASONS:
        raise InvalidInputError(f"A service certificate is not replaced for {reason.value}.")
    if work.ports.cas.get_ca(ca_id) is None:
        raise NotFoundError(f"There is no CA '{ca_id}'.")
