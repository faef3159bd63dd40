"""Prepare, lint, issue once (the Boulder pattern, DESIGN.md example 3).

1. :func:`prepare` builds the complete to-be-signed certificate with a placeholder signature
   (no key is used: the placeholder signer only records the TBS bytes).
2. :meth:`IssuanceToken.lint` checks that preview against the profile (our own rules) and with
   pkilint's PKIX validators; any finding at WARNING or above stops the issuance.
3. :meth:`IssuanceToken.issue` builds the same certificate again, signed by the CA's key in the
   HSM. The HSM key is bound to the linted TBS bytes: it signs exactly those, once, or refuses.
   The token can be issued only once, and only after a clean lint.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID, ObjectIdentifier

from govsign.errors import InternalError, LintFailedError
from govsign.keystore.api import HashAlgorithm, KeyRef, KeyStore, PublicKey
from govsign.keystore.cryptography_keys import hsm_private_key
from govsign.pki.placeholder import placeholder_key
from govsign.pki.profiles import CertificateProfile, add_years

SignatureHash = hashes.SHA256 | hashes.SHA384 | hashes.SHA512

_CRYPTOGRAPHY_HASHES: dict[HashAlgorithm, SignatureHash] = {
    HashAlgorithm.SHA256: hashes.SHA256(),
    HashAlgorithm.SHA384: hashes.SHA384(),
    HashAlgorithm.SHA512: hashes.SHA512(),
}


def cryptography_hash(algorithm: HashAlgorithm) -> SignatureHash:
    return _CRYPTOGRAPHY_HASHES[algorithm]


def random_serial() -> int:
    """A positive serial with 126 bits from the OS CSPRNG (fixed length: bit 126 is set)."""
    return secrets.randbits(126) | (1 << 126)


def serial_to_hex(serial: int) -> str:
    return format(serial, "x")


@dataclass(frozen=True, kw_only=True)
class PublicURLs:
    """The URLs relying parties use, all under GOVSIGN_PUBLIC_BASE_URL (CONTRACT.md)."""

    base_url: str
    """Base URL without a trailing slash."""

    @property
    def ocsp(self) -> str:
        return f"{self.base_url}/pki/ocsp"

    def ca_certificate(self, ca_id: str) -> str:
        return f"{self.base_url}/pki/ca/{ca_id}.crt"

    def crl(self, ca_id: str) -> str:
        return f"{self.base_url}/pki/crl/{ca_id}.crl"

    def delta_crl(self, ca_id: str) -> str:
        return f"{self.base_url}/pki/crl/{ca_id}-delta.crl"


@dataclass(frozen=True, kw_only=True)
class IssuerContext:
    """The CA that signs: its name, key, certificate and where it is published."""

    ca_id: str
    """Our id of the CA (in URLs)."""
    name: x509.Name
    """The CA's subject (the new certificate's issuer)."""
    key: KeyRef
    """The CA's key on the token."""
    public_key: PublicKey
    """The CA's public key."""
    certificate: x509.Certificate | None
    """The CA's certificate; None while a root signs its own."""
    parent_ca_id: str | None
    """The CA above (for AIA and CRL pointers of CA certificates)."""


class CertificateKind(enum.Enum):
    """Where a certificate stands in the hierarchy; decides its CA or end-entity extensions."""

    ROOT_CA = "root-ca"
    SUBORDINATE_CA = "subordinate-ca"
    END_ENTITY = "end-entity"


@dataclass(frozen=True, kw_only=True)
class CertificateSpec:
    """Everything that goes into one certificate."""

    kind: CertificateKind
    """Root, subordinate CA or end entity."""
    profile: CertificateProfile | None
    """End-entity profile; None for CA certificates."""
    subject: x509.Name
    """Normalised subject name."""
    public_key: PublicKey
    """Subject public key."""
    serial: int
    """Serial number."""
    not_before: dt.datetime
    """Start of validity."""
    not_after: dt.datetime
    """End of validity."""
    email: str | None = None
    """rfc822Name for the SAN."""
    policy_oid: str
    """Certificate policy OID."""
    path_length: int | None = None
    """pathLenConstraint for CA certificates."""
    urls: PublicURLs
    """Where revocation information and CA certificates are published."""


class CertificateLinter(Protocol):
    def lint(self, certificate_der: bytes) -> Sequence[Any]: ...


