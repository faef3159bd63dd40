"""Validation of one certificate path (RFC 5280 section 6.1), with its verdict in EN 319 102-1 terms.

The X.509 certificate validation building block alone, for callers that hold a certificate
rather than a signature: the end-entity certificate, the trust anchors, the intermediates and
the CRLs are given, revocation status is required for every certificate below the anchor and is
taken from those CRLs only (nothing is fetched), and the RFC 5280 policy inputs (initial policy
set, explicit policy, policy mapping and anyPolicy inhibition) are the caller's. Built on
pyhanko-certvalidator; the NIST PKITS cases run through it in the test suite.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from pyhanko_certvalidator import CertificateValidator, PKIXValidationParams, ValidationContext
from pyhanko_certvalidator.errors import (
    DisallowedAlgorithmError,
    ExpiredError,
    InsufficientRevinfoError,
    InvalidCertificateError,
    PathBuildingError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import DisallowWeakAlgorithmsPolicy

from govsign.validation.report import Indication

#: The anyPolicy OID (RFC 5280 section 4.2.1.4).
ANY_POLICY = "2.5.29.32.0"
#: Digest algorithms refused by default (Circular 15/2025 accepts SHA-256 and stronger only).
WEAK_DIGESTS = frozenset({"md2", "md5", "sha1", "sha224", "sha512_224"})


@dataclass(frozen=True, kw_only=True)
class PathParameters:
    """The RFC 5280 section 6.1.1 inputs of a path validation, and the algorithms it accepts."""

    initial_policy_set: frozenset[str] = frozenset({ANY_POLICY})
    """The user-initial-policy-set: dotted policy OIDs acceptable to the relying party (anyPolicy: any)."""
    explicit_policy_required: bool = False
    """initial-explicit-policy: the path must be valid for at least one policy of the set."""
    policy_mapping_inhibited: bool = False
    """initial-policy-mapping-inhibit: no policy mapping anywhere in the path."""
    any_policy_inhibited: bool = False
    """initial-any-policy-inhibit: anyPolicy in a certificate matches no policy."""
    weak_digests: frozenset[str] = WEAK_DIGESTS
    """Digest algorithms (asn1crypto names) refused in the signatures of certificates and CRLs."""
    min_rsa_bits: int = 2048
    """The smallest RSA modulus accepted, in bits."""
    min_dsa_bits: int = 2048
    """The smallest DSA key accepted, in bits."""
    time_tolerance_seconds: float = 1.0
    """Clock drift tolerated between the validation time, validity periods and CRL times."""


DEFAULT_PARAMETERS = PathParameters()


@dataclass(frozen=True, kw_only=True)
class PathVerdict:
    """What the validation of one certificate path concluded."""

    valid: bool
    """The path validated (indication TOTAL_PASSED)."""
    indication: Indication
    """The EN 319 102-1 main indication (TOTAL_PASSED or INDETERMINATE, as the building block gives)."""
    sub_indication: str | None
    """The EN 319 102-1 sub-indication (EU DSS spelling); None when valid."""
    reason: str | None
    """Why it failed, in the validator's words; None when valid."""
    path: tuple[bytes, ...] = ()
    """The validated path (DER), end-entity first and trust anchor last; empty when none validated."""
    policies: frozenset[str] = frozenset()
    """The user-initial-policy-set policies (dotted OIDs) the path is valid for; empty when none."""


def validate_certificate_path(
    end_entity: bytes,
    *,
    trust_anchors: Sequence[bytes],
    intermediates: Sequence[bytes] = (),
    crls: Sequence[bytes] = (),
    at: dt.datetime,
    parameters: PathParameters = DEFAULT_PARAMETERS,
) -> PathVerdict:
    """The verdict on ``end_entity`` (DER) at the time ``at`` (timezone-aware): a path is built
    from ``intermediates`` to one of ``trust_anchors`` and validated, every certificate below the
    anchor checked against ``crls`` (DER; none fetched). Not for use inside an event loop: there,
    await :func:`async_validate_certificate_path`. Raises ValueError for input that is not DER."""
    chain = {"trust_anchors": trust_anchors, "intermediates": intermediates, "crls": crls}
    return asyncio.run(async_validate_certificate_path(end_entity, at=at, parameters=parameters, **chain))


