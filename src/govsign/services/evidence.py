"""Long-term validation evidence from our own status services, for PAdES B-LT/B-LTA and CAdES
B-LT: an OCSP response of our responder for each certificate an issuing CA issued, and the
root's latest complete CRL (ARL) with its delta CRL for each CA certificate the root issued."""

from __future__ import annotations

from collections.abc import Sequence

from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from govsign.der import certificate_to_asn1
from govsign.errors import InvalidInputError, UnavailableError
from govsign.pki.records import CARecord, CARole
from govsign.services.status import CRLService, OCSPService, TimeStampService
from govsign.signing.evidence import RevocationEvidence
from govsign.storage.engine import Database


class EvidenceService:
    """Gathers the revocation evidence that an LT signature embeds."""

    def __init__(
        self, *, database: Database, ocsp: OCSPService, crls: CRLService, timestamps: TimeStampService
    ) -> None:
        self._database = database
        self._ocsp = ocsp
        self._crls = crls
        self._timestamps = timestamps

    def revocation_evidence(self, certificates_der: Sequence[bytes], *, include_tsa: bool = True) -> RevocationEvidence:
        """The evidence for the given certificates (CRLs published first when there are none or
        they have expired). With ``include_tsa``, the current TSA certificate and its chain are
        covered too (an LT signature embeds the status of its time-stamp's signer).
        ``certificates`` holds the given certificates and the CA, OCSP responder and TSA
        certificates that validation needs.

        Raises InvalidInputError for a certificate none of our CAs issued, UnavailableError when
        a response or CRL cannot be had.
        """
        with self._database.read_only() as ports:
            cas = ports.cas.list_cas()
        loaded = [(ca, x509.load_der_x509_certificate(ca.certificate_der)) for ca in cas]
        wanted = list(dict.fromkeys(bytes(der) for der in certificates_der))
        if include_tsa:
            tsa = self._timestamps.authority()
            if tsa is None:
                raise UnavailableError("The time-stamping authority has no valid certificate.")
            for der in (tsa.signer.certificate_der, *tsa.signer.chain_der):
                if der not in wanted:
                    wanted.append(der)
        ocsp_responses: list[bytes] = []
        crls: list[bytes] = []
        extra: list[bytes] = []
        for der in wanted:
            certificate = _load_certificate(der)
            issuer = _issuing_ca(certificate, loaded)
            if issuer is None:
                raise InvalidInputError("A certificate was not issued by this service's certificate authorities.")
            ca, ca_certificate = issuer
            if certificate == ca_certificate:
                continue  # a self-signed root is a trust anchor: no status to show
            if ca.role is CARole.ROOT:
                crls.extend(self.current_crls(ca))
            else:
                response = self._ocsp_response(certificate, ca_certificate)
                ocsp_responses.append(response)
                extra.extend(_response_certificates(response))
            extra.append(ca.certificate_der)
            if ca.parent_id is not None:
                extra.extend(other.certificate_der for other in cas if other.id == ca.parent_id)
        if ocsp_responses:
            responder = self._ocsp.responder()
            if responder is not None:
                extra.extend(
                    credential.certificate_der
                    for credential in (responder.directory.responder(ca.id) for ca in cas)
                    if credential is not None
                )
        return RevocationEvidence(
            ocsp_responses=tuple(dict.fromkeys(ocsp_responses)),
            crls=tuple(dict.fromkeys(crls)),
            certificates=tuple(dict.fromkeys([*wanted, *extra])),
        )

    def _ocsp_response(self, certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
        """Our responder's DER OCSPResponse (status good or revoked) for one certificate."""
        answer = self._ocsp.answer(_ocsp_request(certificate, issuer))
        if answer.status != "successful":
            raise UnavailableError(
                f"The OCSP responder cannot give the status of certificate {certificate.serial_number:x} "
                f"right now ({answer.status}); try again later."
            )
        single = asn1_ocsp.OCSPResponse.load(answer.der).basic_ocsp_response["tbs_response_data"]["responses"][0]
        if single["cert_status"].name == "unknown":
            raise UnavailableError(
                f"The OCSP responder does not know certificate {certificate.serial_number:x}; try again later."
            )
        return answer.der

    def current_crls(self, ca: CARecord) -> list[bytes]:
        """The CA's latest complete CRL and the delta CRL on it (the complete CRL names the delta
        in its Freshest CRL extension, so validators need both), published first when missing,
        expired or out of step."""
        for attempt in range(2):
            current = self._crls.current(ca)
            if current is not None:
                return [crl.der for crl in current]
            if attempt == 0:
                full = self._crls.latest(ca.id, delta=False)
                self._crls.publish(force=full is not None and self._crls.is_current(full))
        raise UnavailableError(f"No current CRL of CA {ca.id} can be had right now; try again later.")


def _load_certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise InvalidInputError("A certificate to gather revocation evidence for is not DER X.509.") from None


def _issuing_ca(
    certificate: x509.Certificate, cas: Sequence[tuple[CARecord, x509.Certificate]]
) -> tuple[CARecord, x509.Certificate] | None:
    """The CA of ours whose key signed the certificate (by name and signature), or None."""
    for ca, ca_certificate in cas:
        if certificate.issuer != ca_certificate.subject:
            continue
        try:
            certificate.verify_directly_issued_by(ca_certificate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return ca, ca_certificate
    return None


def _ocsp_request(certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A DER OCSPRequest with one SHA-256 CertID and no nonce (so a pre-produced response fits)."""
    asn1_issuer = certificate_to_asn1(issuer)
    cert_id = asn1_ocsp.CertId(
        {
            "hash_algorithm": {"algorithm": "sha256"},
            "issuer_name_hash": asn1_issuer.subject.sha256,
            "issuer_key_hash": asn1_issuer.public_key.sha256,
            "serial_number": certificate.serial_number,
        }
    )
    return bytes(asn1_ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}}).dump())


def _response_certificates(response_der: bytes) -> list[bytes]:
    """The certificates embedded in a BasicOCSPResponse (the responder's)."""
    basic = asn1_ocsp.OCSPResponse.load(response_der).basic_ocsp_response
    return [bytes(certificate.dump()) for certificate in basic["certs"] or []]