def _builder(spec: CertificateSpec, issuer: IssuerContext) -> x509.CertificateBuilder:
    public_key = spec.public_key
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(spec.subject)
        .issuer_name(issuer.name)
        .public_key(public_key)
        .serial_number(spec.serial)
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
    )
    urls = spec.urls
    if spec.kind is CertificateKind.ROOT_CA:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=spec.path_length), critical=True)
        builder = builder.add_extension(_key_usage({"key_cert_sign", "crl_sign"}), critical=True)
        builder = builder.add_extension(ski, critical=False)
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(ski.digest, None, None), critical=False)
        return builder

    issuer_aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key)
    if issuer.certificate is not None:
        try:
            issuer_ski = issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            issuer_aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski.value)
        except x509.ExtensionNotFound:
            pass
    policies = x509.CertificatePolicies([x509.PolicyInformation(ObjectIdentifier(spec.policy_oid), None)])

    if spec.kind is CertificateKind.SUBORDINATE_CA:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=spec.path_length), critical=True)
        builder = builder.add_extension(_key_usage({"key_cert_sign", "crl_sign"}), critical=True)
        builder = builder.add_extension(ski, critical=False)
        builder = builder.add_extension(issuer_aki, critical=False)
        builder = builder.add_extension(policies, critical=False)
        builder = builder.add_extension(
            x509.AuthorityInformationAccess([_ca_issuers(urls, issuer.ca_id)]), critical=False
        )
        return _with_crl_pointers(builder, urls, issuer.ca_id)

    profile = spec.profile
    if profile is None:
        raise InternalError("An end-entity certificate needs a profile.")
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    builder = builder.add_extension(_key_usage(set(profile.key_usage)), critical=True)
    builder = builder.add_extension(
        x509.ExtendedKeyUsage(list(profile.extended_key_usages)), critical=profile.extended_key_usage_critical
    )
    builder = builder.add_extension(ski, critical=False)
    builder = builder.add_extension(issuer_aki, critical=False)
    builder = builder.add_extension(policies, critical=False)
    access = [_ca_issuers(urls, issuer.ca_id)]
    if profile.revocation_pointers:
        access.insert(
            0, x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(urls.ocsp))
        )
    builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    if profile.revocation_pointers:
        builder = _with_crl_pointers(builder, urls, issuer.ca_id)
    if profile.ocsp_no_check:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    if spec.email:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(spec.email)]), critical=False)
    return builder


def _ca_issuers(urls: PublicURLs, ca_id: str) -> x509.AccessDescription:
    """The AIA caIssuers entry: where the certificate of the CA ``ca_id`` is published."""
    return x509.AccessDescription(
        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(urls.ca_certificate(ca_id))
    )


def _with_crl_pointers(builder: x509.CertificateBuilder, urls: PublicURLs, ca_id: str) -> x509.CertificateBuilder:
    """``builder`` with the CRL distribution point of the CA ``ca_id`` and its delta CRLs as
    Freshest CRL: the issuer's CRL names its delta CRLs too, but relying parties such as
    pyhanko-certvalidator look for delta CRLs in the certificate, so name them here as well."""
    builder = builder.add_extension(x509.CRLDistributionPoints([_distribution_point(urls.crl(ca_id))]), critical=False)
    return builder.add_extension(x509.FreshestCRL([_distribution_point(urls.delta_crl(ca_id))]), critical=False)


def _distribution_point(url: str) -> x509.DistributionPoint:
    return x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)


def _key_usage(bits: set[str]) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    )
    unknown = bits - set(names)
    if unknown:
        raise InternalError(f"Unknown key usage bits {sorted(unknown)}.")
    values = {name: name in bits for name in names}
    return x509.KeyUsage(**values, encipher_only=False, decipher_only=False)


def _sign_arguments(issuer: IssuerContext) -> tuple[SignatureHash, padding.PKCS1v15 | padding.PSS | None]:
    return cryptography_hash(issuer.key.algorithm.default_hash), None


