"""PAdES B-LT and B-LTA: revocation evidence from our own OCSP responder and CRL publisher goes
into the DSS, and the signatures validate from the embedded data alone (only the trust root
given, no fetching, revocation checking required)."""

from __future__ import annotations

import datetime as dt
import secrets
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko_certvalidator import ValidationContext

from govsign.errors import ErrorKind, InvalidInputError
from govsign.keystore.api import KeyAlgorithm, KeyStore
from govsign.pki.hierarchy import HierarchyResult
from govsign.pki.issuance import IssuanceRequest
from govsign.pki.records import RevocationReason
from govsign.services.authorization import Requester
from govsign.services.bootstrap import Services
from govsign.signing import SigningCredential
from govsign.signing.evidence import RevocationEvidence
from govsign.signing.pdf import LocalTimeStamper, PDFSignatureSpec, sign_pdf
from helpers.ca import issue
from helpers.credentials import ACTOR
from helpers.pdf import blank_pdf, openssl_verify_pdf, qpdf_check


def _embedded_only_context(pdf: bytes, hierarchy: HierarchyResult) -> ValidationContext:
    """Only the trust root from outside; every other certificate, OCSP response and CRL comes
    from the document's DSS. Revocation checking is required and nothing is fetched."""
    dss = DocumentSecurityStore.read_dss(PdfFileReader(BytesIO(pdf)))
    return dss.as_validation_context(
        {
            "trust_roots": [asn1_x509.Certificate.load(hierarchy.root.certificate_der)],
            "allow_fetching": False,
            "revocation_mode": "require",
        }
    )


def _evidence(services: Services, credential: SigningCredential) -> RevocationEvidence:
    return services.evidence.revocation_evidence([credential.certificate_der, *credential.chain_der])


@pytest.mark.parametrize("level", ["B-LT", "B-LTA"])
def test_long_term_signature_validates_from_the_embedded_data_alone(
    level: str,
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
    tmp_path: Path,
) -> None:
    credential = credentials[KeyAlgorithm.RSA2048]
    evidence = _evidence(initialized_services, credential)
    signed = sign_pdf(
        blank_pdf(),
        credential,
        store,
        PDFSignatureSpec(level=level),  # type: ignore[arg-type]
        timestamper=LocalTimeStamper(initialized_services.timestamps.answer),
        evidence=evidence,
    )
    qpdf_check(signed, tmp_path)
    openssl_verify_pdf(signed, hierarchy, tmp_path)

    reader = PdfFileReader(BytesIO(signed))
    dss = DocumentSecurityStore.read_dss(reader)
    assert len(dss.ocsps) >= 2  # the signer's and the TSA's certificates
    assert len(dss.crls) >= 1  # the root's ARL for the issuing CA

    context = _embedded_only_context(signed, hierarchy)
    signatures = reader.embedded_signatures
    assert len(signatures) == (2 if level == "B-LTA" else 1)
    status = validate_pdf_signature(signatures[0], context, ts_validation_context=context)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()  # type: ignore[no-untyped-call]
    assert status.timestamp_validity is not None
    assert status.timestamp_validity.trusted, status.pretty_print_details()  # type: ignore[no-untyped-call]
    assert status.revocation_details is None  # nobody was found revoked
    if level == "B-LTA":
        assert signatures[1].sig_object["/Type"] == "/DocTimeStamp"
        doc_ts = validate_pdf_timestamp(signatures[1], validation_context=context)
        assert doc_ts.intact and doc_ts.valid and doc_ts.trusted, doc_ts.summary()


def test_validation_from_the_embedded_data_needs_the_dss(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
) -> None:
    """The check above is not vacuous: a B-T signature (no DSS) fails the same validation."""
    signed = sign_pdf(
        blank_pdf(),
        credentials[KeyAlgorithm.RSA2048],
        store,
        PDFSignatureSpec(level="B-T"),
        timestamper=LocalTimeStamper(initialized_services.timestamps.answer),
    )
    with pytest.raises(NoDSSFoundError):
        _embedded_only_context(signed, hierarchy)
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(hierarchy.root.certificate_der)],
        allow_fetching=False,
        revocation_mode="require",
        ocsps=[],
        crls=[],
    )
    status = validate_pdf_signature(PdfFileReader(BytesIO(signed)).embedded_signatures[0], context)
    assert status.intact and status.valid
    assert not status.trusted