async def async_validate_certificate_path(
    end_entity: bytes,
    *,
    trust_anchors: Sequence[bytes],
    intermediates: Sequence[bytes] = (),
    crls: Sequence[bytes] = (),
    at: dt.datetime,
    parameters: PathParameters = DEFAULT_PARAMETERS,
) -> PathVerdict:
    """:func:`validate_certificate_path`, for callers inside an event loop."""
    if at.tzinfo is None:
        raise ValueError("the validation time must be timezone-aware")
    leaf = _certificate(end_entity, "the end-entity certificate")
    algorithms = DisallowWeakAlgorithmsPolicy(  # type: ignore[no-untyped-call]
        weak_hash_algos=parameters.weak_digests,
        rsa_key_size_threshold=parameters.min_rsa_bits,
        dsa_key_size_threshold=parameters.min_dsa_bits,
    )
    context = ValidationContext(
        trust_roots=[_certificate(der, "a trust anchor") for der in trust_anchors],
        other_certs=[_certificate(der, "an intermediate") for der in intermediates],
        crls=[_crl(der) for der in crls],
        moment=at,
        allow_fetching=False,
        revocation_mode="require",
        time_tolerance=dt.timedelta(seconds=parameters.time_tolerance_seconds),
        algorithm_usage_policy=algorithms,
    )
    validator = CertificateValidator(leaf, validation_context=context, pkix_params=_pkix_params(parameters))
    try:
        path = await validator.async_validate_path()
    except ValidationError as e:
        indication, sub_indication = _failure(e)
        return PathVerdict(valid=False, indication=indication, sub_indication=sub_indication, reason=e.failure_msg)
    except PathBuildingError as e:
        return PathVerdict(
            valid=False,
            indication=Indication.INDETERMINATE,
            sub_indication="NO_CERTIFICATE_CHAIN_FOUND",
            reason=str(e),
        )
    return PathVerdict(
        valid=True,
        indication=Indication.TOTAL_PASSED,
        sub_indication=None,
        reason=None,
        path=_path_der(path),
        policies=_policies(path),
    )


def _pkix_params(parameters: PathParameters) -> PKIXValidationParams:
    policies = frozenset("any_policy" if oid == ANY_POLICY else oid for oid in parameters.initial_policy_set)
    return PKIXValidationParams(
        user_initial_policy_set=policies,
        initial_explicit_policy=parameters.explicit_policy_required,
        initial_policy_mapping_inhibit=parameters.policy_mapping_inhibited,
        initial_any_policy_inhibit=parameters.any_policy_inhibited,
    )


def _failure(error: ValidationError) -> tuple[Indication, str]:
    """The EN 319 102-1 X.509 certificate validation result (section 5.2.6) of a failure: as
    pyHanko's signature engine maps the same errors, except that missing revocation data is
    TRY_LATER (as our engine reports it) and an untrusted self-signed certificate has no chain."""
    if isinstance(error, InvalidCertificateError):
        # find_valid_path's only one: a self-signed certificate that is no trust anchor
        return Indication.INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND"
    if isinstance(error, InsufficientRevinfoError):
        # no CRL, or none fresh enough: the status may be known later (stale ones included)
        return Indication.INDETERMINATE, "TRY_LATER"
    if isinstance(error, DisallowedAlgorithmError):
        sub = "CRYPTO_CONSTRAINTS_FAILURE" if error.banned_since is None else "CRYPTO_CONSTRAINTS_FAILURE_NO_POE"
        return Indication.INDETERMINATE, sub
    if isinstance(error, RevokedError) and not error.is_side_validation:
        return Indication.INDETERMINATE, "REVOKED_NO_POE" if error.is_ee_cert else "REVOKED_CA_NO_POE"
    if isinstance(error, ExpiredError) and not error.is_side_validation and error.is_ee_cert:
        return Indication.INDETERMINATE, "OUT_OF_BOUNDS_NO_POE"
    # any other failure of the path (signatures, names, constraints, policies, extensions)
    return Indication.INDETERMINATE, "CERTIFICATE_CHAIN_GENERAL_FAILURE"


def _path_der(path: ValidationPath) -> tuple[bytes, ...]:
    return tuple(cert.dump() for cert in reversed(list(path.iter_certs(include_root=True))))


def _policies(path: ValidationPath) -> frozenset[str]:
    qualified = path.qualified_policies() or frozenset()
    return frozenset(
        ANY_POLICY if p.user_domain_policy_id == "any_policy" else p.user_domain_policy_id for p in qualified
    )


def _certificate(der: bytes, what: str) -> asn1_x509.Certificate:
    try:
        certificate = asn1_x509.Certificate.load(der, strict=True)
        certificate.native  # noqa: B018 - parses it whole now, so that garbage fails here
    except (ValueError, TypeError) as e:
        raise ValueError(f"{what} is not a DER X.509 certificate") from e
    return certificate


def _crl(der: bytes) -> asn1_crl.CertificateList:
    try:
        crl = asn1_crl.CertificateList.load(der, strict=True)
        crl["tbs_cert_list"]["issuer"].native  # noqa: B018 - garbage fails here (the entries are read later)
    except (ValueError, TypeError) as e:
        raise ValueError("a CRL is not a DER CertificateList") from e
    return crl
