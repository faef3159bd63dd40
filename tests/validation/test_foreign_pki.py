"""Signatures from another PKI: untrusted until its root is configured as a trust anchor; then
valid when its CRL can be fetched, and INDETERMINATE / TRY_LATER (quickly, never a hang) when
its revocation URLs do not answer."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko_certvalidator.registry import SimpleCertificateStore

from govsign.validation.evidence import FETCHED_CRLS
from govsign.validation.pdf import validate_pdf
from govsign.validation.policy import ValidationPolicy
from govsign.validation.report import Indication
from helpers.pdf import blank_pdf

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ban Cơ yếu Chính phủ (thử)"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        ]
    )


@dataclass
class ForeignPKI:
    root: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    crl_der: bytes


def _pki(crl_url: str) -> ForeignPKI:
    """A root CA and a document-signing certificate with a CRL distribution point (software
    keys: a relying party's test PKI, not one of govsign's)."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("Foreign Root CA")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("Trần Văn Ngoại"))
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]
            ),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root_name)
        .last_update(NOW - dt.timedelta(minutes=5))
        .next_update(NOW + dt.timedelta(days=1))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    return ForeignPKI(root=root, leaf=leaf, leaf_key=leaf_key, crl_der=crl.public_bytes(serialization.Encoding.DER))


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _signed(pki: ForeignPKI) -> bytes:
    key = asn1_keys.PrivateKeyInfo.load(
        pki.leaf_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    signer = signers.SimpleSigner(
        signing_cert=_asn1(pki.leaf),
        signing_key=key,
        cert_registry=SimpleCertificateStore.from_certs([_asn1(pki.root)]),
    )
    out = BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(BytesIO(blank_pdf())),
        signers.PdfSignatureMetadata(field_name="Foreign", subfilter=SigSeedSubFilter.PADES),
        signer=signer,
        output=out,
    )
    return out.getvalue()


class _CRLServer(http.server.ThreadingHTTPServer):
    crl: bytes = b""
    requests: int = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.crl  # type: ignore[attr-defined]
        self.server.requests += 1  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/pkix-crl")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def crl_server() -> Iterator[_CRLServer]:
    server = _CRLServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def _policy(*roots: x509.Certificate, timeout: float = 30.0) -> ValidationPolicy:
    return ValidationPolicy(
        trust_anchors=tuple(r.public_bytes(serialization.Encoding.DER) for r in roots),
        fetch_timeout_seconds=2.0,
        timeout_seconds=timeout,
    )


def test_untrusted_then_trusted_with_a_reachable_crl(crl_server: _CRLServer) -> None:
    pki = _pki(f"http://127.0.0.1:{crl_server.server_address[1]}/root.crl")
    crl_server.crl = pki.crl_der
    signed = _signed(pki)
    stranger = ec.generate_private_key(ec.SECP256R1())
    other_root = (
        x509.CertificateBuilder()
        .subject_name(_name("Some Other Root"))
        .issuer_name(_name("Some Other Root"))
        .public_key(stranger.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(stranger, hashes.SHA256())
    )
    untrusted = validate_pdf(BytesIO(signed), _policy(other_root), now=NOW).signatures[0]
    assert (untrusted.indication, untrusted.sub_indication) == (Indication.INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND")

    trusted = validate_pdf(BytesIO(signed), _policy(other_root, pki.root), now=NOW).signatures[0]
    assert (trusted.indication, trusted.sub_indication) == (Indication.TOTAL_PASSED, None), trusted.messages
    assert trusted.signer is not None and trusted.signer.common_name == "Trần Văn Ngoại"


def test_unreachable_revocation_is_try_later_within_the_bound() -> None:
    pki = _pki("http://127.0.0.1:9/root.crl")  # discard port: nothing answers
    signed = _signed(pki)
    started = time.monotonic()
    report = validate_pdf(BytesIO(signed), _policy(pki.root, timeout=20.0), now=NOW).signatures[0]
    elapsed = time.monotonic() - started
    assert report.indication is Indication.INDETERMINATE
    assert report.sub_indication == "TRY_LATER", report.messages
    assert elapsed < 20.0, f"the verification took {elapsed:.1f} s, past its bound"


def test_an_anchor_with_the_issuers_name_but_another_key_is_no_chain_not_try_later() -> None:
    """Trying later can never help a chain whose signature does not verify: a root named like
    the signer's issuer but with another key gives no chain, not TRY_LATER."""
    signed = _signed(_pki("http://127.0.0.1:9/root.crl"))
    impostor = _pki("http://127.0.0.1:9/root.crl").root  # same name, other key
    report = validate_pdf(BytesIO(signed), _policy(impostor), now=NOW).signatures[0]
    assert report.indication is Indication.INDETERMINATE
    assert report.sub_indication in ("NO_CERTIFICATE_CHAIN_FOUND", "CERTIFICATE_CHAIN_GENERAL_FAILURE"), (
        report.sub_indication,
        report.messages,
    )


def test_a_fetched_crl_is_kept_until_its_next_update_and_a_dead_url_is_not_asked_again_at_once(
    crl_server: _CRLServer,
) -> None:
    pki = _pki(f"http://127.0.0.1:{crl_server.server_address[1]}/kept.crl")
    crl_server.crl = pki.crl_der
    signed = _signed(pki)
    for _ in range(3):
        report = validate_pdf(BytesIO(signed), _policy(pki.root), now=NOW).signatures[0]
        assert report.indication is Indication.TOTAL_PASSED, report.messages
    assert crl_server.requests == 1

    dead = _pki("http://127.0.0.1:9/dead.crl")
    signed = _signed(dead)
    first = validate_pdf(BytesIO(signed), _policy(dead.root), now=NOW).signatures[0]
    assert FETCHED_CRLS.get("http://127.0.0.1:9/dead.crl") is False  # the failure is kept for a while
    again = validate_pdf(BytesIO(signed), _policy(dead.root), now=NOW).signatures[0]
    assert first.sub_indication == again.sub_indication == "TRY_LATER"