@dataclass(kw_only=True)
class IssuanceToken:
    """A prepared certificate: lint it, then issue it, once."""

    spec: CertificateSpec
    """What the certificate contains."""
    issuer: IssuerContext
    """The CA that signs it."""
    preview: x509.Certificate
    """The certificate signed by a placeholder key, for linting."""
    tbs_der: bytes
    """The TBSCertificate that was linted (the issued one must equal it)."""
    _linted: bool = field(default=False, repr=False)
    """Whether the preview passed the linter."""
    _issued: bool = field(default=False, repr=False)
    """Whether the token was used (it is single-use)."""

    def lint(self, linter: CertificateLinter | None) -> None:
        """Run our profile checks and (if given) pkilint; raise LintFailedError on any finding."""
        problems = list(check_against_spec(self.preview, self.spec, self.issuer))
        if linter is not None:
            for finding in linter.lint(self.preview.public_bytes(serialization.Encoding.DER)):
                problems.append(
                    f"{finding.severity} {finding.code}" + (f": {finding.message}" if finding.message else "")
                )
        if problems:
            raise LintFailedError(
                "The certificate was not issued because the pre-issuance lint found problems: "
                + "; ".join(problems)
                + ".",
                tuple(problems),
            )
        self._linted = True

    def issue(self, keystore: KeyStore) -> x509.Certificate:
        """Have the HSM sign exactly the linted TBS; returns the signed certificate."""
        if not self._linted:
            raise InternalError("A certificate must be linted before it is signed.")
        if self._issued:
            raise InternalError("This issuance token has been used already.")
        self._issued = True
        key = hsm_private_key(keystore, self.issuer.key, expected_message=self.tbs_der)
        algorithm, rsa_padding = _sign_arguments(self.issuer)
        certificate = _builder(self.spec, self.issuer).sign(key, algorithm, rsa_padding=rsa_padding)
        if certificate.tbs_certificate_bytes != self.tbs_der:
            raise InternalError("The signed certificate differs from the linted one.")
        verify_signature(certificate, self.issuer.public_key)
        return certificate


def prepare(spec: CertificateSpec, issuer: IssuerContext) -> IssuanceToken:
    """Build the TBS certificate with a placeholder signature (no key is touched)."""
    placeholder = placeholder_key(issuer.public_key)
    algorithm, rsa_padding = _sign_arguments(issuer)
    preview = _builder(spec, issuer).sign(placeholder, algorithm, rsa_padding=rsa_padding)
    if placeholder.signed != preview.tbs_certificate_bytes:
        raise InternalError("The placeholder signer saw different TBS bytes.")
    return IssuanceToken(spec=spec, issuer=issuer, preview=preview, tbs_der=preview.tbs_certificate_bytes)


def verify_signature(certificate: x509.Certificate, issuer_public_key: PublicKey) -> None:
    """Check the HSM's signature (guards against faulty signing hardware)."""
    algorithm = certificate.signature_hash_algorithm
    if algorithm is None:
        raise InternalError("The certificate has no signature hash algorithm.")
    try:
        if isinstance(issuer_public_key, rsa.RSAPublicKey):
            issuer_public_key.verify(
                certificate.signature, certificate.tbs_certificate_bytes, padding.PKCS1v15(), algorithm
            )
        else:
            issuer_public_key.verify(certificate.signature, certificate.tbs_certificate_bytes, ec.ECDSA(algorithm))
    except InvalidSignature:
        raise InternalError("The HSM produced a signature that does not verify.") from None


def check_against_spec(certificate: x509.Certificate, spec: CertificateSpec, issuer: IssuerContext) -> list[str]:
    """Our own pre-issuance rules, checked on the built (placeholder-signed) certificate."""
    problems: list[str] = []
    serial = certificate.serial_number
    if serial <= 0 or serial.bit_length() > 159:
        problems.append("the serial number must be positive and at most 20 octets")
    if serial.bit_length() < 64:
        problems.append("the serial number has fewer than 64 bits")
    not_before = certificate.not_valid_before_utc
    not_after = certificate.not_valid_after_utc
    if not_after <= not_before:
        problems.append("notAfter is not after notBefore")
    if issuer.certificate is not None:
        if not_after > issuer.certificate.not_valid_after_utc:
            problems.append("the validity ends after the issuing CA's certificate")
        if not_before < issuer.certificate.not_valid_before_utc:
            problems.append("the validity starts before the issuing CA's certificate")
    if spec.profile is not None and not_after > add_years(not_before, spec.profile.max_validity_years):
        problems.append(f"the validity exceeds {spec.profile.max_validity_years} years")
    for attribute in certificate.subject:
        value = attribute.value
        if isinstance(value, str) and unicodedata.normalize("NFC", value) != value:
            problems.append(f"the subject attribute {attribute.oid.dotted_string} is not in Unicode NFC")
        if attribute.oid == NameOID.COUNTRY_NAME and attribute._type != _ASN1Type.PrintableString:
            problems.append("the country name is not a PrintableString")
    if spec.profile is not None:
        try:
            eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            if tuple(eku) != spec.profile.extended_key_usages:
                problems.append("the extended key usages do not match the profile")
        except x509.ExtensionNotFound:
            problems.append("the extended key usage extension is missing")
    if certificate.public_key() != spec.public_key:
        problems.append("the subject public key is not the requested one")
    return problems


def fingerprint_sha256(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def spki_sha256(public_key: PublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()
