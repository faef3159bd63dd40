"""The registration-authority operations behind the REST endpoints (synchronous; the routes
run them in a worker thread). Each is one transaction; authorization is checked inside it,
against the object's agency, before anything changes."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from govsign.access.policy import CA_WIDE_ROLES, Permission, Principal
from govsign.api.schemas import resources as schemas
from govsign.errors import ForbiddenError, InvalidInputError, NotFoundError
from govsign.keystore.api import KeyAlgorithm
from govsign.pki.authority import CertificateAuthority, CertificateView, IssuanceRequest, IssuedCertificate
from govsign.pki.ports import AuditContext, CertificateStatus, RevocationReason
from govsign.platform import Platform
from govsign.storage.repositories import ApprovalRecord, SQLPorts

APPROVAL_STATUS = 202


def certificate_resource(view: CertificateView) -> dict[str, Any]:
    record = view.record
    revocation = None
    if view.revocation is not None and view.status is not CertificateStatus.VALID:
        revocation = schemas.RevocationInfo(
            reason=view.revocation.reason.value,
            revoked_at=view.revocation.revoked_at,
            invalidity_date=view.revocation.invalidity_date,
        )
    return schemas.Certificate(
        serial=record.serial_hex,
        issuer_id=record.issuer_id,
        status=view.status.value,  # type: ignore[arg-type]
        profile=record.profile,
        subject=record.subject,
        email=record.email,
        agency_id=record.agency_id,
        not_before=record.not_before,
        not_after=record.not_after,
        key_algorithm=record.key_algorithm.value,
        key_source="hsm" if record.key is not None else "csr",
        fingerprint_sha256=record.fingerprint_sha256,
        revocation=revocation,
        certificate_pem=view.certificate_pem,
    ).model_dump(mode="json")


def issued_resource(authority: CertificateAuthority, issued: IssuedCertificate) -> dict[str, Any]:
    return certificate_resource(authority.view(issued.record))


def approval_resource(record: ApprovalRecord) -> dict[str, Any]:
    return schemas.Approval(
        id=record.id,
        operation=record.operation,
        target=record.target,
        parameters=record.parameters,
        agency_id=record.agency_id,
        status=record.status,  # type: ignore[arg-type]
        requested_by=record.requested_by,
        requested_at=record.requested_at,
        decided_by=record.decided_by,
        decided_at=record.decided_at,
        result=record.result,
    ).model_dump(mode="json")


def encode_cursor(last_id: int | str) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInputError("The cursor is not one this API returned.") from None


class RAService:
    """RA operations for one authenticated caller."""

    def __init__(self, platform: Platform, principal: Principal, context: AuditContext) -> None:
        self.platform = platform
        self.runtime = platform.runtime
        self.principal = principal
        self.context = context

    # -- helpers ----------------------------------------------------------------------------

    def _authorize_certificate(
        self, authority: CertificateAuthority, serial: str, permission: Permission
    ) -> CertificateView:
        view = authority.show(serial)
        self.platform.authorize(self.principal, permission, agency_id=view.record.agency_id, agency_bound=True)
        return view

    def _execute(self, operation: Any, action: str, object_id: str) -> Any:
        return self.runtime.execute_with_ports(
            operation, action=action, actor=self.principal.actor, object_id=object_id, audit_context=self.context
        )

    # -- enrolment --------------------------------------------------------------------------

    def enrol(self, body: schemas.EnrolmentRequest, remember: Any) -> tuple[int, dict[str, Any]]:
        agency_id = body.agency_id or self.principal.agency_id
        self.platform.authorize(self.principal, Permission.CERTIFICATE_ENROL, agency_id=agency_id, agency_bound=True)
        if (body.csr is None) == (body.key_algorithm is None):
            raise InvalidInputError("Give either csr or key_algorithm, not both or neither.")
        request = IssuanceRequest(
            profile=body.profile,
            subject=body.subject,
            email=body.email,
            csr=body.csr.encode("utf-8") if body.csr is not None else None,
            generate_key=KeyAlgorithm(body.key_algorithm) if body.key_algorithm else None,
            validity_days=body.validity_days,
            agency_id=agency_id,
            actor=self.principal.actor,
        )

        def operation(authority: CertificateAuthority, ports: SQLPorts) -> tuple[int, dict[str, Any]]:
            if ports.access.get_agency(agency_id) is None:
                raise NotFoundError(f"There is no agency '{agency_id}'.")
            if self.platform.needs_approval("enrol"):
                approval = self.platform.create_approval(
                    ports,
                    operation="enrol",
                    target=body.subject or "csr",
                    parameters=body.model_dump(mode="json"),
                    agency_id=agency_id,
                    principal=self.principal,
                    context=self.context,
                )
                result = (APPROVAL_STATUS, approval_resource(approval))
            else:
                result = (201, issued_resource(authority, authority.issue(request)))
            remember(ports, *result)
            return result

        status, resource = self._execute(operation, "certificate.issue", body.subject or "csr")
        return status, resource

    # -- reads ------------------------------------------------------------------------------

    def get(self, serial: str) -> dict[str, Any]:
        with self.runtime.database.read_only() as ports:
            authority = self.runtime.authority(ports)
            return certificate_resource(self._authorize_certificate(authority, serial, Permission.CERTIFICATE_READ))

    def search(
        self,
        *,
        status: str | None,
        profile: str | None,
        agency_id: str | None,
        subject_contains: str | None,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        self.platform.authorize(self.principal, Permission.CERTIFICATE_READ, agency_id=None, agency_bound=False)
        after = decode_cursor(cursor)
        after_id = int(after) if after is not None and after.isdigit() else None
        if after is not None and after_id is None:
            raise InvalidInputError("The cursor is not one this API returned.")
        scope: frozenset[str] | None
        if self.principal.role in CA_WIDE_ROLES:
            scope = frozenset({agency_id}) if agency_id else None
        else:
            scope = self.platform.agency_subtree(self.principal.agency_id)
            if agency_id is not None:
                if agency_id not in scope:
                    raise ForbiddenError("The agency filter names an agency outside the caller's.")
                scope = frozenset({agency_id})
        with self.runtime.database.read_only() as ports:
            records = ports.certificates.search_certificates(
                now=self.runtime.clock.now(),
                status=CertificateStatus(status) if status else None,
                profile=profile,
                agency_ids=scope,
                subject_contains=subject_contains,
                after_id=after_id,
                limit=limit + 1,
            )
            authority = self.runtime.authority(ports)
            items = [certificate_resource(authority.view(record)) for record in records[:limit]]
        next_cursor = encode_cursor(records[limit - 1].id or 0) if len(records) > limit else None
        return {"items": items, "next_cursor": next_cursor}

    def chain(self, serial: str, output_format: str) -> tuple[bytes, str]:
        with self.runtime.database.read_only() as ports:
            authority = self.runtime.authority(ports)
            view = self._authorize_certificate(authority, serial, Permission.CERTIFICATE_READ)
            chain = [x509.load_der_x509_certificate(view.record.certificate_der)]
            ca = ports.cas.get_ca(view.record.issuer_id)
            while ca is not None:
                chain.append(x509.load_der_x509_certificate(ca.certificate_der))
                ca = ports.cas.get_ca(ca.parent_id) if ca.parent_id else None
        if output_format == "pem":
            return b"".join(
                c.public_bytes(serialization.Encoding.PEM) for c in chain
            ), "application/pem-certificate-chain"
        if output_format == "der":
            return chain[0].public_bytes(serialization.Encoding.DER), "application/pkix-cert"
        return pkcs7.serialize_certificates(chain, serialization.Encoding.DER), "application/pkcs7-mime"

    # -- lifecycle --------------------------------------------------------------------------

    def _lifecycle(
        self, serial: str, operation_name: str, permission: Permission, parameters: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        def operation(authority: CertificateAuthority, ports: SQLPorts) -> tuple[int, dict[str, Any]]:
            view = self._authorize_certificate(authority, serial, permission)
            if self._needs_approval(operation_name, view):
                approval = self.platform.create_approval(
                    ports,
                    operation=operation_name,
                    target=view.record.serial_hex,
                    parameters=parameters,
                    agency_id=view.record.agency_id,
                    principal=self.principal,
                    context=self.context,
                )
                return APPROVAL_STATUS, approval_resource(approval)
            return self._perform(authority, operation_name, view.record.serial_hex, parameters)

        status, resource = self._execute(operation, f"certificate.{operation_name}", serial)
        return status, resource

    def _needs_approval(self, operation_name: str, view: CertificateView) -> bool:
        platform = self.platform
        if operation_name == "revoke":
            return platform.needs_approval("revoke-any") or (
                view.record.profile == "organization" and platform.needs_approval("revoke-organization")
            )
        if operation_name in ("hold", "release"):
            return platform.needs_approval("suspend")
        return False

    def _perform(
        self, authority: CertificateAuthority, operation_name: str, serial: str, parameters: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        actor = self.principal.actor
        if operation_name == "revoke":
            invalidity = parameters.get("invalidity_date")
            view = authority.revoke(
                serial,
                reason=RevocationReason(parameters["reason"]),
                actor=actor,
                invalidity_date=dt.datetime.fromisoformat(invalidity) if invalidity else None,
            )
            return 200, certificate_resource(view)
        if operation_name == "hold":
            return 200, certificate_resource(
                authority.revoke(serial, reason=RevocationReason.CERTIFICATE_HOLD, actor=actor)
            )
        if operation_name == "release":
            return 200, certificate_resource(authority.release(serial, actor=actor))
        if operation_name == "renew":
            issued = authority.renew(serial, actor=actor, validity_days=parameters.get("validity_days"))
            return 201, issued_resource(authority, issued)
        raise InvalidInputError(f"Unknown operation '{operation_name}'.")

    def revoke(self, serial: str, body: schemas.RevocationRequest) -> tuple[int, dict[str, Any]]:
        return self._lifecycle(serial, "revoke", Permission.CERTIFICATE_REVOKE, body.model_dump(mode="json"))

    def hold(self, serial: str) -> tuple[int, dict[str, Any]]:
        return self._lifecycle(serial, "hold", Permission.CERTIFICATE_SUSPEND, {})

    def release(self, serial: str) -> tuple[int, dict[str, Any]]:
        return self._lifecycle(serial, "release", Permission.CERTIFICATE_SUSPEND, {})

    def renew(self, serial: str, body: schemas.RenewalRequest, remember: Any) -> tuple[int, dict[str, Any]]:
        def operation(authority: CertificateAuthority, ports: SQLPorts) -> tuple[int, dict[str, Any]]:
            view = self._authorize_certificate(authority, serial, Permission.CERTIFICATE_RENEW)
            result = self._perform(authority, "renew", view.record.serial_hex, body.model_dump(mode="json"))
            remember(ports, *result)
            return result

        status, resource = self._execute(operation, "certificate.renew", serial)
        return status, resource

    # -- approvals --------------------------------------------------------------------------

    def list_approvals(self, *, status: str | None, cursor: str | None, limit: int) -> dict[str, Any]:
        self.platform.authorize(self.principal, Permission.APPROVAL_READ, agency_id=None, agency_bound=False)
        after: tuple[dt.datetime, str] | None = None
        decoded = decode_cursor(cursor)
        if decoded is not None:
            stamp, _, approval_id = decoded.partition("|")
            try:
                after = (dt.datetime.fromisoformat(stamp), approval_id)
            except ValueError:
                raise InvalidInputError("The cursor is not one this API returned.") from None
        scope = None if self.principal.role in CA_WIDE_ROLES else self.platform.agency_subtree(self.principal.agency_id)
        with self.runtime.database.read_only() as ports:
            records = ports.approvals.list(status=status, limit=limit + 1, after=after, agency_ids=scope)
        page = records[:limit]
        next_cursor = (
            encode_cursor(f"{page[-1].requested_at.isoformat()}|{page[-1].id}") if len(records) > limit else None
        )
        return {"items": [approval_resource(r) for r in page], "next_cursor": next_cursor}

    def decide(self, approval_id: str, *, approve: bool) -> tuple[int, dict[str, Any]]:
        def operation(authority: CertificateAuthority, ports: SQLPorts) -> tuple[int, dict[str, Any]]:
            approval = ports.approvals.get_for_update(approval_id)
            if approval is None:
                raise NotFoundError(f"There is no approval request '{approval_id}'.")
            permission = (
                Permission.CA_ADMINISTER if approval.operation == "publish-crls" else Permission.APPROVAL_DECIDE
            )
            self.platform.authorize(
                self.principal,
                permission,
                agency_id=approval.agency_id,
                agency_bound=approval.operation != "publish-crls",
            )
            if approval.status != "pending":
                from govsign.errors import ConflictError

                raise ConflictError(f"The approval request '{approval_id}' was decided already ({approval.status}).")
            if approval.requested_by == self.principal.client_id:
                raise ForbiddenError("Dual control: a different officer must approve or reject this request.")
            now = self.runtime.clock.now()
            if not approve:
                ports.approvals.decide(
                    approval_id, status="rejected", decided_by=self.principal.client_id, decided_at=now, result=None
                )
                self.platform._audit(
                    ports,
                    "approval.reject",
                    self.principal.actor,
                    "approval",
                    approval_id,
                    {"operation": approval.operation},
                    self.context,
                )
                updated = ports.approvals.get(approval_id)
                assert updated is not None
                return 200, approval_resource(updated)
            status, result = self._run_approved(authority, approval)
            ports.approvals.decide(
                approval_id, status="executed", decided_by=self.principal.client_id, decided_at=now, result=result
            )
            self.platform._audit(
                ports,
                "approval.approve",
                self.principal.actor,
                "approval",
                approval_id,
                {"operation": approval.operation},
                self.context,
            )
            return status, result

        status, resource = self._execute(operation, "approval.decide", approval_id)
        if resource.get("publish_crls"):
            published = self.runtime.publish_crls(force=True)
            return 200, {
                "items": [
                    {
                        "ca_id": ca_id,
                        "crl_number": r.full.number,
                        "delta_crl_number": r.delta.number,
                        "entries": r.full.entry_count,
                    }
                    for ca_id, r in published.items()
                ]
            }
        return status, resource

    def request_crl_publication(self) -> tuple[int, dict[str, Any]]:
        """A CA-level action: publish fresh CRLs now (dual control by default)."""
        self.platform.authorize(self.principal, Permission.CA_ADMINISTER, agency_id=None, agency_bound=False)
        if self.platform.needs_approval("ca-administration"):

            def operation(authority: CertificateAuthority, ports: SQLPorts) -> tuple[int, dict[str, Any]]:
                approval = self.platform.create_approval(
                    ports,
                    operation="publish-crls",
                    target="all",
                    parameters={},
                    agency_id=None,
                    principal=self.principal,
                    context=self.context,
                )
                return APPROVAL_STATUS, approval_resource(approval)

            status, resource = self._execute(operation, "crl.publish", "all")
            return status, resource
        published = self.runtime.publish_crls(force=True)
        return 200, {
            "items": [
                {
                    "ca_id": ca_id,
                    "crl_number": r.full.number,
                    "delta_crl_number": r.delta.number,
                    "entries": r.full.entry_count,
                }
                for ca_id, r in published.items()
            ]
        }

    def _run_approved(self, authority: CertificateAuthority, approval: ApprovalRecord) -> tuple[int, dict[str, Any]]:
        if approval.operation == "enrol":
            body = schemas.EnrolmentRequest(**approval.parameters)
            issued = authority.issue(
                IssuanceRequest(
                    profile=body.profile,
                    subject=body.subject,
                    email=body.email,
                    csr=body.csr.encode("utf-8") if body.csr else None,
                    generate_key=KeyAlgorithm(body.key_algorithm) if body.key_algorithm else None,
                    validity_days=body.validity_days,
                    agency_id=approval.agency_id,
                    actor=self.principal.actor,
                )
            )
            return 201, issued_resource(authority, issued)
        if approval.operation == "publish-crls":
            return 200, {"publish_crls": True}
        return self._perform(authority, approval.operation, approval.target, approval.parameters)
