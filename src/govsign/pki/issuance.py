"""Issuance of subscriber certificates: issue (from a CSR or with a key generated in the HSM),
renew (same subject and key) and re-key (same subject, new key).

Everything a request can get wrong is checked before the HSM does anything; then the key is
generated (when asked), the certificate prepared, linted and signed once, stored and audited.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography import x509

from govsign.errors import InvalidInputError, InvalidStateTransitionError, PolicyViolationError
from govsign.keystore.api import KeyAlgorithm, KeyRef, PublicKey
from govsign.pki.authority import CAContext, IssuedCertificate
from govsign.pki.csr import check_csr, key_algorithm_of
from govsign.pki.issuer import CertificateKind, CertificateSpec, random_serial, spki_sha256
from govsign.pki.names import normalise_name, parse_subject
from govsign.pki.profiles import CertificateProfile, add_years, subscriber_profile
from govsign.pki.records import CARecord, CertificateRecord, CertificateStatus

_EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)

#: The audit details of an issuance, given the stored record and the key generated for it (if any).
_Details = Callable[[CertificateRecord, KeyRef | None], Mapping[str, object]]


def check_key_source(csr: bytes | None, generate_key: KeyAlgorithm | None) -> None:
    """The subscriber's key comes from exactly one place: a CSR, or a key generated in the HSM."""
    if (csr is None) == (generate_key is None):
        raise InvalidInputError(
            "Give either a CSR or a key algorithm to generate in the HSM (--csr or --generate-key on the "
            "command line, csr or key_algorithm in the API), not both or neither."
        )


@dataclass(frozen=True, kw_only=True)
class IssuanceRequest:
    """A request for a subscriber certificate."""

    profile: str
    """individual, organization or device."""
    subject: str | None = None
    """RFC 4514 subject; required with key_algorithm, defaults to the CSR's subject."""
    email: str | None = None
    """rfc822Name for the subject alternative name."""
    csr: bytes | None = None
    """PKCS#10 request (PEM or DER)."""
    key_algorithm: KeyAlgorithm | None = None
    """Generate the subscriber's key pair in the HSM with this algorithm instead of taking a CSR."""
    validity_days: int | None = None
    """Validity in days (default from the policy; at most 5 years)."""
    issuer_id: str | None = None
    """Issuing CA; default the active issuing CA."""
    agency_id: str | None = None
    """The subscriber's agency."""


@dataclass(frozen=True, kw_only=True)
class _EndEntity:
    """A subscriber certificate to sign, all of it checked."""

    profile: CertificateProfile
    """The certificate profile."""
    subject: x509.Name
    """The checked subject name."""
    public_key: PublicKey | None
    """The subject key, or None to generate one with ``algorithm``."""
    algorithm: KeyAlgorithm
    """The subject key's algorithm."""
    key: KeyRef | None
    """The subject's key in the HSM when it is already there (renewal of an HSM key)."""
    email: str | None
    """The checked rfc822Name, if any."""
    issuing: CARecord
    """The issuing CA."""
    validity: tuple[dt.datetime, dt.datetime]
    """notBefore and notAfter."""
    replaces: CertificateRecord | None
    """The certificate this one renews or re-keys."""
    agency_id: str | None
    """The subscriber's agency."""


