"""Tests of govsign.pki.lint, the in-process pkilint wrapper."""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from govsign.pki.lint import (
    UNDECODABLE_DOCUMENT_CODE,
    LintFinding,
    PKILintCertificateLinter,
    PKILintCRLLinter,
    PKILintOCSPResponseLinter,
    format_findings,
)

NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
CRL_URL = "http://pki.example.gov.vn/crl/govsign-test-ca.crl"
CA_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ban Cơ yếu Chính phủ"),
        x509.NameAttribute(NameOID.COMMON_NAME, "GovSign Test CA"),
    ]
)
LEAF_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bộ Thử nghiệm"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Nguyễn Văn A"),
    ]
)


def _key_usage(**bits: bool) -> x509.KeyUsage:
    values = {
        "digital_signature": False,
        "content_commitment": False,
        "key_encipherment": False,
        "data_encipherment": False,
        "key_agreement": False,
        "key_cert_sign": False,
        "crl_sign": False,
        "encipher_only": False,
        "decipher_only": False,
    }
    values.update(bits)
    return x509.KeyUsage(**values)


@dataclass(frozen=True)
class Chain:
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate


def _ca_builder(ca_key: ec.EllipticCurvePrivateKey, *, key_usage: bool = True) -> x509.CertificateBuilder:
    builder = (
        x509.CertificateBuilder()
        .subject_name(CA_NAME)
        .issuer_name(CA_NAME)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
    )
    if key_usage:
        builder = builder.add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
    return builder


def _leaf_builder(
    ca: x509.Certificate,
    leaf_key: ec.EllipticCurvePrivateKey,
    *,
    serial_number: int | None = None,
    subject_key_identifier: bool = True,
    key_usage_critical: bool = True,
) -> x509.CertificateBuilder:
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(LEAF_NAME)
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(serial_number or x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=730))
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .add_extension(
            _key_usage(digital_signature=True, content_commitment=True),
            critical=key_usage_critical,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(CRL_URL)],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
    )
    if subject_key_identifier:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
    return builder


@pytest.fixture(scope="module")
def chain() -> Chain:
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = _ca_builder(ca_key).sign(ca_key, hashes.SHA384())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _leaf_builder(ca, leaf_key).sign(ca_key, hashes.SHA384())
    return Chain(ca_key=ca_key, ca=ca, leaf_key=leaf_key, leaf=leaf)


@pytest.fixture(scope="module")
def linter() -> PKILintCertificateLinter:
    return PKILintCertificateLinter()


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _codes(findings: tuple[LintFinding, ...]) -> set[str]:
    return {finding.code for finding in findings}


def test_well_formed_leaf_and_ca_have_no_findings(chain: Chain, linter: PKILintCertificateLinter) -> None:
    assert linter.lint(_der(chain.leaf)) == ()
    assert linter.lint(_der(chain.ca)) == ()


def test_well_formed_leaf_has_only_info_findings_below_warning(chain: Chain) -> None:
    findings = PKILintCertificateLinter("INFO").lint(_der(chain.leaf))
    assert findings
    assert {finding.severity for finding in findings} == {"INFO"}


def test_ca_without_key_usage_is_an_error(chain: Chain, linter: PKILintCertificateLinter) -> None:
    ca = _ca_builder(chain.ca_key, key_usage=False).sign(chain.ca_key, hashes.SHA384())
    findings = linter.lint(_der(ca))
    assert _codes(findings) == {"pkix.ca_certificate_no_ku_extension"}
    (finding,) = findings
    assert finding.severity == "ERROR"
    assert finding.node_path == "certificate.tbsCertificate.extensions"


