"""Revocation data must be fresh (issue 11): an OCSP response or CRL counts when it was issued
after the best-signature-time, or when its nextUpdate has not passed at the validation time;
stale data counts as unavailable, so the signature is INDETERMINATE and the report says so.

A foreign PKI (software keys): the signer's CA, whose CRLs and OCSP responses the tests build
with chosen thisUpdate/nextUpdate and embed in the document security store, and a separate
time-stamping authority whose own status is always current, so that only the signer's data
varies. The signature time-stamp is dated ten days before the validation time (no waiting)."""

from __future__ import annotations

import datetime as dt
import http.server
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.revinfo.archival import RevinfoUsabilityRating

from govsign.validation.evidence import Freshness, freshness
from govsign.validation.pdf import validate_pdf
from govsign.validation.policy import ValidationPolicy
from govsign.validation.report import Conclusion, Indication, SignatureReport, conclude
from helpers.pdf import blank_pdf

DER = serialization.Encoding.DER
#: The validation time: now (pyHanko's proof-of-existence bookkeeping runs on the wall clock).
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
#: What the signature time-stamp says: the best-signature-time.
SIGNED = NOW - dt.timedelta(days=10)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Cục Chứng thực (thử)"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        ]
    )


@dataclass
class CA:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def root(cls, common_name: str) -> CA:
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(common_name)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(SIGNED - 30 * DAY)
            .not_valid_after(NOW + 365 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate=certificate, key=key)

    def issue(
        self,
        common_name: str,
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
        usage: x509.ObjectIdentifier,
        *,
        ocsp_url: str | None = None,
        crl_url: str | None = None,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(SIGNED - 20 * DAY)
            .not_valid_after(NOW + 300 * DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=usage == ExtendedKeyUsageOID.TIME_STAMPING)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if ocsp_url is not None:
            access = x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
            )
            builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
        if crl_url is not None:
            point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
            builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def crl(self, this_update: dt.datetime, next_update: dt.datetime) -> bytes:
        """A CRL revoking nothing."""
        return (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(this_update)
            .next_update(next_update)
            .add_extension(x509.CRLNumber(int(this_update.timestamp())), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
            .public_bytes(DER)
        )

    def ocsp(self, certificate: x509.Certificate, this_update: dt.datetime, next_update: dt.datetime) -> bytes:
        """A good OCSP answer for ``certificate``, signed by the CA itself."""
        return (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=certificate,
                issuer=self.certificate,
                algorithm=hashes.SHA256(),
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=this_update,
                next_update=next_update,
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.certificate)
            .sign(self.key, hashes.SHA256())
            .public_bytes(DER)
        )


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(DER))