class Issuance:
    """Issues subscriber certificates inside one unit of work."""

    def __init__(self, context: CAContext) -> None:
        self._ca = context

    def issue(self, request: IssuanceRequest, *, actor: str) -> IssuedCertificate:
        """Issue a subscriber certificate; checks everything before touching the HSM."""
        profile = subscriber_profile(request.profile)
        check_key_source(request.csr, request.key_algorithm)
        public_key: PublicKey | None = None
        if request.csr is not None:
            checked = check_csr(request.csr)
            subject = parse_subject(request.subject) if request.subject else normalise_name(checked.subject)
            public_key, algorithm = checked.public_key, checked.key_algorithm
        else:
            if not request.subject:
                raise InvalidInputError(
                    "A subject is required when the key is generated in the HSM (--subject on the command line, "
                    "subject in the API)."
                )
            assert request.key_algorithm is not None
            subject, algorithm = parse_subject(request.subject), request.key_algorithm
        if algorithm not in profile.allowed_key_algorithms:
            raise PolicyViolationError(f"The {profile.name} profile does not accept {algorithm.value} keys.")
        email = _check_email(request.email, profile)
        issuing = self._ca.issuing_ca(request.issuer_id)
        entity = _EndEntity(
            profile=profile,
            subject=subject,
            public_key=public_key,
            algorithm=algorithm,
            key=None,
            email=email,
            issuing=issuing,
            validity=self._validity(profile, issuing, request.validity_days),
            replaces=None,
            agency_id=request.agency_id,
        )
        return self._issue(
            entity,
            actor=actor,
            action="certificate.issue",
            details=lambda record, generated: {
                "profile": profile.name,
                "issuer": issuing.id,
                "subject": record.subject,
                "key": "hsm" if generated else "csr",
                "key_algorithm": algorithm.value,
                "not_after": record.not_after.isoformat(),
            },
        )

    def renew(
        self, serial: str, *, actor: str, validity_days: int | None = None, issuer_id: str | None = None
    ) -> IssuedCertificate:
        """A new certificate for the same subject and key, with a new validity period."""
        old = self._ca.find(serial, issuer_id)
        if old.status is not CertificateStatus.VALID:
            raise InvalidStateTransitionError(
                f"Certificate {old.serial_hex} is {old.status.value}; only a valid or expired certificate can be renewed."
            )
        public = x509.load_der_x509_certificate(old.certificate_der).public_key()
        return self._reissue(old, public, None, validity_days, actor, "certificate.renew")  # type: ignore[arg-type]

    def rekey(
        self,
        serial: str,
        *,
        actor: str,
        csr: bytes | None = None,
        generate_key: KeyAlgorithm | None = None,
        validity_days: int | None = None,
        issuer_id: str | None = None,
    ) -> IssuedCertificate:
        """A new certificate for the same subject with a new key (from a CSR or generated in the HSM)."""
        old = self._ca.find(serial, issuer_id)
        if old.status is CertificateStatus.ON_HOLD:
            raise InvalidStateTransitionError(
                f"Certificate {old.serial_hex} is on hold; release or revoke it before re-keying."
            )
        check_key_source(csr, generate_key)
        if csr is not None:
            checked = check_csr(csr)
            if spki_sha256(checked.public_key) == old.spki_sha256:
                raise InvalidInputError("The new key is the same as the old one; use renew to keep a key.")
            return self._reissue(old, checked.public_key, None, validity_days, actor, "certificate.rekey")
        return self._reissue(old, None, generate_key, validity_days, actor, "certificate.rekey")

    # -- steps --------------------------------------------------------------------------------

    def _reissue(
        self,
        old: CertificateRecord,
        public_key: PublicKey | None,
        generate_key: KeyAlgorithm | None,
        validity_days: int | None,
        actor: str,
        action: str,
    ) -> IssuedCertificate:
        profile = subscriber_profile(old.profile)
        issuing = self._ca.issuing_ca(old.issuer_id)
        entity = _EndEntity(
            profile=profile,
            subject=x509.load_der_x509_certificate(old.certificate_der).subject,
            public_key=public_key,
            algorithm=generate_key or key_algorithm_of(public_key),  # type: ignore[arg-type]
            key=old.key if action == "certificate.renew" else None,
            email=old.email,
            issuing=issuing,
            validity=self._validity(profile, issuing, validity_days),
            replaces=old,
            agency_id=old.agency_id,
        )
        return self._issue(
            entity,
            actor=actor,
            action=action,
            details=lambda _record, _generated: {
                "replaces": old.serial_hex,
                "issuer": issuing.id,
                "profile": profile.name,
            },
        )

    def _issue(
        self,
        entity: _EndEntity,
        *,
        actor: str,
        action: str,
        details: _Details,
    ) -> IssuedCertificate:
        """Generate the key if asked, then prepare, lint, sign, store and audit the certificate;
        a key generated here is destroyed again when anything after it fails."""
        generated: KeyRef | None = None
        if entity.public_key is None:
            generated = self._ca.generate_key(
                f"govsign-sub-{secrets.token_hex(8)}",
                entity.algorithm,
                progress=f"Generating the {entity.algorithm.value} key in the HSM",
            )
        try:
            public_key = self._ca.keystore.public_key(generated) if generated is not None else entity.public_key
            assert public_key is not None
            spec = CertificateSpec(
                kind=CertificateKind.END_ENTITY,
                profile=entity.profile,
                subject=entity.subject,
                public_key=public_key,
                serial=random_serial(),
                not_before=entity.validity[0],
                not_after=entity.validity[1],
                email=entity.email,
                policy_oid=self._ca.policy.certificate_policy_oid,
                urls=self._ca.policy.urls,
            )
            certificate = self._ca.sign(spec, self._ca.issuer_context(entity.issuing))
            record = self._ca.store(
                certificate,
                profile=entity.profile.name,
                issuer_id=entity.issuing.id,
                key=generated or entity.key,
                algorithm=entity.algorithm,
                email=entity.email,
                replaces_id=entity.replaces.id if entity.replaces is not None else None,
                agency_id=entity.agency_id,
            )
            self._ca.audit.record(
                action,
                actor=actor,
                object_type="certificate",
                object_id=record.serial_hex,
                details=details(record, generated),
            )
            self._ca.issued(record)
        except BaseException:
            if generated is not None:
                self._ca.forget_key(generated)
            raise
        return IssuedCertificate(record=record, certificate=certificate, generated_key=generated)

    def _validity(
        self, profile: CertificateProfile, issuing: CARecord, validity_days: int | None
    ) -> tuple[dt.datetime, dt.datetime]:
        now = self._ca.clock.now()
        days = validity_days if validity_days is not None else self._ca.policy.subscriber_default_validity_days
        if days < 1:
            raise InvalidInputError("The validity must be at least one day.")
        if days > 40000:
            raise PolicyViolationError(
                f"A validity of {days} days exceeds the {profile.max_validity_years}-year limit."
            )
        not_after = now + dt.timedelta(days=days)
        if not_after > add_years(now, profile.max_validity_years):
            raise PolicyViolationError(
                f"A validity of {days} days exceeds the {profile.max_validity_years}-year limit for {profile.name} certificates."
            )
        if not_after > issuing.not_after:
            raise PolicyViolationError(
                f"A validity of {days} days would end after the issuing CA's certificate ({issuing.not_after.date().isoformat()})."
            )
        if now < issuing.not_before:
            raise PolicyViolationError("The issuing CA's certificate is not valid yet.")
        return now, not_after


def _check_email(email: str | None, profile: CertificateProfile) -> str | None:
    if email is None or email == "":
        return None
    if not profile.email_allowed:
        raise InvalidInputError(f"The {profile.name} profile carries no e-mail address.")
    if len(email) > 254 or not email.isascii() or not _EMAIL_PATTERN.match(email):
        raise InvalidInputError(f"'{email}' is not a valid e-mail address (ASCII, local@domain).")
    local, domain = email.rsplit("@", 1)
    return f"{local}@{domain.lower()}"
