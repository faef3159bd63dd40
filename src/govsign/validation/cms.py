"""Validation of a CMS/CAdES signature (ETSI EN 319 102-1): detached over content given whole or
as chunks, detached over a digest the relying party computed, or attached (the content inside).

Validation with time (5.5) when the signature has a signature time-stamp, basic validation (5.3)
otherwise; the revocation data the SignedData carries (CAdES B-LT: CRLs and OCSP responses in
``crls``) is used first, our own CAs' status comes from our records, anything else is fetched
(bounded).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

from asn1crypto import cms
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from pyhanko.sign.validation.ades import ades_basic_validation, ades_with_time_validation

from govsign.errors import InvalidInputError
from govsign.validation.engine import (
    ENTIRE,
    Signed,
    has_signature_timestamp,
    judge,
    reason,
    signature_timing,
    timed_out,
    unreadable,
)
from govsign.validation.evidence import (
    Freshness,
    RevocationData,
    covers,
    own_status,
    path_building_stopped,
    validation_spec,
)
from govsign.validation.policy import Deadline, StatusSource, TimeBoundReachedError, ValidationPolicy
from govsign.validation.report import SignatureReport

#: The digest algorithms a detached signature's content may be hashed with, by CMS name.
_HASHES = {"sha256": "sha256", "sha384": "sha384", "sha512": "sha512", "sha1": "sha1", "sha224": "sha224"}
#: id-ri-ocsp-response (RFC 5940): an OCSP response among the SignedData's revocation information.
_OCSP_RESPONSE_FORMAT = "1.3.6.1.5.5.7.16.2"


def parse_signed_data(signature_der: bytes) -> cms.SignedData:
    """The SignedData of a DER ContentInfo; InvalidInputError for anything else."""
    try:
        info = cms.ContentInfo.load(signature_der, strict=True)
        if info["content_type"].native != "signed_data":
            raise InvalidInputError("The signature is a CMS structure, but not SignedData.")
        signed_data: cms.SignedData = info["content"]
        signer_infos = signed_data["signer_infos"]
        signed_data["encap_content_info"].native  # noqa: B018 - decodes it: a broken one fails here
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidInputError(f"The signature is not a DER CMS SignedData ({reason(exc)}).") from None
    if len(signer_infos) != 1:
        raise InvalidInputError("The signature must carry exactly one signer (SignerInfo).")
    return signed_data


def content_digest(signed_data: cms.SignedData, chunks: Iterable[bytes]) -> bytes:
    """The content's digest with the signer's digest algorithm."""
    algorithm = signed_data["signer_infos"][0]["digest_algorithm"]["algorithm"].native
    if algorithm not in _HASHES:
        raise InvalidInputError(f"The signature's digest algorithm ({algorithm}) is not supported.")
    hasher = hashlib.new(_HASHES[algorithm])
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.digest()


def digest_algorithm(signed_data: cms.SignedData) -> str:
    return str(signed_data["signer_infos"][0]["digest_algorithm"]["algorithm"].native)


def validate_cms(
    signed_data: cms.SignedData,
    raw_digest: bytes | None,
    policy: ValidationPolicy,
    *,
    now: dt.datetime,
    status: StatusSource | None = None,
) -> SignatureReport:
    """Validate the one signature of ``signed_data`` over content whose digest (with the signer's
    algorithm) is ``raw_digest``; None for an attached signature, whose content is inside."""
    if raw_digest is None and signed_data["encap_content_info"]["content"].native is None:
        raise InvalidInputError("The signature is detached: send the signed document (or its digest) with it.")
    return asyncio.run(_validate(signed_data, raw_digest, policy, now, status))


async def _validate(
    signed_data: cms.SignedData,
    raw_digest: bytes | None,
    policy: ValidationPolicy,
    now: dt.datetime,
    status: StatusSource | None,
) -> SignatureReport:
    deadline = Deadline(policy.timeout_seconds)
    signer_info = signed_data["signer_infos"][0]
    certificates = _certificates(signed_data)
    known = _embedded_revocation(signed_data) + own_status(status, certificates, policy)
    timestamped = has_signature_timestamp(signer_info)
    timing = signature_timing(signer_info, now, with_time=timestamped)
    at = Freshness(
        validation_time=now,
        best_signature_time=timing.best_signature_time,
        tolerance=dt.timedelta(seconds=policy.time_tolerance_seconds),
    )
    spec = validation_spec(policy, known, certificates, fetch=not covers(known, certificates, at), deadline=deadline)
    process: Any = ades_with_time_validation if timestamped else ades_basic_validation
    signer = _signer_certificate(signed_data)
    signed = Signed(
        signer_certificate=signer,
        digest_algorithm=digest_algorithm(signed_data),
        level=_level(signed_data, timestamped),
        claimed_signing_time=_signing_time(signer_info),
    )
    try:
        result = await asyncio.wait_for(
            process(signed_data, spec, timing_info=timing, raw_digest=raw_digest), deadline.remaining()
        )
    except (TimeoutError, TimeBoundReachedError):
        return timed_out(signed, now, policy)
    except RecursionError:
        raise InvalidInputError("The signature nests its structures too deeply to be read.") from None
    except ValueError as exc:
        return unreadable(signed, now, exc)
    return judge(result, signed, ENTIRE, known, policy, now, path_building_stopped=path_building_stopped(spec))


def _certificates(signed_data: cms.SignedData) -> list[asn1_x509.Certificate]:
    """The certificates of the SignedData and of its signature time-stamps."""
    signed_datas = [signed_data]
    for attribute in signed_data["signer_infos"][0]["unsigned_attrs"] or []:
        if attribute["type"].native == "signature_time_stamp_token":
            signed_datas += [token["content"] for token in attribute["values"]]
    return [c.chosen for sd in signed_datas for c in sd["certificates"] or [] if c.name == "certificate"]


def _signer_certificate(signed_data: cms.SignedData) -> asn1_x509.Certificate:
    sid = signed_data["signer_infos"][0]["sid"]
    for certificate in _certificates(signed_data):
        if sid.name == "issuer_and_serial_number":
            issuer_serial = sid.chosen
            if (
                certificate.issuer == issuer_serial["issuer"]
                and certificate.serial_number == issuer_serial["serial_number"].native
            ):
                return certificate
        elif certificate.key_identifier == sid.chosen.native:
            return certificate
    raise InvalidInputError("The signer's certificate is not in the signature.")


def _embedded_revocation(signed_data: cms.SignedData) -> RevocationData:
    """CRLs and OCSP responses (RFC 5940) in the SignedData's revocation information."""
    crls: list[tuple[asn1_crl.CertificateList, str]] = []
    ocsps: list[tuple[asn1_ocsp.OCSPResponse, str]] = []
    for choice in signed_data["crls"] or []:
        if choice.name == "crl":
            crls.append((choice.chosen, "embedded-crl"))
        elif choice.name == "other" and choice.chosen["other_rev_info_format"].dotted == _OCSP_RESPONSE_FORMAT:
            try:
                ocsps.append((asn1_ocsp.OCSPResponse.load(choice.chosen["other_rev_info"].dump()), "embedded-ocsp"))
            except ValueError:
                continue
    return RevocationData(ocsps=tuple(ocsps), crls=tuple(crls))


def _signing_time(signer_info: cms.SignerInfo) -> dt.datetime | None:
    """The signingTime signed attribute (what the signer claims), if any."""
    for attribute in signer_info["signed_attrs"] or []:
        if attribute["type"].native == "signing_time":
            value = attribute["values"][0].native
            return value if isinstance(value, dt.datetime) else None
    return None


def _level(signed_data: cms.SignedData, timestamped: bool) -> str:
    if not timestamped:
        return "CAdES-BASELINE-B"
    return "CAdES-BASELINE-LT" if signed_data["crls"] else "CAdES-BASELINE-T"
