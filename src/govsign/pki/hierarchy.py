"""The CA hierarchy: the root and issuing CAs, created once, and the service certificates of the
issuing CA (the delegated OCSP responder and the TSA), created with it and rolled over later."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from cryptography import x509

from govsign.der import certificate_der
from govsign.errors import (
    AlreadyInitializedError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PolicyViolationError,
)
from govsign.keystore.api import KeyAlgorithm, KeyRef
from govsign.pki.authority import ISSUING_CA_ID, ROOT_CA_ID, CAContext, IssuedCertificate
from govsign.pki.issuer import CertificateKind, CertificateSpec, IssuerContext, random_serial, serial_to_hex
from govsign.pki.lifecycle import CertificateLifecycle
from govsign.pki.names import name_to_text, parse_subject
from govsign.pki.profiles import OCSP_RESPONDER, TSA, CertificateProfile, add_years
from govsign.pki.records import CARecord, CARole, CertificateRecord, RevocationReason

DEFAULT_ROOT_SUBJECT = "CN=govsign Root CA,O=govsign,C=VN"
DEFAULT_ISSUING_SUBJECT = "CN=govsign Issuing CA 1,O=govsign,C=VN"
DEFAULT_OCSP_SUBJECT = "CN=govsign OCSP Responder 1,O=govsign,C=VN"
DEFAULT_TSA_SUBJECT = "CN=govsign Time-Stamping Unit 1,O=govsign,C=VN"

#: The service certificates of an issuing CA, by profile name: the CA's own, never a subscriber's.
SERVICE_PROFILES: dict[str, CertificateProfile] = {OCSP_RESPONDER.name: OCSP_RESPONDER, TSA.name: TSA}
#: Why a service certificate may be replaced (the old one is revoked with this reason).
REPLACEMENT_REASONS = (
    RevocationReason.SUPERSEDED,
    RevocationReason.KEY_COMPROMISE,
    RevocationReason.AFFILIATION_CHANGED,
    RevocationReason.CESSATION_OF_OPERATION,
    RevocationReason.UNSPECIFIED,
)


@dataclass(frozen=True, kw_only=True)
class HierarchySpec:
    """What ``govsign init`` creates; None means the default (or, on a re-run, whatever exists)."""

    root_subject: str | None = None
    """Root CA subject (default CN=govsign Root CA,O=govsign,C=VN)."""
    root_algorithm: KeyAlgorithm | None = None
    """Root CA key (default RSA-4096)."""
    root_validity_years: int | None = None
    """Root CA validity (default 20 years)."""
    issuing_subject: str | None = None
    """Issuing CA subject."""
    issuing_algorithm: KeyAlgorithm | None = None
    """Issuing CA key (default RSA-3072)."""
    issuing_validity_years: int | None = None
    """Issuing CA validity (default 10 years)."""
    service_algorithm: KeyAlgorithm | None = None
    """Key of the OCSP responder and the TSA. Default: RSA-2048 for the OCSP responder (its
    responses are read by the widest range of relying-party software) and EC P-256 for the TSA
    (an ECDSA signature costs the HSM much less than an RSA-2048 one, and every time-stamp needs one;
    every signature validator accepts ECDSA time-stamp tokens)."""


@dataclass(frozen=True, kw_only=True)
class HierarchyResult:
    """The CA hierarchy after ``init``."""

    created: bool
    """False when everything existed already and nothing changed."""
    root: CARecord
    """The root CA."""
    issuing: CARecord
    """The issuing CA."""
    ocsp_responder: CertificateRecord
    """The OCSP responder certificate."""
    tsa: CertificateRecord
    """The TSA certificate."""


class CAHierarchy:
    """Creates the CAs and the issuing CA's service certificates, inside one unit of work."""

    def __init__(self, context: CAContext) -> None:
        self._ca = context

    def initialize(self, spec: HierarchySpec, *, actor: str) -> HierarchyResult:
        """Create the root CA, issuing CA, OCSP responder and TSA once; refuse different parameters."""
        cas = self._ca.ports.cas
        existing_root, existing_issuing = cas.get_ca(ROOT_CA_ID), cas.get_ca(ISSUING_CA_ID)
        if existing_root is not None and existing_issuing is not None:
            return self._complete(spec, existing_root, existing_issuing, actor)
        if existing_root is not None or existing_issuing is not None:
            raise ConflictError(
                "The CA hierarchy is incomplete in the database; restore it from backup before running init."
            )
        root_years = spec.root_validity_years or 20
        issuing_years = spec.issuing_validity_years or 10
        if not 1 <= root_years <= 30:
            raise InvalidInputError("The root CA validity must be between 1 and 30 years.")
        if not 1 <= issuing_years < root_years:
            raise InvalidInputError("The issuing CA validity must be at least 1 year and shorter than the root's.")
        root_subject = parse_subject(spec.root_subject or DEFAULT_ROOT_SUBJECT)
        issuing_subject = parse_subject(spec.issuing_subject or DEFAULT_ISSUING_SUBJECT)
        root, root_certificate = self._create_ca(
            ROOT_CA_ID, root_subject, spec.root_algorithm or KeyAlgorithm.RSA4096, root_years, None, actor
        )
        issuing, _ = self._create_ca(
            ISSUING_CA_ID,
            issuing_subject,
            spec.issuing_algorithm or KeyAlgorithm.RSA3072,
            issuing_years,
            (root, root_certificate),
            actor,
        )
        ocsp = self._issue_service_certificate(issuing, OCSP_RESPONDER, spec.service_algorithm, actor)
        tsa = self._issue_service_certificate(issuing, TSA, spec.service_algorithm, actor)
        return HierarchyResult(created=True, root=root, issuing=issuing, ocsp_responder=ocsp, tsa=tsa)

    def issue_service_certificate(
        self, issuing: CARecord, profile: CertificateProfile, *, actor: str, algorithm: KeyAlgorithm | None = None
    ) -> CertificateRecord:
        """A new OCSP responder or TSA certificate with a new key in the HSM (rollover)."""
        return self._issue_service_certificate(issuing, profile, algorithm, actor)

    def replace_service_certificate(
        self, ca_id: str, profile_name: str, *, reason: RevocationReason, actor: str
    ) -> tuple[IssuedCertificate, CertificateRecord | None]:
        """Replace an issuing CA's OCSP responder or TSA certificate (CA administration): a new
        certificate with a new HSM key, then the current one revoked with ``reason``; returns the
        new certificate and the one it replaced (None when there was no valid one)."""
        profile = SERVICE_PROFILES.get(profile_name)
        if profile is None:
            raise InvalidInputError(
                f"'{profile_name}' is not a service certificate; use one of {', '.join(SERVICE_PROFILES)}."
            )
        if reason not in REPLACEMENT_REASONS:
            raise InvalidInputError(
                f"A service certificate is not replaced for {reason.value}; use one of "
                + ", ".join(r.value for r in REPLACEMENT_REASONS)
                + "."
            )
        issuing = self._ca.ports.cas.get_ca(ca_id)
        if issuing is None:
            raise NotFoundError(f"There is no CA '{ca_id}'.")
        if issuing.role is not CARole.ISSUING:
            raise PolicyViolationError(f"The CA '{ca_id}' has no OCSP responder or TSA certificate.")
        if issuing.not_after <= self._ca.clock.now():
            raise PolicyViolationError(f"The CA '{ca_id}' has expired.")
        current = self._ca.ports.certificates.find_service_certificate(issuer_id=issuing.id, profile=profile.name)
        algorithm = current.key_algorithm if current is not None else None
        record = self._issue_service_certificate(issuing, profile, algorithm, actor)
        if current is not None:
            CertificateLifecycle(self._ca).revoke(current.serial_hex, reason=reason, actor=actor, issuer_id=issuing.id)
        self._ca.audit.record(
            "service-certificate.replace",
            actor=actor,
            object_type="certificate",
            object_id=record.serial_hex,
            details={
                "profile": profile.name,
                "issuer": issuing.id,
                "replaces": current.serial_hex if current is not None else None,
                "reason": reason.value,
            },
        )
        certificate = x509.load_der_x509_certificate(record.certificate_der)
        return IssuedCertificate(record=record, certificate=certificate, generated_key=record.key), current

    # -- steps --------------------------------------------------------------------------------

    def _complete(self, spec: HierarchySpec, root: CARecord, issuing: CARecord, actor: str) -> HierarchyResult:
        """A re-run of init: check the parameters, add service certificates that are missing."""
        _check_same_hierarchy(spec, root, issuing)
        certificates = self._ca.ports.certificates
        created = False
        services: dict[str, CertificateRecord] = {}
        for profile in (OCSP_RESPONDER, TSA):
            record = certificates.find_service_certificate(issuer_id=ISSUING_CA_ID, profile=profile.name)
            if record is None:
                record = self._issue_service_certificate(issuing, profile, spec.service_algorithm, actor)
                created = True
            services[profile.name] = record
        return HierarchyResult(
            created=created,
            root=root,
            issuing=issuing,
            ocsp_responder=services[OCSP_RESPONDER.name],
            tsa=services[TSA.name],
        )

    def _create_ca(
        self,
        ca_id: str,
        subject: x509.Name,
        algorithm: KeyAlgorithm,
        years: int,
        parent: tuple[CARecord, x509.Certificate] | None,
        actor: str,
    ) -> tuple[CARecord, x509.Certificate]:
        """A root CA (no parent) or a CA signed by its parent, stored and audited."""
        now = self._ca.clock.now()
        key = self._ensure_key(f"govsign-{ca_id}", algorithm)
        public = self._ca.keystore.public_key(key)
        if parent is None:
            signer = IssuerContext(
                ca_id=ca_id, name=subject, key=key, public_key=public, certificate=None, parent_ca_id=None
            )
            kind, path_length, not_after = CertificateKind.ROOT_CA, None, add_years(now, years)
            self._ca.progress("Signing the root CA certificate in the HSM")
        else:
            parent_record, parent_certificate = parent
            signer = self._ca.issuer_context(parent_record)
            kind, path_length = CertificateKind.SUBORDINATE_CA, 0
            not_after = min(add_years(now, years), parent_certificate.not_valid_after_utc)
            self._ca.progress("Signing the issuing CA certificate with the root key")
        spec = CertificateSpec(
            kind=kind,
            profile=None,
            subject=subject,
            public_key=public,
            serial=random_serial(),
            not_before=now,
            not_after=not_after,
            policy_oid=self._ca.policy.certificate_policy_oid,
            path_length=path_length,
            urls=self._ca.policy.urls,
        )
        certificate = self._ca.sign(spec, signer)
        record = CARecord(
            id=ca_id,
            role=CARole.ROOT if parent is None else CARole.ISSUING,
            parent_id=parent[0].id if parent is not None else None,
            subject=name_to_text(subject),
            serial_hex=serial_to_hex(spec.serial),
            key=key,
            certificate_der=certificate_der(certificate),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            created_at=now,
        )
        self._ca.ports.cas.add_ca(record)
        details: dict[str, object] = {
            "role": record.role.value,
            "subject": record.subject,
            "serial": record.serial_hex,
            "key_algorithm": key.algorithm.value,
        }
        if record.parent_id is not None:
            details["parent"] = record.parent_id
        self._ca.audit.record("ca.create", actor=actor, object_type="ca", object_id=ca_id, details=details)
        return record, certificate

    def _ensure_key(self, label: str, algorithm: KeyAlgorithm) -> KeyRef:
        """The CA key with this label: left over from an interrupted init, or generated now."""
        existing = self._ca.keystore.find_key(label=label, algorithm=algorithm)
        if existing is not None:
            return existing
        self._ca.progress(f"Generating the {algorithm.value} key '{label}' in the HSM")
        return self._ca.keystore.generate_key_pair(label=label, algorithm=algorithm)

    def _issue_service_certificate(
        self, issuing: CARecord, profile: CertificateProfile, algorithm: KeyAlgorithm | None, actor: str
    ) -> CertificateRecord:
        now = self._ca.clock.now()
        policy = self._ca.policy
        if profile is OCSP_RESPONDER:
            subject_text, days, index = DEFAULT_OCSP_SUBJECT, policy.ocsp_responder_validity_days, "ocsp"
        else:
            subject_text, days, index = DEFAULT_TSA_SUBJECT, policy.tsa_validity_days, "tsa"
        algorithm = algorithm or (KeyAlgorithm.EC_P256 if profile is TSA else KeyAlgorithm.RSA2048)
        label = f"govsign-{index}-{now.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
        key = self._ca.generate_key(label, algorithm)
        try:
            spec = CertificateSpec(
                kind=CertificateKind.END_ENTITY,
                profile=profile,
                subject=parse_subject(subject_text),
                public_key=self._ca.keystore.public_key(key),
                serial=random_serial(),
                not_before=now,
                not_after=min(
                    now + dt.timedelta(days=days), issuing.not_after, add_years(now, profile.max_validity_years)
                ),
                policy_oid=policy.certificate_policy_oid,
                urls=policy.urls,
            )
            self._ca.progress(f"Signing the {profile.name} certificate")
            certificate = self._ca.sign(spec, self._ca.issuer_context(issuing))
            record = self._ca.store(
                certificate,
                profile=profile.name,
                issuer_id=issuing.id,
                key=key,
                algorithm=algorithm,
                email=None,
                replaces_id=None,
            )
        except BaseException:
            self._ca.forget_key(key)
            raise
        self._ca.audit.record(
            "certificate.issue",
            actor=actor,
            object_type="certificate",
            object_id=record.serial_hex,
            details={"profile": profile.name, "issuer": issuing.id, "subject": record.subject, "key": "hsm"},
        )
        return record


def _check_same_hierarchy(spec: HierarchySpec, root: CARecord, issuing: CARecord) -> None:
    differences = []
    for name, wanted_subject, wanted_algorithm, wanted_years, ca in (
        ("root", spec.root_subject, spec.root_algorithm, spec.root_validity_years, root),
        ("issuing CA", spec.issuing_subject, spec.issuing_algorithm, spec.issuing_validity_years, issuing),
    ):
        if wanted_subject is not None and name_to_text(parse_subject(wanted_subject)) != ca.subject:
            differences.append(f"{name} subject is '{ca.subject}'")
        if wanted_algorithm is not None and wanted_algorithm is not ca.key.algorithm:
            differences.append(f"{name} key is {ca.key.algorithm.value}")
        if wanted_years is not None and add_years(ca.not_before, wanted_years) != ca.not_after:
            differences.append(f"{name} validity differs")
    if differences:
        raise AlreadyInitializedError(
            "The CA hierarchy exists already with other parameters ("
            + "; ".join(differences)
            + "); nothing was changed."
        )
