"""Prepare, lint, issue once: pure tests with an in-memory key store holding software keys."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from govsign.errors import InternalError, LintFailedError
from govsign.keystore.api import KeyAlgorithm
from govsign.keystore.cryptography_keys import hsm_private_key
from govsign.pki.issuer import (
    CertificateKind,
    CertificateSpec,
    IssuanceToken,
    IssuerContext,
    PublicURLs,
    prepare,
    random_serial,
)
from govsign.pki.lint import PKILintCertificateLinter
from govsign.pki.names import parse_subject
from govsign.pki.profiles import DEVICE, INDIVIDUAL, ORGANIZATION, CertificateProfile, add_years
from helpers.keys import SoftwareKeyStore

NOW = dt.datetime(2026, 1, 15, 3, 0, 0, tzinfo=dt.UTC)
URLS = PublicURLs(base_url="http://pki.example.gov.vn")
POLICY = "1.3.6.1.4.1.32473.1.1"


@dataclass
class CA:
    store: SoftwareKeyStore
    context: IssuerContext


def _make_ca(store: SoftwareKeyStore, algorithm: KeyAlgorithm) -> CA:
    """A root CA built with the same prepare/lint/issue path; its certificate is then the issuer's."""
    ref = store.generate_key_pair(label="ca", algorithm=algorithm)
    name = parse_subject("CN=Test Root CA,O=govsign,C=VN")
    context = IssuerContext(
        ca_id="root-t", name=name, key=ref, public_key=store.public_key(ref), certificate=None, parent_ca_id=None
    )
    spec = CertificateSpec(
        kind=CertificateKind.ROOT_CA,
        profile=None,
        subject=name,
        public_key=context.public_key,
        serial=random_serial(),
        not_before=NOW,
        not_after=add_years(NOW, 3),
        policy_oid=POLICY,
        urls=URLS,
    )
    token = prepare(spec, context)
    token.lint(None)
    certificate = token.issue(store)
    return CA(store=store, context=replace(context, certificate=certificate))


@pytest.fixture(scope="module", params=[KeyAlgorithm.RSA2048, KeyAlgorithm.EC_P256], ids=lambda a: a.value)
def ca(request: pytest.FixtureRequest) -> CA:
    return _make_ca(SoftwareKeyStore(), request.param)


@pytest.fixture
def store(ca: CA) -> SoftwareKeyStore:
    ca.store.sign_calls = 0
    ca.store.corrupt_signatures = False
    return ca.store


SUBSCRIBER_KEY = ec.generate_private_key(ec.SECP256R1())


