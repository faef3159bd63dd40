"""Certificate profiles: what each kind of certificate contains.

Subscriber profiles follow the Vietnamese public-service digital signature rules (Decree
68/2024/ND-CP): ``individual`` for officials, ``organization`` for an agency's seal, ``device``
for devices, services and software. Every subscriber certificate has keyUsage digitalSignature +
nonRepudiation and EKU emailProtection (e-mail and PDF verifiers such as poppler check the signer
as an e-mail signer) plus id-kp-documentSigning (RFC 9336); ``device`` adds clientAuth.
The service profiles (``ocsp-responder``, ``tsa``) are used only by the CA for its own services.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from govsign.errors import UnknownProfileError
from govsign.keystore.api import KeyAlgorithm

#: id-kp-documentSigning, RFC 9336.
DOCUMENT_SIGNING_OID = ObjectIdentifier("1.3.6.1.5.5.7.3.36")

ALL_KEY_ALGORITHMS = frozenset(KeyAlgorithm)

SUBSCRIBER_MAX_VALIDITY_YEARS = 5


@dataclass(frozen=True, kw_only=True)
class CertificateProfile:
    """What a certificate of one kind contains and which requests it accepts."""

    name: str
    """Profile name, as on the command line."""
    description: str
    """One line for people."""
    subscriber: bool
    """True for profiles that operators and clients may request."""
    key_usage: frozenset[str]
    """Names of the keyUsage bits set (cryptography's KeyUsage argument names)."""
    extended_key_usages: tuple[ObjectIdentifier, ...]
    """EKU purposes, in order."""
    extended_key_usage_critical: bool = False
    """Whether the EKU extension is critical (RFC 3161 requires it for TSA certificates)."""
    max_validity_years: int = SUBSCRIBER_MAX_VALIDITY_YEARS
    """Longest validity accepted, in calendar years."""
    ocsp_no_check: bool = False
    """Add id-pkix-ocsp-nocheck (OCSP responder certificates)."""
    revocation_pointers: bool = True
    """Add AIA OCSP and CRL distribution points (and Freshest CRL)."""
    allowed_key_algorithms: frozenset[KeyAlgorithm] = ALL_KEY_ALGORITHMS
    """Subject key types accepted."""
    email_allowed: bool = True
    """Whether an rfc822Name may be put in the subject alternative name."""


_SIGNING_KEY_USAGE = frozenset({"digital_signature", "content_commitment"})
_SUBSCRIBER_EKUS = (ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING_OID)


def _subscriber(name: str, description: str, *more_ekus: ObjectIdentifier) -> CertificateProfile:
    """A subscriber profile: the signing key usage, EKU emailProtection and documentSigning, then ``more_ekus``."""
    return CertificateProfile(
        name=name,
        description=description,
        subscriber=True,
        key_usage=_SIGNING_KEY_USAGE,
        extended_key_usages=(*_SUBSCRIBER_EKUS, *more_ekus),
    )


INDIVIDUAL = _subscriber("individual", "An official's signing certificate (chữ ký số cá nhân).")
ORGANIZATION = _subscriber("organization", "An agency's seal certificate (chữ ký số cơ quan, tổ chức).")
DEVICE = _subscriber(
    "device",
    "A device, service or software certificate (thiết bị, dịch vụ, phần mềm).",
    ExtendedKeyUsageOID.CLIENT_AUTH,
)
OCSP_RESPONDER = CertificateProfile(
    name="ocsp-responder",
    description="The CA's delegated OCSP responder.",
    subscriber=False,
    key_usage=frozenset({"digital_signature"}),
    extended_key_usages=(ExtendedKeyUsageOID.OCSP_SIGNING,),
    max_validity_years=1,
    ocsp_no_check=True,
    revocation_pointers=False,
    email_allowed=False,
)
TSA = CertificateProfile(
    name="tsa",
    description="The CA's RFC 3161 time-stamping unit.",
    subscriber=False,
    key_usage=frozenset({"digital_signature", "content_commitment"}),
    extended_key_usages=(ExtendedKeyUsageOID.TIME_STAMPING,),
    extended_key_usage_critical=True,
    max_validity_years=10,
    email_allowed=False,
)

PROFILES: dict[str, CertificateProfile] = {p.name: p for p in (INDIVIDUAL, ORGANIZATION, DEVICE, OCSP_RESPONDER, TSA)}
SUBSCRIBER_PROFILE_NAMES = tuple(name for name, p in PROFILES.items() if p.subscriber)


def subscriber_profile(name: str) -> CertificateProfile:
    """The subscriber profile of that name, or UnknownProfileError naming the choices."""
    profile = PROFILES.get(name)
    if profile is None or not profile.subscriber:
        raise UnknownProfileError(
            f"There is no certificate profile '{name}'; use one of {', '.join(SUBSCRIBER_PROFILE_NAMES)}."
        )
    return profile


def add_years(moment: dt.datetime, years: int) -> dt.datetime:
    """The same moment ``years`` calendar years later (29 February becomes 28 February)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)