def test_evidence_covers_the_chain_and_the_tsa(
    credentials: dict[KeyAlgorithm, SigningCredential], hierarchy: HierarchyResult, initialized_services: Services
) -> None:
    credential = credentials[KeyAlgorithm.EC_P256]
    evidence = _evidence(initialized_services, credential)
    serials = {
        asn1_ocsp.OCSPResponse.load(der)
        .basic_ocsp_response["tbs_response_data"]["responses"][0]["cert_id"]["serial_number"]
        .native
        for der in evidence.ocsp_responses
    }
    leaf = asn1_x509.Certificate.load(credential.certificate_der)
    tsa = asn1_x509.Certificate.load(hierarchy.tsa.certificate_der)
    assert {leaf.serial_number, tsa.serial_number} <= serials
    assert len(evidence.crls) == 2  # the root's ARL and its delta, for the issuing CA
    assert hierarchy.ocsp_responder.certificate_der in evidence.certificates
    assert hierarchy.tsa.certificate_der in evidence.certificates
    without_tsa = initialized_services.evidence.revocation_evidence([credential.certificate_der], include_tsa=False)
    assert len(without_tsa.ocsp_responses) == 1 and not without_tsa.crls


def test_evidence_for_a_foreign_certificate_is_refused(initialized_services: Services) -> None:
    key = ec.generate_private_key(ec.SECP256R1())  # a throwaway foreign CA, not a signing key
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Foreign CA")])
    now = dt.datetime.now(dt.UTC)
    foreign = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(InvalidInputError) as raised:
        initialized_services.evidence.revocation_evidence([foreign.public_bytes(serialization.Encoding.DER)])
    assert raised.value.kind is ErrorKind.INVALID_INPUT


@pytest.mark.parametrize("level", ["B-LT", "B-LTA"])
def test_long_term_levels_need_evidence_and_a_timestamper(
    level: str, credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore, initialized_services: Services
) -> None:
    credential = credentials[KeyAlgorithm.EC_P256]
    spec = PDFSignatureSpec(level=level)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="evidence"):
        sign_pdf(blank_pdf(), credential, store, spec, LocalTimeStamper(initialized_services.timestamps.answer))
    with pytest.raises(InvalidInputError, match="time-stamp"):
        sign_pdf(blank_pdf(), credential, store, spec, evidence=_evidence(initialized_services, credential))


def test_long_term_signature_with_incomplete_evidence_is_refused(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore, initialized_services: Services
) -> None:
    """Evidence without the TSA's status cannot make an LT signature that validates: refused."""
    credential = credentials[KeyAlgorithm.EC_P256]
    evidence = initialized_services.evidence.revocation_evidence(
        [credential.certificate_der, *credential.chain_der], include_tsa=False
    )
    with pytest.raises(InvalidInputError, match="revocation evidence does not prove"):
        sign_pdf(
            blank_pdf(),
            credential,
            store,
            PDFSignatureSpec(level="B-LT"),
            timestamper=LocalTimeStamper(initialized_services.timestamps.answer),
            evidence=evidence,
        )


def test_long_term_signature_by_a_revoked_certificate_is_refused(
    store: KeyStore, hierarchy: HierarchyResult, initialized_services: Services
) -> None:
    """Our responder says revoked: the evidence shows it and no LT signature is made."""
    subject = f"CN=Revoked signer {secrets.token_hex(4)},C=VN"
    request = IssuanceRequest(
        profile="individual",
        subject=subject,
        email="gone@example.gov.vn",
        key_algorithm=KeyAlgorithm.EC_P256,
    )
    issued = issue(initialized_services, request)
    assert issued.record.key is not None
    initialized_services.uow.run(
        lambda work: work.lifecycle.revoke(
            issued.record.serial_hex, reason=RevocationReason.KEY_COMPROMISE, actor=ACTOR
        ),
        action="certificate.revoke",
        requester=Requester.operator(ACTOR),
        object_id=issued.record.serial_hex,
    )
    credential = SigningCredential(
        key=issued.record.key,
        certificate_der=issued.record.certificate_der,
        chain_der=(hierarchy.issuing.certificate_der, hierarchy.root.certificate_der),
    )
    evidence = _evidence(initialized_services, credential)
    with pytest.raises(InvalidInputError, match="revoked"):
        sign_pdf(
            blank_pdf(),
            credential,
            store,
            PDFSignatureSpec(level="B-LT"),
            timestamper=LocalTimeStamper(initialized_services.timestamps.answer),
            evidence=evidence,
        )