def _spec(profile: CertificateProfile = INDIVIDUAL, **changes: object) -> CertificateSpec:
    spec = CertificateSpec(
        kind=CertificateKind.END_ENTITY,
        profile=profile,
        subject=parse_subject("UID=CCCD:077190000123,CN=Nguyễn Thị Yến,O=Tỉnh ủy,C=VN"),
        public_key=SUBSCRIBER_KEY.public_key(),
        serial=random_serial(),
        not_before=NOW,
        not_after=NOW + dt.timedelta(days=730),
        email="yen@example.gov.vn",
        policy_oid=POLICY,
        urls=URLS,
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


@dataclass
class RecordingLinter:
    findings: list[object]
    seen: list[bytes]

    def lint(self, certificate_der: bytes) -> list[object]:
        self.seen.append(certificate_der)
        return self.findings


@dataclass(frozen=True)
class Finding:
    severity: str
    code: str
    message: str | None


# -- the happy path ---------------------------------------------------------------------------


def test_issue_signs_exactly_the_linted_tbs_once(ca: CA, store: SoftwareKeyStore) -> None:
    linter = RecordingLinter(findings=[], seen=[])
    token = prepare(_spec(), ca.context)
    assert store.sign_calls == 0  # prepare touches no key
    token.lint(linter)
    assert linter.seen == [token.preview.public_bytes(serialization.Encoding.DER)]
    certificate = token.issue(store)
    assert store.sign_calls == 1
    assert certificate.tbs_certificate_bytes == token.tbs_der
    certificate.verify_directly_issued_by(ca.context.certificate)  # type: ignore[arg-type]


@pytest.mark.parametrize("profile", [INDIVIDUAL, ORGANIZATION, DEVICE], ids=lambda p: p.name)
def test_subscriber_certificates_pass_pkilint(ca: CA, store: SoftwareKeyStore, profile: CertificateProfile) -> None:
    token = prepare(_spec(profile), ca.context)
    token.lint(_pkilint())
    certificate = token.issue(store)
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert (ExtendedKeyUsageOID.CLIENT_AUTH in eku) is (profile is DEVICE)


@functools.cache
def _pkilint() -> PKILintCertificateLinter:
    return PKILintCertificateLinter()


# -- refusals ---------------------------------------------------------------------------------


def test_issue_before_lint_raises_and_signs_nothing(ca: CA, store: SoftwareKeyStore) -> None:
    token = prepare(_spec(), ca.context)
    with pytest.raises(InternalError, match="linted"):
        token.issue(store)
    assert store.sign_calls == 0


def test_a_token_issues_only_once(ca: CA, store: SoftwareKeyStore) -> None:
    token = prepare(_spec(), ca.context)
    token.lint(None)
    token.issue(store)
    with pytest.raises(InternalError, match="used already"):
        token.issue(store)
    assert store.sign_calls == 1


def _assert_lint_fails(token: IssuanceToken, linter: object, fragment: str, store: SoftwareKeyStore) -> None:
    with pytest.raises(LintFailedError) as caught:
        token.lint(linter)  # type: ignore[arg-type]
    assert any(fragment in finding for finding in caught.value.findings), caught.value.findings
    assert "not issued" in caught.value.message
    with pytest.raises(InternalError):
        token.issue(store)  # a failed lint leaves the token unusable
    assert store.sign_calls == 0


def test_validity_past_the_issuers_not_after_fails_lint(ca: CA, store: SoftwareKeyStore) -> None:
    issuer_end = ca.context.certificate.not_valid_after_utc  # type: ignore[union-attr]
    token = prepare(_spec(not_after=issuer_end + dt.timedelta(seconds=1)), ca.context)
    _assert_lint_fails(token, None, "ends after the issuing CA", store)


def test_validity_before_the_issuers_not_before_fails_lint(ca: CA, store: SoftwareKeyStore) -> None:
    token = prepare(_spec(not_before=NOW - dt.timedelta(days=1)), ca.context)
    _assert_lint_fails(token, None, "starts before the issuing CA", store)


def test_short_serial_fails_lint(ca: CA, store: SoftwareKeyStore) -> None:
    token = prepare(_spec(serial=0x1234_5678), ca.context)
    _assert_lint_fails(token, None, "fewer than 64 bits", store)


def test_validity_over_the_profile_limit_fails_lint(ca: CA, store: SoftwareKeyStore) -> None:
    long_lived = replace(INDIVIDUAL, max_validity_years=1)
    token = prepare(_spec(long_lived, not_after=NOW + dt.timedelta(days=400)), ca.context)
    _assert_lint_fails(token, None, "exceeds 1 years", store)


def test_a_linter_finding_stops_the_issuance(ca: CA, store: SoftwareKeyStore) -> None:
    linter = RecordingLinter(findings=[Finding("ERROR", "pkix.test_finding", "something is wrong")], seen=[])
    token = prepare(_spec(), ca.context)
    _assert_lint_fails(token, linter, "ERROR pkix.test_finding: something is wrong", store)


def test_a_token_changed_after_lint_is_not_signed(ca: CA, store: SoftwareKeyStore) -> None:
    token = prepare(_spec(), ca.context)
    token.lint(None)
    token.spec = replace(token.spec, subject=parse_subject("CN=Someone Else,C=VN"))
    with pytest.raises(InternalError, match="other than what was linted"):
        token.issue(store)
    assert store.sign_calls == 0


def test_a_signature_that_does_not_verify_is_caught(ca: CA, store: SoftwareKeyStore) -> None:
    store.corrupt_signatures = True
    token = prepare(_spec(), ca.context)
    token.lint(None)
    with pytest.raises(InternalError, match="does not verify"):
        token.issue(store)


# -- the HSM-bound key --------------------------------------------------------------------------


def _sign_with(key: object, message: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key.sign(message, ec.ECDSA(hashes.SHA256()))


def test_bound_key_refuses_other_messages_and_signs_once(ca: CA, store: SoftwareKeyStore) -> None:
    key = hsm_private_key(store, ca.context.key, expected_message=b"the linted TBS")
    with pytest.raises(InternalError, match="other than what was linted"):
        _sign_with(key, b"something else")
    assert store.sign_calls == 0
    signature = _sign_with(key, b"the linted TBS")
    assert store.sign_calls == 1
    public = ca.context.public_key
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, b"the linted TBS", padding.PKCS1v15(), hashes.SHA256())
    else:
        public.verify(signature, b"the linted TBS", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InternalError, match="used already"):
        _sign_with(key, b"the linted TBS")
    assert store.sign_calls == 1


def test_hsm_key_never_exports_private_material(ca: CA, store: SoftwareKeyStore) -> None:
    key = hsm_private_key(store, ca.context.key)
    with pytest.raises(InternalError):
        key.private_numbers()
    with pytest.raises(InternalError):
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


# -- serials ----------------------------------------------------------------------------------


def test_random_serials_are_positive_with_at_least_64_bits_and_distinct() -> None:
    serials = [random_serial() for _ in range(500)]
    assert all(serial > 0 for serial in serials)
    assert min(serial.bit_length() for serial in serials) >= 64
    assert max(serial.bit_length() for serial in serials) <= 159  # at most 20 octets in DER
    assert len(set(serials)) == len(serials)


def test_issued_certificate_carries_the_spec_serial(ca: CA, store: SoftwareKeyStore) -> None:
    spec = _spec()
    token = prepare(spec, ca.context)
    token.lint(None)
    certificate = token.issue(store)
    assert certificate.serial_number == spec.serial
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Nguyễn Thị Yến"
