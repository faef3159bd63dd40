"""Subscriber certificates, as the registration authority works with them: enrol, show, search,
chain, revoke, hold, release, renew and re-key. The API and the CLI both call these, so each
rule (authorization, dual control, the key source) exists once.

Authorization is decided inside the operation's unit of work, against the certificate's agency,
before anything changes (a refusal is audited), except for enrolment, whose agency is known
before the transaction starts.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from govsign.access.policy import Permission
from govsign.errors import InvalidInputError, NotFoundError, ServiceCertificateError
from govsign.keystore.api import KeyAlgorithm
from govsign.pki.authority import CertificateView, IssuedCertificate, Progress
from govsign.pki.issuance import IssuanceRequest, check_key_source
from govsign.pki.profiles import SUBSCRIBER_PROFILE_NAMES
from govsign.pki.records import CertificateStatus, RevocationReason
from govsign.services.approvals import REPLACE_SERVICE_CERTIFICATE, DualControl
from govsign.services.authorization import Authorization, Requester
from govsign.services.paging import Page
from govsign.services.uow import Completion, UnitOfWork, Work
from govsign.storage.approvals import ApprovalRecord
from govsign.storage.engine import Database

#: What a lifecycle request gives when a second officer must approve it first.
Pending = ApprovalRecord
#: The pending key an issuance with a key generated in the HSM reserves (see UnitOfWork.run).
SUBSCRIBER_KEY = ("sub",)


def keys_of_approved(approval: ApprovalRecord) -> tuple[str, ...]:
    """The keys that executing an approved request may generate in the HSM."""
    if approval.operation == "enrol" and approval.parameters.get("key_algorithm"):
        return SUBSCRIBER_KEY
    if approval.operation == REPLACE_SERVICE_CERTIFICATE:
        return ("tsa" if approval.parameters.get("profile") == "tsa" else "ocsp",)
    return ()


def enrolment_parameters(request: IssuanceRequest) -> dict[str, Any]:
    """An enrolment as an approval request keeps it (JSON)."""
    csr: str | None = None
    if request.csr is not None:
        try:
            csr = request.csr.decode("ascii")
        except UnicodeDecodeError:
            csr = "base64:" + base64.b64encode(request.csr).decode("ascii")
    algorithm = request.key_algorithm.value if request.key_algorithm else None
    fields = ("profile", "subject", "email", "validity_days", "agency_id")
    return {**{name: getattr(request, name) for name in fields}, "csr": csr, "key_algorithm": algorithm}


def enrolment_from_parameters(parameters: dict[str, Any], agency_id: str | None) -> IssuanceRequest:
    """The enrolment an approval request keeps, as it was asked for."""
    csr_text = parameters.get("csr")
    csr: bytes | None = None
    if csr_text is not None:
        try:
            csr = base64.b64decode(csr_text[7:], validate=True) if csr_text.startswith("base64:") else csr_text.encode()
        except (binascii.Error, ValueError):
            raise InvalidInputError("The approved request's CSR is not readable.") from None
    algorithm = parameters.get("key_algorithm")
    return IssuanceRequest(
        profile=parameters["profile"],
        subject=parameters.get("subject"),
        email=parameters.get("email"),
        csr=csr,
        key_algorithm=KeyAlgorithm(algorithm) if algorithm else None,
        validity_days=parameters.get("validity_days"),
        agency_id=agency_id,
    )


@dataclass(frozen=True, kw_only=True)
class CertificateQuery:
    """Which certificates to list (every filter optional), oldest first."""

    status: CertificateStatus | None = None
    """Only this status."""
    profile: str | None = None
    """Only this profile."""
    agency_id: str | None = None
    """Only this agency (within the requester's)."""
    subject_contains: str | None = None
    """A substring of the subject."""
    after_id: int | None = None
    """Only certificates after this one (pagination)."""
    limit: int = 50
    """At most this many."""


class Certificates:
    """The registration authority's operations on subscriber certificates."""

    def __init__(
        self, *, database: Database, uow: UnitOfWork, authorization: Authorization, dual_control: DualControl
    ) -> None:
        self._database = database
        self._uow = uow
        self._authorization = authorization
        self._dual_control = dual_control

    # -- enrolment ----------------------------------------------------------------------------

    def enrol(
        self,
        spec: IssuanceRequest,
        requester: Requester,
        *,
        progress: Progress | None = None,
        completion: Completion | None = None,
    ) -> IssuedCertificate | Pending:
        """Issue the certificate, or (under dual control) file the request for approval."""
        self._authorization.check(requester, Permission.CERTIFICATE_ENROL, agency_id=spec.agency_id)
        check_key_source(spec.csr, spec.key_algorithm)

        def operation(work: Work) -> IssuedCertificate | Pending:
            if spec.agency_id is not None and work.ports.access.get_agency(spec.agency_id) is None:
                raise NotFoundError(f"There is no agency '{spec.agency_id}'.")
            if self._dual_control.applies(requester, "enrol"):
                return self._dual_control.request(
                    work,
                    operation="enrol",
                    target=spec.subject or "csr",
                    parameters=enrolment_parameters(spec),
                    agency_id=spec.agency_id,
                    requester=requester,
                )
            return work.issuance.issue(spec, actor=requester.actor)

        return self._uow.run(
            operation,
            action="certificate.issue",
            requester=requester,
            object_id=spec.subject or "csr",
            progress=progress,
            completion=completion,
            reserve_keys=SUBSCRIBER_KEY if spec.key_algorithm is not None else (),
        )

    # -- reads --------------------------------------------------------------------------------

    def show(self, serial: str, requester: Requester, *, issuer_id: str | None = None) -> CertificateView:
        return self._uow.read(
            lambda work: self._authorized(work, serial, Permission.CERTIFICATE_READ, requester, issuer_id)
        )

    def search(self, query: CertificateQuery, requester: Requester) -> Page[CertificateView]:
        """Certificates of the requester's agency and its sub-units (all, for the CA-wide roles)."""
        self._authorization.check_role(requester, Permission.CERTIFICATE_READ)
        scope = self._authorization.visible_agencies(requester, query.agency_id)

        def read(work: Work) -> Page[CertificateView]:
            records = work.ports.certificates.search_certificates(
                now=work.ca.clock.now(),
                status=query.status,
                profile=query.profile,
                agency_ids=scope,
                subject_contains=query.subject_contains,
                after_id=query.after_id,
                limit=query.limit + 1,
            )
            page = Page.of(records, query.limit)
            return Page(items=[work.ca.view(record) for record in page.items], more=page.more)

        return self._uow.read(read)

    def list_all(self, status: CertificateStatus | None = None, limit: int = 1000) -> list[CertificateView]:
        """Every certificate (the operator's listing), newest first."""
        return self._uow.read(lambda work: work.lifecycle.list_certificates(status, limit))

    def chain(self, serial: str, requester: Requester) -> list[x509.Certificate]:
        """The certificate and its CA certificates up to the root."""

        def read(work: Work) -> list[x509.Certificate]:
            view = self._authorized(work, serial, Permission.CERTIFICATE_READ, requester)
            chain = [x509.load_der_x509_certificate(view.record.certificate_der)]
            ca = work.ports.cas.get_ca(view.record.issuer_id)
            while ca is not None:
                chain.append(x509.load_der_x509_certificate(ca.certificate_der))
                ca = work.ports.cas.get_ca(ca.parent_id) if ca.parent_id else None
            return chain

        return self._uow.read(read)

    # -- lifecycle ----------------------------------------------------------------------------

    def revoke(
        self,
        serial: str,
        reason: RevocationReason,
        requester: Requester,
        *,
        invalidity_date: dt.datetime | None = None,
        issuer_id: str | None = None,
    ) -> CertificateView | Pending:
        """Revoke (certificateHold: suspend) the certificate, or file the request for approval."""
        if reason is RevocationReason.CERTIFICATE_HOLD:
            return self.hold(serial, requester, issuer_id=issuer_id)
        parameters: dict[str, Any] = {
            "reason": reason.value,
            "invalidity_date": invalidity_date.isoformat() if invalidity_date is not None else None,
        }
        return self._lifecycle(serial, "revoke", Permission.CERTIFICATE_REVOKE, parameters, requester, issuer_id)

    def hold(self, serial: str, requester: Requester, *, issuer_id: str | None = None) -> CertificateView | Pending:
        return self._lifecycle(serial, "hold", Permission.CERTIFICATE_SUSPEND, {}, requester, issuer_id)

    def release(self, serial: str, requester: Requester, *, issuer_id: str | None = None) -> CertificateView | Pending:
        return self._lifecycle(serial, "release", Permission.CERTIFICATE_SUSPEND, {}, requester, issuer_id)

    def renew(
        self,
        serial: str,
        requester: Requester,
        *,
        validity_days: int | None = None,
        issuer_id: str | None = None,
        completion: Completion | None = None,
    ) -> IssuedCertificate:
        """A new certificate for the same subject and key."""

        def operation(work: Work) -> IssuedCertificate:
            view = self._subscriber(self._authorized(work, serial, Permission.CERTIFICATE_RENEW, requester, issuer_id))
            return work.issuance.renew(
                view.record.serial_hex, actor=requester.actor, validity_days=validity_days, issuer_id=issuer_id
            )

        return self._uow.run(
            operation, action="certificate.renew", requester=requester, object_id=serial, completion=completion
        )

    def rekey(
        self,
        serial: str,
        requester: Requester,
        *,
        csr: bytes | None = None,
        key_algorithm: KeyAlgorithm | None = None,
        validity_days: int | None = None,
        issuer_id: str | None = None,
        progress: Progress | None = None,
    ) -> IssuedCertificate:
        """A new certificate for the same subject with a new key."""
        check_key_source(csr, key_algorithm)

        def operation(work: Work) -> IssuedCertificate:
            view = self._subscriber(self._authorized(work, serial, Permission.CERTIFICATE_RENEW, requester, issuer_id))
            serial_hex = view.record.serial_hex
            return work.issuance.rekey(
                serial_hex,
                actor=requester.actor,
                csr=csr,
                generate_key=key_algorithm,
                validity_days=validity_days,
                issuer_id=issuer_id,
            )

        return self._uow.run(
            operation,
            action="certificate.rekey",
            requester=requester,
            object_id=serial,
            progress=progress,
            reserve_keys=SUBSCRIBER_KEY if key_algorithm is not None else (),
        )

    # -- approved requests --------------------------------------------------------------------

    def execute(self, work: Work, approval: ApprovalRecord, requester: Requester) -> object:
        """Execute an approved enrolment or lifecycle request inside the approving unit of work."""
        if approval.operation == "enrol":
            spec = enrolment_from_parameters(approval.parameters, approval.agency_id)
            return work.issuance.issue(spec, actor=requester.actor)
        self._subscriber(work.ca.show(approval.target))
        return self._perform(work, approval.operation, approval.target, approval.parameters, requester.actor, None)

    # -- steps --------------------------------------------------------------------------------

    def _authorized(
        self, work: Work, serial: str, permission: Permission, requester: Requester, issuer_id: str | None = None
    ) -> CertificateView:
        view = work.ca.show(serial, issuer_id)
        self._authorization.check(requester, permission, agency_id=view.record.agency_id)
        return view

    @staticmethod
    def _subscriber(view: CertificateView) -> CertificateView:
        """The certificate, when it is a subscriber's: the CA's own service certificates (OCSP
        responder, TSA, any other) are not revoked, held or renewed through the subscriber
        lifecycle; replacing them is CA administration under dual control."""
        if view.record.profile not in SUBSCRIBER_PROFILE_NAMES:
            raise ServiceCertificateError(
                f"Certificate {view.record.serial_hex} is the CA's own {view.record.profile} certificate: it is not "
                "revoked, held or renewed as a subscriber's. Replace it as CA administration (under dual control): "
                f"POST /api/v1/cas/{view.record.issuer_id}/service-certificates/{view.record.profile}/replacement "
                f"or 'govsign ca replace-service-certificate {view.record.profile}'."
            )
        return view

    def _lifecycle(
        self,
        serial: str,
        name: str,
        permission: Permission,
        parameters: dict[str, Any],
        requester: Requester,
        issuer_id: str | None,
    ) -> CertificateView | Pending:
        def operation(work: Work) -> CertificateView | Pending:
            view = self._subscriber(self._authorized(work, serial, permission, requester, issuer_id))
            if self._needs_approval(name, view, requester):
                return self._dual_control.request(
                    work,
                    operation=name,
                    target=view.record.serial_hex,
                    parameters=parameters,
                    agency_id=view.record.agency_id,
                    requester=requester,
                )
            changed = self._perform(work, name, view.record.serial_hex, parameters, requester.actor, issuer_id)
            assert isinstance(changed, CertificateView)
            return changed

        return self._uow.run(operation, action=f"certificate.{name}", requester=requester, object_id=serial)

    def _needs_approval(self, name: str, view: CertificateView, requester: Requester) -> bool:
        if name == "revoke":
            return self._dual_control.applies(requester, "revoke-any") or (
                view.record.profile == "organization" and self._dual_control.applies(requester, "revoke-organization")
            )
        if name in ("hold", "release"):
            return self._dual_control.applies(requester, "suspend")
        return False

    @staticmethod
    def _perform(
        work: Work, name: str, serial: str, parameters: dict[str, Any], actor: str, issuer_id: str | None
    ) -> CertificateView | IssuedCertificate:
        lifecycle = work.lifecycle
        if name == "revoke":
            invalidity = parameters.get("invalidity_date")
            return lifecycle.revoke(
                serial,
                reason=RevocationReason(parameters["reason"]),
                actor=actor,
                invalidity_date=dt.datetime.fromisoformat(invalidity) if invalidity else None,
                issuer_id=issuer_id,
            )
        if name == "hold":
            return lifecycle.revoke(serial, reason=RevocationReason.CERTIFICATE_HOLD, actor=actor, issuer_id=issuer_id)
        if name == "release":
            return lifecycle.release(serial, actor=actor, issuer_id=issuer_id)
        if name == "renew":
            return work.issuance.renew(
                serial, actor=actor, validity_days=parameters.get("validity_days"), issuer_id=issuer_id
            )
        raise InvalidInputError(f"Unknown operation '{name}'.")
