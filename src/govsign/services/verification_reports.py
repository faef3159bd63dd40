"""Stored verification reports as sealed PDFs a clerk can forward as evidence.

The PDF is rendered from the stored report (Vietnamese and English) and sealed with a PAdES
B-LT signature by the service's seal credential (``GOVSIGN_REPORT_SEAL_CREDENTIAL``): an
organization or device certificate of our CA whose key is in the HSM. It is made once, when
first asked for, and kept beside the report, so every download is the same document; the seal
is one ``signature.create`` audit event like any other signature.
"""

from __future__ import annotations

from pathlib import Path

from govsign.clock import Clock
from govsign.errors import ConfigurationError, NotFoundError, UnavailableError
from govsign.services.authorization import Requester
from govsign.services.documents import SpooledDocument
from govsign.services.signatures import PDFSigningRequest, Signatures
from govsign.services.signing_credentials import needs_activation
from govsign.services.uow import UnitOfWork
from govsign.services.verifications import Verifications
from govsign.signing.stamp import find_font

#: How the audit log names the service when it seals a report.
SEAL_ACTOR = "service:report-seal"
SEAL_FIELD = "GovsignReportSeal"
SEAL_REASON = "Niêm phong báo cáo kiểm tra chữ ký số / Seal of a signature verification report"


class VerificationReportDocuments:
    """Renders and seals stored verification reports."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        clock: Clock,
        verifications: Verifications,
        signatures: Signatures,
        seal_credential: str | None,
        font: Path | None,
        service_name: str = "govsign",
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._verifications = verifications
        self._signatures = signatures
        self._seal_credential = seal_credential
        self._font = font
        self._service_name = service_name

    def pdf(self, verification_id: str, requester: Requester) -> bytes:
        """The sealed PDF of a stored report (made and kept the first time)."""
        report = self._verifications.get(verification_id, requester)
        with self._uow.reading() as work:
            kept = work.ports.verifications.report_pdf(verification_id)
        if kept is not None:
            return kept
        if self._seal_credential is None:
            raise UnavailableError(
                "This service makes no sealed PDF reports: no seal credential is configured "
                "(GOVSIGN_REPORT_SEAL_CREDENTIAL); the JSON and ETSI reports are available."
            )
        try:
            with self._uow.reading() as work:
                seal = work.ca.show(self._seal_credential)
        except NotFoundError:
            raise ConfigurationError(
                f"GOVSIGN_REPORT_SEAL_CREDENTIAL ({self._seal_credential}) names no certificate of this CA."
            ) from None
        if needs_activation(seal):
            raise ConfigurationError(
                f"GOVSIGN_REPORT_SEAL_CREDENTIAL ({self._seal_credential}) is an official's certificate, which only "
                "its holder may use; name an organization or device certificate."
            )
        # imported when first needed: fpdf2 takes a quarter of a second to import, which every CLI
        # command would pay otherwise
        from govsign.validation.report_pdf import ReportFonts, ReportIssuer, render_report_pdf

        rendered = render_report_pdf(
            report,
            ReportFonts.beside(find_font(self._font)),
            ReportIssuer(service_name=self._service_name, seal_subject=seal.record.subject),
            created=self._clock.now(),
        )
        sealer = Requester(actor=SEAL_ACTOR, context=requester.context)
        request = PDFSigningRequest(
            credential=self._seal_credential, level="B-LT", reason=SEAL_REASON, field_name=SEAL_FIELD
        )
        signed = self._signatures.sign_pdf(SpooledDocument.of(rendered), request, sealer, None)
        assert signed.data is not None  # a small document is signed in memory
        with self._uow.transaction(requester.context) as work:
            return work.ports.verifications.keep_report_pdf(verification_id, signed.data)
