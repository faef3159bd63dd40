"""The certificate authority on a real SoftHSM2 token, on SQLite and PostgreSQL.

Every successful change writes exactly one audit event with it; every refusal changes nothing
(no certificate, no revocation, no key in the HSM) and is recorded as one failed audit event.
The hierarchy is shared by the session (``initialized_services``), so all checks are deltas.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from govsign.config import TEST_CERTIFICATE_POLICY_OID
from govsign.errors import (
    AlreadyInitializedError,
    AlreadyRevokedError,
    GovsignError,
    InvalidCSRError,
    InvalidInputError,
    InvalidStateTransitionError,
    InvalidSubjectError,
    NotFoundError,
    PolicyViolationError,
    UnknownProfileError,
)
from govsign.keystore.api import KeyAlgorithm
from govsign.pki.authority import IssuedCertificate
from govsign.pki.hierarchy import HierarchyResult, HierarchySpec
from govsign.pki.issuance import IssuanceRequest
from govsign.pki.profiles import DOCUMENT_SIGNING_OID
from govsign.pki.records import CertificateStatus, RevocationReason
from govsign.services.authorization import Requester
from govsign.services.bootstrap import Services
from govsign.services.uow import Work
from govsign.storage.models import AuditEventRow, CertificateRow, RevocationRow
from helpers.deployment import Deployment

BASE_URL = "http://pki.example.gov.vn"
SUBJECT = "UID=CCCD:077190000123,CN=Nguyễn Thị Yến,OU=Văn phòng,O=Tỉnh ủy Bà Rịa – Vũng Tàu,L=Bà Rịa – Vũng Tàu,C=VN"
ACTOR = "test:authority"
PROFILES = ["individual", "organization", "device"]

Operation = Callable[[Work], Any]


# -- helpers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    certificates: int
    revocations: int
    audit_events: int
    hsm_keys: frozenset[bytes]


def snapshot(services: Services) -> Snapshot:
    with services.database.unit_of_work() as ports:
        session = ports.session
        return Snapshot(
            certificates=int(session.scalar(select(func.count()).select_from(CertificateRow)) or 0),
            revocations=int(session.scalar(select(func.count()).select_from(RevocationRow)) or 0),
            audit_events=ports.audit.count(),
            hsm_keys=frozenset(key.ref.key_id for key in services.keystore.list_private_keys()),
        )


def last_audit_event(services: Services) -> AuditEventRow:
    with services.database.unit_of_work() as ports:
        row = ports.session.scalars(select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(1)).one()
        ports.session.expunge(row)
        return row


def assert_chain_intact(services: Services) -> None:
    verdict = services.audit_checkpoints.verify_events()
    assert verdict.intact, verdict.problem


def execute(services: Services, operation: Operation) -> Any:
    return services.uow.run(operation, action="test.operation", requester=Requester.operator(ACTOR), object_id="-")


def change(services: Services, operation: Operation, action: str) -> Any:
    """Run a change; check it wrote exactly one successful audit event named ``action``."""
    before = snapshot(services)
    result = execute(services, operation)
    after = snapshot(services)
    assert after.audit_events == before.audit_events + 1
    event = last_audit_event(services)
    assert (event.action, event.outcome, event.actor) == (action, "success", ACTOR)
    assert_chain_intact(services)
    return result


def refuse(
    services: Services, operation: Operation, error: type[GovsignError], match: str | None = None
) -> GovsignError:
    """Run an operation that must be refused; check that it changed nothing but the audit log."""
    before = snapshot(services)
    with pytest.raises(error, match=match) as caught:
        execute(services, operation)
    after = snapshot(services)
    assert after.certificates == before.certificates
    assert after.revocations == before.revocations
    assert after.hsm_keys == before.hsm_keys
    assert after.audit_events == before.audit_events + 1  # the refusal, in its own transaction
    event = last_audit_event(services)
    assert event.outcome == "failure"
    assert caught.value.kind.value in event.details_json
    assert_chain_intact(services)
    return caught.value


def make_csr(subject: x509.Name | None = None, key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = subject or x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, unicodedata.normalize("NFD", "Tỉnh ủy Bà Rịa – Vũng Tàu")),
            x509.NameAttribute(NameOID.COMMON_NAME, unicodedata.normalize("NFD", "Nguyễn Thị Yến")),
        ]
    )
    request = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM)


def issue(services: Services, **fields: Any) -> IssuedCertificate:
    fields.setdefault("profile", "individual")
    if "csr" not in fields and "key_algorithm" not in fields:
        fields["key_algorithm"] = KeyAlgorithm.EC_P256
    if "key_algorithm" in fields:
        fields.setdefault("subject", SUBJECT)
    request = IssuanceRequest(**fields)
    issued: IssuedCertificate = change(
        services, lambda work: work.issuance.issue(request, actor=ACTOR), "certificate.issue"
    )
    return issued


def issuing_certificate(hierarchy: HierarchyResult) -> x509.Certificate:
    return x509.load_der_x509_certificate(hierarchy.issuing.certificate_der)


def check_subscriber_certificate(
    certificate: x509.Certificate, profile: str, hierarchy: HierarchyResult, email: str | None
) -> None:
    issuer = issuing_certificate(hierarchy)
    root = x509.load_der_x509_certificate(hierarchy.root.certificate_der)
    certificate.verify_directly_issued_by(issuer)
    issuer.verify_directly_issued_by(root)
    assert certificate.issuer == issuer.subject
    ext = certificate.extensions

    basic = ext.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca

    key_usage = ext.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical
    assert key_usage.value.digital_signature and key_usage.value.content_commitment
    assert not (
        key_usage.value.key_encipherment
        or key_usage.value.data_encipherment
        or key_usage.value.key_agreement
        or key_usage.value.key_cert_sign
        or key_usage.value.crl_sign
    )

    expected_eku = [ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING_OID]
    if profile == "device":
        expected_eku.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == expected_eku

    access = {
        (d.access_method, d.access_location.value)
        for d in ext.get_extension_for_class(x509.AuthorityInformationAccess).value
    }
    assert access == {
        (AuthorityInformationAccessOID.OCSP, f"{BASE_URL}/pki/ocsp"),
        (AuthorityInformationAccessOID.CA_ISSUERS, f"{BASE_URL}/pki/ca/{hierarchy.issuing.id}.crt"),
    }
    (point,) = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [name.value for name in point.full_name or []] == [f"{BASE_URL}/pki/crl/{hierarchy.issuing.id}.crl"]

    issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == issuer_ski.digest
    assert ext.get_extension_for_class(x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        certificate.public_key()  # type: ignore[arg-type]
    )

    policies = ext.get_extension_for_class(x509.CertificatePolicies).value
    assert [policy.policy_identifier.dotted_string for policy in policies] == [TEST_CERTIFICATE_POLICY_OID]

    if email is None:
        with pytest.raises(x509.ExtensionNotFound):
            ext.get_extension_for_class(x509.SubjectAlternativeName)
    else:
        san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.RFC822Name) == [email]

    assert certificate.serial_number > 0 and certificate.serial_number.bit_length() >= 64
    for attribute in certificate.subject:
        assert unicodedata.is_normalized("NFC", str(attribute.value))


# -- issuance -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_issue_from_csr(
    initialized_services: Services, hierarchy: HierarchyResult, profile: str, initialized: Deployment
) -> None:
    issued = issue(initialized_services, profile=profile, csr=make_csr(), email="Yen.NT@BaRia-VungTau.GOV.vn")
    record = issued.record
    assert (record.profile, record.issuer_id, record.status) == (profile, hierarchy.issuing.id, CertificateStatus.VALID)
    assert record.key is None and issued.generated_key is None
    assert record.serial_hex == format(issued.certificate.serial_number, "x")
    assert record.email == "Yen.NT@baria-vungtau.gov.vn"  # domain lower-cased, local part kept
    assert record.subject == "CN=Nguyễn Thị Yến,O=Tỉnh ủy Bà Rịa – Vũng Tàu,C=VN"  # NFD in the CSR, NFC out
    check_subscriber_certificate(issued.certificate, profile, hierarchy, record.email)
    # the shared deployment's clock runs: issued within the last few seconds (whole seconds)
    assert dt.timedelta(0) <= initialized_services.clock.now() - record.not_before < dt.timedelta(seconds=5)
    days = (record.not_after - record.not_before).days
    assert days == initialized.settings.subscriber_default_validity_days


@pytest.mark.parametrize(
    ("profile", "algorithm"),
    [("individual", KeyAlgorithm.EC_P256), ("organization", KeyAlgorithm.EC_P256), ("device", KeyAlgorithm.RSA2048)],
)
def test_issue_with_key_generated_in_the_hsm(
    initialized_services: Services, hierarchy: HierarchyResult, profile: str, algorithm: KeyAlgorithm
) -> None:
    before = snapshot(initialized_services)
    issued = issue(initialized_services, profile=profile, key_algorithm=algorithm, validity_days=365)
    after = snapshot(initialized_services)
    key = issued.record.key
    assert key is not None and key == issued.generated_key
    assert key.algorithm is algorithm and issued.record.key_algorithm is algorithm
    assert after.hsm_keys - before.hsm_keys == {key.key_id}
    (info,) = [k for k in initialized_services.keystore.list_private_keys() if k.ref.key_id == key.key_id]
    assert info.sensitive and info.never_extractable and info.local and not info.extractable
    assert initialized_services.keystore.public_key(key) == issued.certificate.public_key()
    assert issued.record.subject == unicodedata.normalize("NFC", SUBJECT)
    assert (issued.record.not_after - issued.record.not_before).days == 365
    check_subscriber_certificate(issued.certificate, profile, hierarchy, None)


def test_issued_certificate_is_found_by_serial(initialized_services: Services) -> None:
    issued = issue(initialized_services)
    serial = issued.record.serial_hex
    spaced = ":".join(serial[i : i + 2] for i in range(0, len(serial), 2)).upper()
    view = execute(initialized_services, lambda work: work.lifecycle.show(spaced))
    assert view.record.id == issued.record.id
    assert view.status is CertificateStatus.VALID and view.revocation is None


# -- refused issuances ----------------------------------------------------------------------------------

REFUSED_ISSUANCES: list[Any] = [
    pytest.param({"validity_days": 5 * 366}, PolicyViolationError, "5-year limit", id="validity-over-5-years"),
    pytest.param({"validity_days": 3 * 365 + 10}, PolicyViolationError, "issuing CA", id="past-issuer-not-after"),
    pytest.param({"validity_days": 0}, InvalidInputError, "at least one day", id="validity-zero"),
    pytest.param({"profile": "ocsp-responder"}, UnknownProfileError, "individual", id="service-profile"),
    pytest.param({"profile": "citizen"}, UnknownProfileError, "citizen", id="unknown-profile"),
    pytest.param({"subject": "CN=John Doe,C=US"}, InvalidSubjectError, "VN", id="country-not-vn"),
    pytest.param({"subject": None}, InvalidInputError, "subject is required", id="generated-key-without-subject"),
    pytest.param({"email": "not an address"}, InvalidInputError, "e-mail", id="bad-email"),
    pytest.param({"issuer_id": "root-1"}, PolicyViolationError, "does not issue", id="root-issues-no-subscribers"),
    pytest.param({"issuer_id": "no-such-ca"}, NotFoundError, "no-such-ca", id="unknown-issuer"),
    pytest.param({"csr": b"garbage"}, InvalidInputError, "either", id="csr-and-generate-key"),
]


@pytest.mark.parametrize(("changes", "error", "match"), REFUSED_ISSUANCES)
def test_refused_issuance_changes_nothing(
    initialized_services: Services, changes: dict[str, Any], error: type[GovsignError], match: str
) -> None:
    fields: dict[str, Any] = {
        "profile": "individual",
        "subject": SUBJECT,
        "key_algorithm": KeyAlgorithm.EC_P256,
    }
    fields.update(changes)
    request = IssuanceRequest(**fields)
    refuse(initialized_services, lambda work: work.issuance.issue(request, actor=ACTOR), error, match)


@pytest.mark.parametrize(
    ("csr", "error"),
    [
        pytest.param(
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            InvalidCSRError,
            id="garbage-csr",
        ),
        pytest.param(
            make_csr(
                x509.Name(
                    [x509.NameAttribute(NameOID.COMMON_NAME, "A"), x509.NameAttribute(NameOID.COUNTRY_NAME, "US")]
                )
            ),
            InvalidSubjectError,
            id="csr-subject-not-vn",
        ),
    ],
)
def test_refused_csr_changes_nothing(initialized_services: Services, csr: bytes, error: type[GovsignError]) -> None:
    request = IssuanceRequest(profile="individual", csr=csr)
    refuse(initialized_services, lambda work: work.issuance.issue(request, actor=ACTOR), error)


def test_generated_key_is_destroyed_when_the_commit_fails(initialized_services: Services) -> None:
    """A unit of work undoes the HSM side effect of an issuance whose transaction does not commit."""
    request = IssuanceRequest(profile="individual", subject=SUBJECT, key_algorithm=KeyAlgorithm.EC_P256)

    def issue_then_break_the_commit(work: Work) -> IssuedCertificate:
        issued = work.issuance.issue(request, actor=ACTOR)
        record = issued.record
        duplicate = CertificateRow(  # same issuer and serial: the flush at commit fails
            issuer_id=record.issuer_id,
            serial_hex=record.serial_hex,
            subject=record.subject,
            profile=record.profile,
            email=None,
            not_before=record.not_before,
            not_after=record.not_after,
            status="valid",
            key_algorithm=record.key_algorithm.value,
            certificate_der=b"duplicate",
            fingerprint_sha256="0" * 64,
            spki_sha256="0" * 64,
            created_at=record.created_at,
        )
        work.ports.session.add(duplicate)  # not flushed until commit
        return issued

    before = snapshot(initialized_services)
    with pytest.raises(IntegrityError):
        execute(initialized_services, issue_then_break_the_commit)
    after = snapshot(initialized_services)
    assert (after.certificates, after.revocations, after.audit_events) == (
        before.certificates,
        before.revocations,
        before.audit_events,
    )
    assert after.hsm_keys == before.hsm_keys


# -- revocation, hold, release ----------------------------------------------------------------------------


def revoke(serial: str, reason: RevocationReason) -> Operation:
    return lambda work: work.lifecycle.revoke(serial, reason=reason, actor=ACTOR)


def test_revoke_and_double_revoke(initialized_services: Services) -> None:
    serial = issue(initialized_services).record.serial_hex
    before = snapshot(initialized_services)
    view = change(initialized_services, revoke(serial, RevocationReason.KEY_COMPROMISE), "certificate.revoke")
    assert view.status is CertificateStatus.REVOKED
    assert view.revocation is not None and view.revocation.reason is RevocationReason.KEY_COMPROMISE
    assert snapshot(initialized_services).revocations == before.revocations + 1
    shown = execute(initialized_services, lambda work: work.lifecycle.show(serial))
    assert shown.status is CertificateStatus.REVOKED
    assert dt.timedelta(0) <= initialized_services.clock.now() - shown.revocation.revoked_at < dt.timedelta(seconds=5)

    refuse(initialized_services, revoke(serial, RevocationReason.SUPERSEDED), AlreadyRevokedError, "already revoked")
    refuse(initialized_services, revoke(serial, RevocationReason.CERTIFICATE_HOLD), AlreadyRevokedError)


def test_hold_release_and_revoke_from_hold(initialized_services: Services) -> None:
    serial = issue(initialized_services).record.serial_hex

    held = change(initialized_services, revoke(serial, RevocationReason.CERTIFICATE_HOLD), "certificate.hold")
    assert held.status is CertificateStatus.ON_HOLD
    refuse(
        initialized_services, revoke(serial, RevocationReason.CERTIFICATE_HOLD), InvalidStateTransitionError, "on hold"
    )

    released = change(
        initialized_services, lambda work: work.lifecycle.release(serial, actor=ACTOR), "certificate.release"
    )
    assert released.status is CertificateStatus.VALID
    assert execute(initialized_services, lambda work: work.lifecycle.show(serial)).status is CertificateStatus.VALID

    change(initialized_services, revoke(serial, RevocationReason.CERTIFICATE_HOLD), "certificate.hold")
    revoked = change(initialized_services, revoke(serial, RevocationReason.KEY_COMPROMISE), "certificate.revoke")
    assert revoked.status is CertificateStatus.REVOKED
    shown = execute(initialized_services, lambda work: work.lifecycle.show(serial))
    assert shown.status is CertificateStatus.REVOKED
    assert shown.revocation.reason is RevocationReason.KEY_COMPROMISE
    refuse(
        initialized_services,
        lambda work: work.lifecycle.release(serial, actor=ACTOR),
        InvalidStateTransitionError,
        "not on hold",
    )


def test_release_of_a_certificate_that_is_not_held_is_refused(initialized_services: Services) -> None:
    serial = issue(initialized_services).record.serial_hex
    refuse(
        initialized_services,
        lambda work: work.lifecycle.release(serial, actor=ACTOR),
        InvalidStateTransitionError,
        "not on hold",
    )


def test_revoking_an_unknown_serial_is_refused(initialized_services: Services) -> None:
    refuse(initialized_services, revoke("7" * 32, RevocationReason.UNSPECIFIED), NotFoundError)
    refuse(initialized_services, revoke("not-hex", RevocationReason.UNSPECIFIED), InvalidInputError)


def test_aa_compromise_is_refused_for_certificates(initialized_services: Services) -> None:
    serial = issue(initialized_services).record.serial_hex
    refuse(initialized_services, revoke(serial, RevocationReason.AA_COMPROMISE), InvalidInputError)


# -- renew and rekey -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["csr", "generated"])
def test_renew_keeps_the_key_with_a_new_serial(
    initialized_services: Services, hierarchy: HierarchyResult, source: str
) -> None:
    old = (
        issue(initialized_services, csr=make_csr(), email="yen@example.gov.vn")
        if source == "csr"
        else issue(initialized_services)
    )
    before = snapshot(initialized_services)
    renewed: IssuedCertificate = change(
        initialized_services,
        lambda work: work.issuance.renew(old.record.serial_hex, actor=ACTOR, validity_days=100),
        "certificate.renew",
    )
    assert snapshot(initialized_services).hsm_keys == before.hsm_keys  # no new key
    assert renewed.record.replaces_id == old.record.id
    assert renewed.record.serial_hex != old.record.serial_hex
    assert renewed.record.spki_sha256 == old.record.spki_sha256
    assert renewed.record.key == old.record.key
    assert renewed.certificate.subject == old.certificate.subject
    assert renewed.record.email == old.record.email
    assert (renewed.record.not_after - renewed.record.not_before).days == 100
    check_subscriber_certificate(renewed.certificate, "individual", hierarchy, old.record.email)


def test_renew_of_a_revoked_certificate_is_refused(initialized_services: Services) -> None:
    serial = issue(initialized_services).record.serial_hex
    change(initialized_services, revoke(serial, RevocationReason.SUPERSEDED), "certificate.revoke")
    refuse(initialized_services, lambda work: work.issuance.renew(serial, actor=ACTOR), InvalidStateTransitionError)


def test_rekey_with_a_key_generated_in_the_hsm(initialized_services: Services, hierarchy: HierarchyResult) -> None:
    old = issue(initialized_services)
    before = snapshot(initialized_services)
    rekeyed: IssuedCertificate = change(
        initialized_services,
        lambda work: work.issuance.rekey(old.record.serial_hex, actor=ACTOR, generate_key=KeyAlgorithm.EC_P256),
        "certificate.rekey",
    )
    assert rekeyed.generated_key is not None
    assert snapshot(initialized_services).hsm_keys - before.hsm_keys == {rekeyed.generated_key.key_id}
    assert rekeyed.record.spki_sha256 != old.record.spki_sha256
    assert rekeyed.record.replaces_id == old.record.id
    assert rekeyed.certificate.subject == old.certificate.subject
    check_subscriber_certificate(rekeyed.certificate, "individual", hierarchy, None)


def test_rekey_from_a_new_csr_and_refusal_of_the_same_key(initialized_services: Services) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    old = issue(initialized_services, profile="device", csr=make_csr(key=key))
    refuse(
        initialized_services,
        lambda work: work.issuance.rekey(old.record.serial_hex, actor=ACTOR, csr=make_csr(key=key)),
        InvalidInputError,
        "same as the old one",
    )
    rekeyed: IssuedCertificate = change(
        initialized_services,
        lambda work: work.issuance.rekey(old.record.serial_hex, actor=ACTOR, csr=make_csr()),
        "certificate.rekey",
    )
    assert rekeyed.record.profile == "device"
    assert rekeyed.record.spki_sha256 != old.record.spki_sha256
    assert rekeyed.record.replaces_id == old.record.id


def test_rekey_needs_exactly_one_key_source(initialized_services: Services) -> None:
    serial = issue(initialized_services).record.serial_hex
    refuse(initialized_services, lambda work: work.issuance.rekey(serial, actor=ACTOR), InvalidInputError, "either")
    refuse(
        initialized_services,
        lambda work: work.issuance.rekey(serial, actor=ACTOR, csr=make_csr(), generate_key=KeyAlgorithm.EC_P256),
        InvalidInputError,
        "either",
    )


def test_rekey_of_a_held_certificate_is_refused(initialized_services: Services) -> None:
    serial = issue(initialized_services).record.serial_hex
    change(initialized_services, revoke(serial, RevocationReason.CERTIFICATE_HOLD), "certificate.hold")
    refuse(
        initialized_services,
        lambda work: work.issuance.rekey(serial, actor=ACTOR, generate_key=KeyAlgorithm.EC_P256),
        InvalidStateTransitionError,
        "on hold",
    )


# -- the hierarchy -----------------------------------------------------------------------------------------


def test_initialize_again_with_the_same_parameters_changes_nothing(
    initialized_services: Services, hierarchy: HierarchyResult, hierarchy_spec: HierarchySpec
) -> None:
    before = snapshot(initialized_services)
    again: HierarchyResult = execute(
        initialized_services, lambda work: work.hierarchy.initialize(hierarchy_spec, actor=ACTOR)
    )
    assert not again.created
    assert (again.root, again.issuing) == (hierarchy.root, hierarchy.issuing)
    assert snapshot(initialized_services) == before


def test_initialize_with_other_parameters_is_refused(
    initialized_services: Services, hierarchy_spec: HierarchySpec
) -> None:
    other = replace(hierarchy_spec, root_algorithm=KeyAlgorithm.RSA2048)
    refuse(
        initialized_services,
        lambda work: work.hierarchy.initialize(other, actor=ACTOR),
        AlreadyInitializedError,
        "root key",
    )


def test_hierarchy_keys_and_certificates(initialized_services: Services, hierarchy: HierarchyResult) -> None:
    root = x509.load_der_x509_certificate(hierarchy.root.certificate_der)
    issuer = issuing_certificate(hierarchy)
    root.verify_directly_issued_by(root)
    issuer.verify_directly_issued_by(root)
    assert isinstance(issuer.public_key(), rsa.RSAPublicKey)  # RSA signing paths are exercised
    assert issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert issuer.not_valid_after_utc <= root.not_valid_after_utc
    keys = {key.ref.key_id: key for key in initialized_services.keystore.list_private_keys()}
    for ca in (hierarchy.root, hierarchy.issuing):
        info = keys[ca.key.key_id]
        assert info.sensitive and info.never_extractable and info.local and not info.extractable
        assert (
            initialized_services.keystore.public_key(ca.key)
            == x509.load_der_x509_certificate(ca.certificate_der).public_key()
        )


def test_revoke_with_an_invalidity_date(initialized_services: Services) -> None:
    issued = issue(initialized_services).record
    serial = issued.serial_hex
    vietnam = dt.timezone(dt.timedelta(hours=7))
    invalid_since = issued.not_before.astimezone(vietnam)
    view = change(
        initialized_services,
        lambda work: work.lifecycle.revoke(
            serial, reason=RevocationReason.KEY_COMPROMISE, actor=ACTOR, invalidity_date=invalid_since
        ),
        "certificate.revoke",
    )
    assert view.revocation is not None and view.revocation.invalidity_date == invalid_since
    shown = execute(initialized_services, lambda work: work.lifecycle.show(serial))
    assert shown.revocation.invalidity_date == invalid_since
    assert shown.revocation.invalidity_date.utcoffset() == dt.timedelta(0)


def test_invalidity_date_in_the_future_or_naive_is_refused(initialized_services: Services) -> None:
    serial = issue(initialized_services).record.serial_hex
    later = initialized_services.clock.now() + dt.timedelta(hours=1)
    refuse(
        initialized_services,
        lambda work: work.lifecycle.revoke(
            serial, reason=RevocationReason.KEY_COMPROMISE, actor=ACTOR, invalidity_date=later
        ),
        InvalidInputError,
        "future",
    )
    naive = (initialized_services.clock.now() - dt.timedelta(days=1)).replace(tzinfo=None)
    refuse(
        initialized_services,
        lambda work: work.lifecycle.revoke(
            serial, reason=RevocationReason.KEY_COMPROMISE, actor=ACTOR, invalidity_date=naive
        ),
        InvalidInputError,
        "time zone",
    )


def test_invalidity_date_before_the_certificate_was_issued_is_refused(initialized_services: Services) -> None:
    """The fault campaign's ``invalidity_date: 0`` was written into the CRL as 1970-01-01."""
    issued = issue(initialized_services).record
    for before in (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), issued.not_before - dt.timedelta(seconds=1)):
        refuse(
            initialized_services,
            lambda work, before=before: work.lifecycle.revoke(
                issued.serial_hex, reason=RevocationReason.KEY_COMPROMISE, actor=ACTOR, invalidity_date=before
            ),
            InvalidInputError,
            "before the certificate was issued",
        )
    shown = execute(initialized_services, lambda work: work.lifecycle.show(issued.serial_hex))
    assert shown.status.value == "valid" and shown.revocation is None
