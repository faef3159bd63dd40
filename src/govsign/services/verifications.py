"""Verification of signed documents: the validation core over our trust and our own records.

Relying parties verify documents from everywhere, so any role that may verify does, without
agency scoping. The status of certificates our CAs issued comes from our OCSP responder in
process (its pre-produced responses), never through HTTP. Every report is stored (the report
and the document's hash, never the document) and each verification is one audit event.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from govsign.access.policy import Permission
from govsign.clock import Clock
from govsign.errors import GovsignError, InvalidInputError, NotFoundError, UnavailableError
from govsign.pki.records import CARecord, CARole
from govsign.services.audit_log import AuditLog
from govsign.services.authorization import Authorization, Requester
from govsign.services.documents import SpooledDocument
from govsign.services.evidence import EvidenceService
from govsign.services.status import OCSPService
from govsign.services.trust import TrustSettings
from govsign.storage.engine import Database
from govsign.storage.verifications import VerificationRecord
from govsign.validation.cms import content_digest, digest_algorithm, parse_signed_data, validate_cms
from govsign.validation.pdf import validate_pdf
from govsign.validation.policy import ValidationPolicy
from govsign.validation.report import SignatureReport, VerificationReport, conclude, report_json
from govsign.validation.smime import split_smime
from govsign.validation.timestamp import imprint_algorithm, imprint_of, parse_timestamp, validate_timestamp


class OurCAs:
    """Our CAs and their parsed certificates: the rows are read each time (a new or changed CA
    counts at once), the certificates parsed once (every verification needs them: our roots are
    its trust anchors, our issuing CAs its intermediates)."""

    def __init__(self, *, database: Database) -> None:
        self._database = database
        self._parsed: dict[bytes, x509.Certificate] = {}

    def records(self) -> tuple[CARecord, ...]:
        with self._database.read_only() as ports:
            return tuple(ports.cas.list_cas())

    def by_subject(self) -> dict[x509.Name, tuple[CARecord, x509.Certificate]]:
        found = {}
        for ca in self.records():
            certificate = self._parsed.get(ca.certificate_der)
            if certificate is None:
                if len(self._parsed) > 1000:  # CAs are few; never grow without bound
                    self._parsed.clear()
                certificate = self._parsed[ca.certificate_der] = x509.load_der_x509_certificate(ca.certificate_der)
            found[certificate.subject] = (ca, certificate)
        return found


class OwnCAStatus:
    """:class:`~govsign.validation.policy.StatusSource` of the certificates our CAs issued."""

    def __init__(self, *, cas: OurCAs, ocsp: OCSPService, evidence: EvidenceService) -> None:
        self._cas = cas
        self._ocsp = ocsp
        self._evidence = evidence

    def _our_cas(self) -> dict[x509.Name, tuple[CARecord, x509.Certificate]]:
        return self._cas.by_subject()

    def crls(self, certificates: Sequence[x509.Certificate]) -> Sequence[bytes]:
        """The root's current CRLs (published first when there are none or they expired), for
        the CA certificates it issued; an unavailable CRL leaves their status unknown."""
        ours = self._our_cas()
        issuers = {ours[c.issuer][0].id: ours[c.issuer][0] for c in certificates if c.issuer in ours}
        found: list[bytes] = []
        for ca in issuers.values():
            if ca.role is CARole.ROOT:
                with contextlib.suppress(UnavailableError):
                    found += self._evidence.current_crls(ca)
        return found

    def ocsp_responses(self, certificates: Sequence[x509.Certificate]) -> Sequence[bytes]:
        issuers = {name: certificate for name, (_, certificate) in self._our_cas().items()}
        answers = []
        for certificate in certificates:
            issuer = issuers.get(certificate.issuer)
            if issuer is None or certificate.subject == certificate.issuer:
                continue
            request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA256()).build()
            answer = self._ocsp.answer(request.public_bytes(Encoding.DER))
            if answer.status == "successful":
                answers.append(answer.der)
        return answers


@dataclass(frozen=True, kw_only=True)
class StoredReport:
    """A verification report and the id it is stored under."""

    id: str
    """The stored report's id."""
    report: VerificationReport
    """The report."""
    etsi_xml: str | None = None
    """The ETSI TS 119 102-2 XML report, when one was made."""

    def as_json(self) -> dict[str, Any]:
        return report_json(self.report, self.id)