def test_leaf_without_subject_key_identifier_is_a_warning(chain: Chain, linter: PKILintCertificateLinter) -> None:
    leaf = _leaf_builder(chain.ca, chain.leaf_key, subject_key_identifier=False).sign(chain.ca_key, hashes.SHA384())
    findings = linter.lint(_der(leaf))
    assert findings == (
        LintFinding(
            severity="WARNING",
            code="pkix.certificate_skid_end_entity_missing",
            node_path="certificate",
            message=None,
        ),
    )
    # Below the threshold: an ERROR-level linter does not report the warning.
    assert PKILintCertificateLinter("error").lint(_der(leaf)) == ()


def test_non_critical_key_usage_is_a_warning(chain: Chain, linter: PKILintCertificateLinter) -> None:
    leaf = _leaf_builder(chain.ca, chain.leaf_key, key_usage_critical=False).sign(chain.ca_key, hashes.SHA384())
    assert _codes(linter.lint(_der(leaf))) == {"pkix.key_usage_extension_not_critical"}


def test_zero_and_negative_serial_numbers_are_errors(chain: Chain, linter: PKILintCertificateLinter) -> None:
    # cryptography refuses serials <= 0, so patch the one-octet serial 1 in the DER:
    # version [0] { INTEGER 2 } is followed by serialNumber INTEGER 1.
    leaf = _leaf_builder(chain.ca, chain.leaf_key, serial_number=1).sign(chain.ca_key, hashes.SHA384())
    prefix = b"\xa0\x03\x02\x01\x02\x02\x01"
    der = _der(leaf)
    assert der.count(prefix + b"\x01") == 1
    for serial_octet in (b"\x00", b"\xff"):
        findings = linter.lint(der.replace(prefix + b"\x01", prefix + serial_octet))
        assert _codes(findings) == {"pkix.certificate_serial_number_out_of_range"}
        assert findings[0].node_path == "certificate.tbsCertificate.serialNumber"


def test_self_issued_ca_without_aki_needs_a_valid_self_signature(
    chain: Chain, linter: PKILintCertificateLinter
) -> None:
    # pkilint excuses a missing AKI only if the self-issued CA certificate verifies with its own
    # key, so a root linted before the HSM signs it (placeholder signature) needs an AKI.
    placeholder_key = ec.generate_private_key(ec.SECP384R1())
    unsigned_root = _ca_builder(chain.ca_key).sign(placeholder_key, hashes.SHA384())
    assert _codes(linter.lint(_der(unsigned_root))) == {"pkix.authority_key_identifier_extension_absent"}
    with_aki = (
        _ca_builder(chain.ca_key)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(chain.ca_key.public_key()),
            critical=False,
        )
        .sign(placeholder_key, hashes.SHA384())
    )
    assert linter.lint(_der(with_aki)) == ()


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"this is not a certificate",
        b"\x30\x03\x02\x01\x01",
        b"\x30\x82\xff\xff\x00",
    ],
)
def test_undecodable_der_gives_one_fatal_finding(linter: PKILintCertificateLinter, garbage: bytes) -> None:
    (finding,) = linter.lint(garbage)
    assert finding.severity == "FATAL"
    assert finding.code == UNDECODABLE_DOCUMENT_CODE
    assert finding.node_path == "certificate"
    assert finding.message is not None
    assert finding.message.startswith("The certificate is not decodable DER")


def test_trailing_octets_and_pem_are_not_accepted(chain: Chain, linter: PKILintCertificateLinter) -> None:
    assert _codes(linter.lint(_der(chain.leaf) + b"\x00")) == {UNDECODABLE_DOCUMENT_CODE}
    pem = chain.leaf.public_bytes(serialization.Encoding.PEM)
    assert _codes(linter.lint(pem)) == {UNDECODABLE_DOCUMENT_CODE}


def test_unknown_severity_is_rejected() -> None:
    with pytest.raises(ValueError, match="Unknown pkilint severity"):
        PKILintCertificateLinter("SEVERE")


def test_minimum_severity_is_normalised() -> None:
    assert PKILintCertificateLinter(" notice ").minimum_severity == "NOTICE"