def _pkcs8(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(
        key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@dataclass
class World:
    signer_ca: CA
    tsa_ca: CA
    tsa: x509.Certificate
    tsa_key: rsa.RSAPrivateKey

    def signer(self, **urls: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        return self.signer_ca.issue(
            "Nguyễn Văn Ký", key.public_key(), ExtendedKeyUsageOID.EMAIL_PROTECTION, **urls
        ), key

    def timestamper(self, at: dt.datetime) -> DummyTimeStamper:
        return DummyTimeStamper(tsa_cert=_asn1(self.tsa), tsa_key=_pkcs8(self.tsa_key), fixed_dt=at)

    def sign(
        self,
        signer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
        *,
        crls: tuple[bytes, ...] = (),
        ocsps: tuple[bytes, ...] = (),
        document_timestamp: dt.datetime | None = None,
    ) -> bytes:
        """A PAdES signature time-stamped at SIGNED, then a DSS with the TSA's current CRL and the
        signer's data given, then (for B-LTA) a document time-stamp."""
        certificate, key = signer
        out = BytesIO()
        signers.sign_pdf(
            IncrementalPdfFileWriter(BytesIO(blank_pdf())),
            signers.PdfSignatureMetadata(field_name="Signature", subfilter=SigSeedSubFilter.PADES),
            signer=signers.SimpleSigner(
                signing_cert=_asn1(certificate),
                signing_key=_pkcs8(key),
                cert_registry=SimpleCertificateStore.from_certs([_asn1(self.signer_ca.certificate)]),
            ),
            timestamper=self.timestamper(SIGNED),
            output=out,
        )
        tsa_crl = self.tsa_ca.crl(SIGNED - HOUR, NOW + DAY)
        DocumentSecurityStore.add_dss(
            out,
            sig_contents=None,
            certs=[_asn1(self.tsa), _asn1(self.tsa_ca.certificate), _asn1(self.signer_ca.certificate)],
            crls=[asn1_crl.CertificateList.load(der) for der in (tsa_crl, *crls)],
            ocsps=[asn1_ocsp.OCSPResponse.load(der) for der in ocsps],
        )
        if document_timestamp is not None:
            PdfTimeStamper(self.timestamper(document_timestamp)).timestamp_pdf(
                IncrementalPdfFileWriter(out), md_algorithm="sha256", in_place=True
            )
        return out.getvalue()

    def policy(self, *, fetch: bool = False) -> ValidationPolicy:
        anchors = (self.signer_ca.certificate.public_bytes(DER), self.tsa_ca.certificate.public_bytes(DER))
        return ValidationPolicy(trust_anchors=anchors, fetch_revocation=fetch, fetch_timeout_seconds=2.0)


@pytest.fixture(scope="module")
def world() -> World:
    tsa_ca = CA.root("TSA Root CA (thử)")
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # pyHanko's dummy TSA signs RSA only
    tsa = tsa_ca.issue("Máy chủ cấp dấu thời gian", tsa_key.public_key(), ExtendedKeyUsageOID.TIME_STAMPING)
    return World(signer_ca=CA.root("Signer Root CA (thử)"), tsa_ca=tsa_ca, tsa=tsa, tsa_key=tsa_key)


@pytest.fixture(autouse=True)
def _quiet_engine() -> Iterator[None]:
    """pyHanko logs every failed path validation with its traceback; the tests look at reports."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def _verify(world: World, pdf: bytes, *, fetch: bool = False) -> SignatureReport:
    result = validate_pdf(BytesIO(pdf), world.policy(fetch=fetch), now=NOW)
    assert len(result.signatures) == 1
    return result.signatures[0]


def _data(world: World, kind: str, signer: x509.Certificate, this_update: dt.datetime, next_update: dt.datetime):  # type: ignore[no-untyped-def]
    if kind == "crl":
        return {"crls": (world.signer_ca.crl(this_update, next_update),)}
    return {"ocsps": (world.signer_ca.ocsp(signer, this_update, next_update),)}


KINDS = pytest.mark.parametrize("kind", ["crl", "ocsp"])


@KINDS
def test_data_issued_before_the_signature_and_past_its_next_update_is_unavailable(world: World, kind: str) -> None:
    signer = world.signer(ocsp_url="http://127.0.0.1:9/ocsp")
    pdf = world.sign(signer, **_data(world, kind, signer[0], SIGNED - HOUR, SIGNED + DAY))
    report = _verify(world, pdf)
    assert (report.indication, report.sub_indication) == (Indication.INDETERMINATE, "TRY_LATER"), report.messages
    assert report.best_signature_time == SIGNED  # the time-stamp itself validated: its TSA's data is current
    assert report.revocation[0].status == "unavailable" and report.revocation[0].source is None
    codes = [m.code for m in report.messages]
    assert "signature.revocation-unavailable" in codes and "revocation.stale" in codes
    assert conclude([report], []) is Conclusion.INDETERMINATE


@KINDS
def test_data_issued_after_the_signature_is_used_though_past_its_next_update(world: World, kind: str) -> None:
    signer = world.signer(ocsp_url="http://127.0.0.1:9/ocsp")
    pdf = world.sign(signer, **_data(world, kind, signer[0], SIGNED + HOUR, SIGNED + DAY))
    report = _verify(world, pdf)
    assert (report.indication, report.sub_indication) == (Indication.TOTAL_PASSED, None), report.messages
    assert report.level == "PAdES-BASELINE-LT"
    assert report.revocation[0].status == "good"
    assert report.revocation[0].source == f"embedded-{kind}"
    assert report.revocation[0].produced_at is not None and report.revocation[0].produced_at >= SIGNED


@KINDS
def test_data_issued_before_the_signature_is_used_while_current(world: World, kind: str) -> None:
    signer = world.signer(ocsp_url="http://127.0.0.1:9/ocsp")
    pdf = world.sign(signer, **_data(world, kind, signer[0], SIGNED - HOUR, NOW + DAY))
    report = _verify(world, pdf)
    assert (report.indication, report.sub_indication) == (Indication.TOTAL_PASSED, None), report.messages
    assert (report.revocation[0].status, report.revocation[0].source) == ("good", f"embedded-{kind}")


def test_stale_data_stays_unavailable_in_long_term_validation(world: World) -> None:
    """With a document time-stamp, pyHanko's past validation slides back to the CRL's nextUpdate
    and would accept a CRL issued an hour before the signature (a revocation in that hour would
    not be on it); the rule does not."""
    signer = world.signer()
    pdf = world.sign(
        signer, crls=(world.signer_ca.crl(SIGNED - HOUR, SIGNED + DAY),), document_timestamp=SIGNED + 2 * HOUR
    )
    result = validate_pdf(BytesIO(pdf), world.policy(), now=NOW)
    report = result.signatures[0]
    assert [ts.indication for ts in result.timestamps] == [Indication.TOTAL_PASSED]
    assert (report.indication, report.sub_indication) == (Indication.INDETERMINATE, "TRY_LATER"), report.messages
    assert report.revocation[0].status == "unavailable"

    fresh = world.sign(
        signer, crls=(world.signer_ca.crl(SIGNED + HOUR, SIGNED + DAY),), document_timestamp=SIGNED + 2 * HOUR
    )
    passed = validate_pdf(BytesIO(fresh), world.policy(), now=NOW).signatures[0]
    assert (passed.indication, passed.level) == (Indication.TOTAL_PASSED, "PAdES-BASELINE-LTA"), passed.messages


class _CRLServer(http.server.ThreadingHTTPServer):
    crl: bytes = b""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.crl  # type: ignore[attr-defined]
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
    server.server_close()


def test_stale_embedded_data_does_not_stop_fetching_a_fresh_crl(world: World, crl_server: _CRLServer) -> None:
    signer = world.signer(crl_url=f"http://127.0.0.1:{crl_server.server_address[1]}/signer.crl")
    crl_server.crl = world.signer_ca.crl(NOW - HOUR, NOW + DAY)
    pdf = world.sign(signer, crls=(world.signer_ca.crl(SIGNED - HOUR, SIGNED + DAY),))
    report = _verify(world, pdf, fetch=True)
    assert (report.indication, report.sub_indication) == (Indication.TOTAL_PASSED, None), report.messages
    assert (report.revocation[0].status, report.revocation[0].source) == ("good", "fetched-crl")


def test_the_rule_itself() -> None:
    at = Freshness(validation_time=NOW, best_signature_time=SIGNED, tolerance=dt.timedelta(seconds=1))

    def rating(this_update: dt.datetime, next_update: dt.datetime | None) -> RevinfoUsabilityRating:
        return freshness(this_update, next_update, at).rating

    ok, stale = RevinfoUsabilityRating.OK, RevinfoUsabilityRating.STALE
    assert rating(SIGNED, SIGNED + HOUR) is ok  # issued at the best-signature-time
    assert rating(SIGNED - dt.timedelta(seconds=1), SIGNED + HOUR) is ok  # within the clock tolerance
    assert rating(SIGNED - dt.timedelta(seconds=2), SIGNED + HOUR) is stale
    assert rating(SIGNED - DAY, NOW) is ok  # current at the validation time
    assert rating(SIGNED - DAY, NOW - dt.timedelta(seconds=2)) is stale
    assert rating(NOW - dt.timedelta(minutes=20), None) is ok  # no nextUpdate: current for 30 minutes
    assert rating(SIGNED - DAY, None) is stale
    assert rating(NOW + HOUR, NOW + DAY) is RevinfoUsabilityRating.TOO_NEW  # from the future: not evidence yet
    assert rating(SIGNED + HOUR, SIGNED) is RevinfoUsabilityRating.UNCLEAR  # nextUpdate before thisUpdate
    stale_until = freshness(SIGNED - DAY, SIGNED + DAY, at).last_usable_at
    assert stale_until == SIGNED + DAY + dt.timedelta(seconds=1)