class Verifications:
    """Verifies documents and keeps the reports."""

    def __init__(
        self,
        *,
        database: Database,
        clock: Clock,
        authorization: Authorization,
        audit: AuditLog,
        ocsp: OCSPService,
        evidence: EvidenceService,
        trust: TrustSettings,
    ) -> None:
        self._database = database
        self._clock = clock
        self._authorization = authorization
        self._audit = audit
        self._cas = OurCAs(database=database)
        self._status = OwnCAStatus(cas=self._cas, ocsp=ocsp, evidence=evidence)
        self._trust = trust

    @property
    def status(self) -> OwnCAStatus:
        """Where verifications take our own CAs' certificate status from."""
        return self._status

    def policy(self) -> ValidationPolicy:
        """Our roots and our issuing CAs (as they are now: tokens and documents may embed only the
        leaf), and the configured anchors and intermediates."""
        cas = self._cas.records()
        roots = tuple(ca.certificate_der for ca in cas if ca.role is CARole.ROOT)
        issuing = tuple(ca.certificate_der for ca in cas if ca.role is not CARole.ROOT)
        return ValidationPolicy(
            trust_anchors=roots + self._trust.anchors,
            intermediates=issuing + self._trust.intermediates,
            fetch_timeout_seconds=self._trust.fetch_timeout_seconds,
            timeout_seconds=self._trust.timeout_seconds,
        )

    def verify_pdf(
        self, document: SpooledDocument, requester: Requester, *, password: str | None = None
    ) -> StoredReport:
        """Every signature and document time-stamp of a PDF (an encrypted one opened with
        ``password``, which is neither logged nor stored); the report is stored and audited."""
        action = "document.verify"
        try:
            self._authorization.check_role(requester, Permission.VERIFY)
            now = self._clock.now()
            with document.open() as stream:
                validated = validate_pdf(stream, self.policy(), now=now, status=self._status, password=password)
            report = VerificationReport(
                document_sha256=document.digest("sha256").hex(),
                document_type="pdf",
                validation_time=now,
                conclusion=conclude(validated.signatures, validated.timestamps),
                signatures=validated.signatures,
                timestamps=validated.timestamps,
                messages=validated.messages,
            )
            return self._store(report, requester, etsi_xml=validated.etsi_xml)
        except GovsignError as exc:
            self._audit.record_refusal(action, requester, document.digest("sha256").hex(), exc, object_type="document")
            raise

    def verify_cms(
        self,
        signature: bytes,
        requester: Requester,
        *,
        document: SpooledDocument | None = None,
        digest: bytes | None = None,
    ) -> StoredReport:
        """A CMS/CAdES signature: detached over ``document``, detached over a ``digest`` the
        caller computed with the signature's digest algorithm, or attached (neither given)."""
        identity = hashlib.sha256(signature).hexdigest()
        if document is not None:
            identity = document.digest("sha256").hex()
        elif digest is not None and len(digest) == hashlib.sha256().digest_size:
            identity = digest.hex()
        return self._verify_cms(signature, requester, identity, "cms", document=document, digest=digest)

    def verify_smime(self, message: SpooledDocument, requester: Requester) -> StoredReport:
        """An S/MIME message (multipart/signed, or application/pkcs7-mime signed-data)."""
        identity = message.digest("sha256").hex()
        try:
            parts = split_smime(message.read_all())
        except GovsignError as exc:
            self._audit.record_refusal("document.verify", requester, identity, exc, object_type="document")
            raise
        content = SpooledDocument.of(parts.content) if parts.content is not None else None
        return self._verify_cms(parts.signature_der, requester, identity, "smime", document=content)

    def verify_timestamp(self, token: bytes, document: SpooledDocument, requester: Requester) -> StoredReport:
        """An RFC 3161 token (or a TimeStampResp) over ``document``."""
        identity = document.digest("sha256").hex()
        try:
            self._authorization.check_role(requester, Permission.VERIFY)
            now = self._clock.now()
            signed_data = parse_timestamp(token)
            with document.open() as stream:
                imprint = imprint_of(iter(lambda: stream.read(1 << 20), b""), imprint_algorithm(signed_data))
            checked = validate_timestamp(signed_data, imprint, self.policy(), now=now, status=self._status)
            return self._store(_single(checked, identity, "timestamp", now), requester)
        except GovsignError as exc:
            self._audit.record_refusal("document.verify", requester, identity, exc, object_type="document")
            raise

    def _verify_cms(
        self,
        signature: bytes,
        requester: Requester,
        identity: str,
        document_type: str,
        *,
        document: SpooledDocument | None = None,
        digest: bytes | None = None,
    ) -> StoredReport:
        try:
            self._authorization.check_role(requester, Permission.VERIFY)
            now = self._clock.now()
            signed_data = parse_signed_data(signature)
            raw_digest = digest
            if document is not None:
                with document.open() as stream:
                    raw_digest = content_digest(signed_data, iter(lambda: stream.read(1 << 20), b""))
            elif digest is not None:
                algorithm = digest_algorithm(signed_data)
                if hashlib.new(algorithm).digest_size != len(digest):
                    raise InvalidInputError(f"The digest must be a {algorithm} digest, as the signature's is.")
            checked = validate_cms(signed_data, raw_digest, self.policy(), now=now, status=self._status)
            return self._store(_single(checked, identity, document_type, now), requester)
        except GovsignError as exc:
            self._audit.record_refusal("document.verify", requester, identity, exc, object_type="document")
            raise

    def get(self, verification_id: str, requester: Requester) -> dict[str, Any]:
        """A stored report (as JSON)."""
        self._authorization.check_role(requester, Permission.VERIFY)
        with self._database.read_only() as ports:
            record = ports.verifications.get(verification_id)
        if record is None:
            raise NotFoundError(f"There is no verification report {verification_id}.")
        body: dict[str, Any] = json.loads(record.report_json)
        return body

    def etsi_report(self, verification_id: str, requester: Requester) -> str:
        """A stored report as ETSI TS 119 102-2 XML (made for PDFs)."""
        self._authorization.check_role(requester, Permission.VERIFY)
        with self._database.read_only() as ports:
            record = ports.verifications.get(verification_id)
        if record is None:
            raise NotFoundError(f"There is no verification report {verification_id}.")
        if record.etsi_xml is None:
            raise NotFoundError(f"Verification report {verification_id} has no ETSI TS 119 102-2 rendering.")
        return record.etsi_xml

    def _store(self, report: VerificationReport, requester: Requester, *, etsi_xml: str | None = None) -> StoredReport:
        stored = StoredReport(id=secrets.token_hex(16), report=report, etsi_xml=etsi_xml)
        body = stored.as_json()
        client_id = requester.principal.client_id if requester.principal is not None else None
        record = VerificationRecord(
            id=stored.id,
            created_at=report.validation_time,
            client_id=client_id,
            document_sha256=report.document_sha256,
            document_type=report.document_type,
            conclusion=report.conclusion.value,
            report_json=json.dumps(body, ensure_ascii=False, sort_keys=True),
            etsi_xml=etsi_xml,
        )
        details = {
            "document_sha256": report.document_sha256,
            "conclusion": report.conclusion.value,
            "signatures": len(report.signatures),
            "report": stored.id,
        }
        with self._database.unit_of_work() as ports:
            ports.verifications.add(record)
            self._audit.record(
                ports,
                "document.verify",
                context=requester.context,
                actor=requester.actor,
                object_type="document",
                object_id=report.document_sha256,
                details=details,
            )
        return replace(stored)


def _single(checked: SignatureReport, identity: str, document_type: str, now: dt.datetime) -> VerificationReport:
    """The report of a document with one signature (CMS, S/MIME) or one time-stamp."""
    return VerificationReport(
        document_sha256=identity,
        document_type=document_type,
        validation_time=now,
        conclusion=conclude([checked], []),
        signatures=[checked],
        timestamps=[],
        messages=[],
    )
