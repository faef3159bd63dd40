"""What the validation engine is given (trust, revocation data, fetching rules) and what a report
shows of certificates and their revocation status.

The engine is pyHanko's ETSI EN 319 102-1 implementation (``pyhanko.sign.validation.ades``) over
pyhanko-certvalidator, configured stricter than its defaults: revocation information is required
for every certificate of the chain (no soft fail), fetching is bounded in time, and weak
algorithms are refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.sign.validation.policy_decl import (
    LocalKnowledge,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer, OCSPContainer

from govsign.validation.policy import StatusSource, ValidationPolicy
from govsign.validation.report import CertificateSummary, RevocationSummary, SignerSummary


@dataclass(frozen=True, kw_only=True)
class RevocationData:
    """OCSP responses and CRLs known for a validation, each with where it came from."""

    ocsps: tuple[tuple[asn1_ocsp.OCSPResponse, str], ...] = ()
    """OCSPResponses and their source (embedded-ocsp, govsign-records...)."""
    crls: tuple[tuple[asn1_crl.CertificateList, str], ...] = ()
    """CRLs and their source (embedded-crl...)."""

    def __add__(self, other: RevocationData) -> RevocationData:
        return RevocationData(ocsps=self.ocsps + other.ocsps, crls=self.crls + other.crls)


def load_certificates(data: bytes) -> list[bytes]:
    """The DER certificates of a PEM bundle (or of one DER certificate); ValueError otherwise."""
    if pem.detect(data):
        found = [der for kind, _headers, der in pem.unarmor(data, multiple=True) if kind == "CERTIFICATE"]
    else:
        found = [data]
    for der in found:
        x509.load_der_x509_certificate(der)  # raises ValueError for anything that is not one
    if not found:
        raise ValueError("no certificate in it")
    return found


def own_status(
    source: StatusSource | None, certificates: Iterable[asn1_x509.Certificate], policy: ValidationPolicy
) -> RevocationData:
    """Our own records' answers for the certificates we issued, and for the intermediates the
    policy offers (a document may embed the leaf only), with no HTTP round trip."""
    if source is None:
        return RevocationData()
    wanted = {c.dump(): c for c in certificates}
    wanted.update({der: asn1_x509.Certificate.load(der) for der in policy.intermediates if der not in wanted})
    parsed = [x509.load_der_x509_certificate(der) for der in wanted]
    ocsps = tuple((asn1_ocsp.OCSPResponse.load(der), "govsign-records") for der in source.ocsp_responses(parsed))
    crls = tuple((asn1_crl.CertificateList.load(der), "govsign-records") for der in source.crls(parsed))
    return RevocationData(ocsps=ocsps, crls=crls)


def covers(known: RevocationData, certificates: Iterable[asn1_x509.Certificate]) -> bool:
    """Whether ``known`` says something about every certificate that is not self-signed."""
    return all(
        _status_of(certificate, None, known).status != "unavailable"
        for certificate in certificates
        if certificate.subject != certificate.issuer
    )


def validation_spec(
    policy: ValidationPolicy,
    known: RevocationData,
    extra_certificates: Sequence[asn1_x509.Certificate] = (),
    *,
    fetch: bool = True,
) -> SignatureValidationSpec:
    """The engine's settings: our trust, revocation required for the whole chain, fetching
    bounded. ``fetch`` False keeps to the known data: the engine would otherwise fetch first and
    drop the known data when a fetch fails, so when the embedded data and our records cover the
    chain nothing is fetched at all."""
    roots = [asn1_x509.Certificate.load(der) for der in policy.trust_anchors]
    intermediates = [asn1_x509.Certificate.load(der) for der in policy.intermediates]
    cert_policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=roots),
        revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO),
        time_tolerance=dt.timedelta(seconds=policy.time_tolerance_seconds),
    )
    online = policy.fetch_revocation and fetch
    rule = RevinfoOnlineFetchingRule.NO_HISTORICAL_FETCH if online else RevinfoOnlineFetchingRule.LOCAL_ONLY
    gathering = RevocationInfoGatheringSpec(
        online_fetching_rule=rule,
        fetcher_backend=RequestsFetcherBackend(per_request_timeout=policy.fetch_timeout_seconds),
    )
    ocsps = [container for response, _ in known.ocsps for container in OCSPContainer.load_multi(response)]
    crls = [CRLContainer(crl) for crl, _ in known.crls]
    knowledge = LocalKnowledge(known_ocsps=ocsps, known_crls=crls, known_certs=[*intermediates, *extra_certificates])
    return SignatureValidationSpec(
        cert_validation_policy=cert_policy, revinfo_gathering_policy=gathering, local_knowledge=knowledge
    )


def _attribute(name: asn1_x509.Name, key: str) -> str | None:
    values = [value for rdn in name.chosen for attribute in rdn if (value := _named(attribute, key)) is not None]
    return ", ".join(values) if values else None


def _named(attribute: asn1_x509.NameTypeAndValue, key: str) -> str | None:
    if attribute["type"].native != key and attribute["type"].dotted != key:
        return None
    value = attribute["value"].native
    return str(value) if value is not None else None


def _rfc4514(certificate: asn1_x509.Certificate, issuer: bool = False) -> str:
    parsed = x509.load_der_x509_certificate(certificate.dump())
    return (parsed.issuer if issuer else parsed.subject).rfc4514_string()


def certificate_summary(certificate: asn1_x509.Certificate) -> CertificateSummary:
    validity = certificate["tbs_certificate"]["validity"]
    return CertificateSummary(
        subject=_rfc4514(certificate),
        serial=format(certificate.serial_number, "x"),
        not_before=validity["not_before"].native,
        not_after=validity["not_after"].native,
    )


def signer_summary(certificate: asn1_x509.Certificate) -> SignerSummary:
    """Who signed, as Circular 15/2025 Appendix II asks a verifier to show."""
    subject = certificate.subject
    emails = certificate.subject_alt_name_value.native if certificate.subject_alt_name_value is not None else []
    email = next((value for value in emails if "@" in str(value)), None) or _attribute(subject, "email_address")
    parsed = x509.load_der_x509_certificate(certificate.dump())
    summary = certificate_summary(certificate)
    return SignerSummary(
        common_name=_attribute(subject, "common_name"),
        organization=_attribute(subject, "organization_name"),
        organizational_unit=_attribute(subject, "organizational_unit_name"),
        uid=_attribute(subject, "0.9.2342.19200300.100.1.1"),
        email=str(email) if email is not None else None,
        country=_attribute(subject, "country_name"),
        serial=summary.serial,
        issuer=_rfc4514(certificate, issuer=True),
        not_before=summary.not_before,
        not_after=summary.not_after,
        certificate_pem=parsed.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    )


def revocation_summary(chain: Sequence[asn1_x509.Certificate], known: RevocationData) -> list[RevocationSummary]:
    """The status of each certificate of the chain but its root, from the OCSP responses and
    CRLs known (embedded, from our records, or fetched by the engine)."""
    summaries = []
    for index, certificate in enumerate(chain[:-1] if len(chain) > 1 else chain):
        issuer = chain[index + 1] if index + 1 < len(chain) else None
        summaries.append(_status_of(certificate, issuer, known))
    return summaries


def fetched(known: RevocationData, validation_objects: Iterable[Any]) -> RevocationData:
    """The OCSP responses and CRLs the engine used that were not known before: it fetched them."""
    have = {response.dump() for response, _ in known.ocsps} | {crl.dump() for crl, _ in known.crls}
    ocsps: list[tuple[asn1_ocsp.OCSPResponse, str]] = []
    crls: list[tuple[asn1_crl.CertificateList, str]] = []
    for vo in validation_objects:
        if isinstance(vo.value, OCSPContainer) and vo.value.ocsp_response_data.dump() not in have:
            ocsps.append((vo.value.ocsp_response_data, "fetched-ocsp"))
        elif isinstance(vo.value, CRLContainer) and vo.value.crl_data.dump() not in have:
            crls.append((vo.value.crl_data, "fetched-crl"))
    return RevocationData(ocsps=tuple(ocsps), crls=tuple(crls))


def _status_of(
    certificate: asn1_x509.Certificate, issuer: asn1_x509.Certificate | None, known: RevocationData
) -> RevocationSummary:
    subject = _rfc4514(certificate)
    serial = certificate.serial_number
    for response, source in known.ocsps:
        for single, produced_at in _single_responses(response):
            if single["cert_id"]["serial_number"].native != serial:
                continue
            if issuer is not None and single["cert_id"]["issuer_key_hash"].native != _key_hash(issuer, single):
                continue
            status = single["cert_status"]
            revoked = status.name == "revoked"
            return RevocationSummary(
                subject=subject,
                status="revoked" if revoked else ("good" if status.name == "good" else "unknown"),
                revoked_at=status.chosen["revocation_time"].native if revoked else None,
                reason=_reason(status.chosen["revocation_reason"].native) if revoked else None,
                source=source,
                produced_at=produced_at,
            )
    for crl, source in known.crls:
        if crl.issuer != certificate.issuer:
            continue
        entry = next(
            (e for e in crl["tbs_cert_list"]["revoked_certificates"] if e["user_certificate"].native == serial), None
        )
        return RevocationSummary(
            subject=subject,
            status="revoked" if entry is not None else "good",
            revoked_at=entry["revocation_date"].native if entry is not None else None,
            reason=_reason(entry.crl_reason_value.native if entry.crl_reason_value else None)
            if entry is not None
            else None,
            source=source,
            produced_at=crl["tbs_cert_list"]["this_update"].native,
        )
    return RevocationSummary(
        subject=subject, status="unavailable", revoked_at=None, reason=None, source=None, produced_at=None
    )


def _single_responses(response: asn1_ocsp.OCSPResponse) -> Iterable[tuple[asn1_ocsp.SingleResponse, dt.datetime]]:
    if response["response_status"].native != "successful":
        return
    basic = response.basic_ocsp_response["tbs_response_data"]
    for single in basic["responses"]:
        yield single, basic["produced_at"].native


def _key_hash(issuer: asn1_x509.Certificate, single: asn1_ocsp.SingleResponse) -> bytes:
    algorithm = single["cert_id"]["hash_algorithm"]["algorithm"].native
    return bytes(getattr(issuer.public_key, algorithm if algorithm in ("sha1", "sha256") else "sha1"))


def _reason(native: str | None) -> str | None:
    return native.replace("_", "-") if native else None