def test_format_findings() -> None:
    findings = [
        LintFinding(severity="WARNING", code="pkix.x", node_path="certificate", message=None),
        LintFinding(severity="ERROR", code="pkix.y", node_path="certificate.a.b", message="bad thing"),
    ]
    assert format_findings(findings) == (
        "WARNING pkix.x (certificate)",
        "ERROR pkix.y (certificate.a.b): bad thing",
    )
    assert format_findings([]) == ()


def test_lint_from_several_threads_builds_once_and_agrees(chain: Chain) -> None:
    linter = PKILintCertificateLinter()
    builds = 0
    original_build = linter._validator._build

    def counting_build() -> object:
        nonlocal builds
        builds += 1
        return original_build()

    linter._validator._build = counting_build
    bad_leaf = _leaf_builder(chain.ca, chain.leaf_key, subject_key_identifier=False).sign(chain.ca_key, hashes.SHA384())
    barrier = threading.Barrier(8)
    results: list[tuple[tuple[LintFinding, ...], tuple[LintFinding, ...]]] = []
    lock = threading.Lock()

    def work() -> None:
        barrier.wait()
        for _ in range(5):
            pair = (linter.lint(_der(chain.leaf)), linter.lint(_der(bad_leaf)))
            with lock:
                results.append(pair)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert builds == 1
    assert len(results) == 40
    assert {good for good, _ in results} == {()}
    assert {_codes(bad) == {"pkix.certificate_skid_end_entity_missing"} for _, bad in results} == {True}


def _crl(chain: Chain, *, crl_number: bool = True) -> x509.CertificateRevocationList:
    ca_ski = chain.ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    revoked = (
        x509.RevokedCertificateBuilder()
        .serial_number(x509.random_serial_number())
        .revocation_date(NOW - datetime.timedelta(hours=1))
        .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
        .build()
    )
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(chain.ca.subject)
        .last_update(NOW)
        .next_update(NOW + datetime.timedelta(days=7))
        .add_revoked_certificate(revoked)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )
    if crl_number:
        builder = builder.add_extension(x509.CRLNumber(42), critical=False)
    return builder.sign(chain.ca_key, hashes.SHA384())


def test_crl_linter_accepts_a_well_formed_crl_and_arl(chain: Chain) -> None:
    der = _crl(chain).public_bytes(serialization.Encoding.DER)
    linter = PKILintCRLLinter()
    assert linter.lint(der) == ()
    assert linter.lint(der, is_arl=True) == ()


def test_crl_linter_flags_a_missing_crl_number(chain: Chain) -> None:
    der = _crl(chain, crl_number=False).public_bytes(serialization.Encoding.DER)
    findings = PKILintCRLLinter().lint(der)
    assert _codes(findings) == {"pkix.crl_number_missing"}
    assert findings[0].severity == "ERROR"


def test_crl_linter_reports_undecodable_der(chain: Chain) -> None:
    (finding,) = PKILintCRLLinter().lint(_der(chain.leaf))
    assert finding.severity == "FATAL"
    assert finding.node_path == "certificateList"


def test_ocsp_linter_accepts_a_good_response(chain: Chain) -> None:
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=chain.leaf,
            issuer=chain.ca,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=NOW,
            next_update=NOW + datetime.timedelta(hours=12),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, chain.ca)
        .sign(chain.ca_key, hashes.SHA384())
    )
    der = response.public_bytes(serialization.Encoding.DER)
    assert PKILintOCSPResponseLinter().lint(der) == ()


def test_ocsp_linter_accepts_an_unsuccessful_response() -> None:
    response = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    der = response.public_bytes(serialization.Encoding.DER)
    assert PKILintOCSPResponseLinter().lint(der) == ()


def test_ocsp_linter_reports_undecodable_der() -> None:
    (finding,) = PKILintOCSPResponseLinter().lint(b"\x04\x00")
    assert finding.severity == "FATAL"
    assert finding.code == UNDECODABLE_DOCUMENT_CODE
    assert finding.node_path == "oCSPResponse"
