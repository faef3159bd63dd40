"""In-process pkilint: lint certificates, CRLs and OCSP responses before the HSM signs them.

Each linter builds exactly the validator container that pkilint's own command-line tool builds
(``lint_pkix_cert``, ``lint_crl -p PKIX``, ``lint_ocsp_response``) and filters the findings by
severity exactly as their ``-s``/``--severity`` option does, so the findings returned here are the
findings those tools would print for the same DER, without spawning a process.

The validator containers are built lazily, once per linter instance, under a lock; after that,
``lint`` only reads them (pkilint's validators keep no per-run state; every run decodes a fresh
document), so one linter may be shared by several threads.

DER that cannot be decoded at all (empty input, PEM text, truncated or trailing octets, a
structure that does not match the ASN.1 schema) does not raise: ``lint`` returns a single FATAL
finding with the code :data:`UNDECODABLE_DOCUMENT_CODE` at the document's root node, whose message
carries pkilint's decoding error. Where the command-line tool would print "Failed to load" and
exit 1, this module therefore reports one FATAL finding, which is at or above any threshold.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from pkilint import loader, pkix, validation
from pkilint.pkix import certificate, crl, extension, name, ocsp

__all__ = [
    "SEVERITY_NAMES",
    "UNDECODABLE_DOCUMENT_CODE",
    "LintFinding",
    "PKILintCRLLinter",
    "PKILintCertificateLinter",
    "PKILintOCSPResponseLinter",
    "format_findings",
]

SEVERITY_NAMES: Final[tuple[str, ...]] = tuple(s.name for s in validation.ValidationFindingSeverity)
"""pkilint's severity names, most severe first: FATAL, ERROR, WARNING, NOTICE, INFO, DEBUG."""

UNDECODABLE_DOCUMENT_CODE: Final = "itu.invalid_asn1_syntax"
"""Code of the FATAL finding for DER that cannot be decoded (pkilint's own code for bad ASN.1)."""


@dataclass(frozen=True, kw_only=True)
class LintFinding:
    """One pkilint finding."""

    severity: str
    """Severity as pkilint names it: "FATAL", "ERROR", "WARNING", "NOTICE", "INFO" or "DEBUG"."""
    code: str
    """pkilint's finding code, e.g. "pkix.certificate_skid_end_entity_missing"."""
    node_path: str
    """Path of the node the finding is about, e.g. "certificate.tbsCertificate.extensions.2"."""
    message: str | None
    """pkilint's extra human-readable detail, or None when it gives none."""


def format_findings(findings: Iterable[LintFinding]) -> tuple[str, ...]:
    """Render findings one readable line each: "WARNING pkix.x (path): message"."""
    lines = []
    for finding in findings:
        line = f"{finding.severity} {finding.code} ({finding.node_path})"
        if finding.message:
            line += f": {finding.message}"
        lines.append(line)
    return tuple(lines)


def _parse_severity(minimum_severity: str) -> Any:
    """Return pkilint's ValidationFindingSeverity for a name, as ``-s`` accepts it."""
    normalized = minimum_severity.strip().upper()
    if normalized not in SEVERITY_NAMES:
        raise ValueError(f"Unknown pkilint severity {minimum_severity!r}; expected one of {', '.join(SEVERITY_NAMES)}.")
    return validation.ValidationFindingSeverity[normalized]


class _LazyValidator:
    """A pkilint validator container built on first use, once, under a lock."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._validator: Any | None = None

    def get(self) -> Any:
        validator = self._validator
        if validator is None:
            with self._lock:
                validator = self._validator
                if validator is None:
                    validator = self._build()
                    self._validator = validator
        return validator


def _run(
    validator: Any,
    load_der: Callable[..., Any],
    der: bytes,
    *,
    document_name: str,
    root_node_name: str,
    threshold: Any,
) -> tuple[LintFinding, ...]:
    """Decode ``der`` as pkilint's loader does, validate it and keep findings at ``threshold``+."""
    try:
        document = load_der(bytes(der), document_name, document_name)
    except ValueError as error:
        # pkilint raises ValueError (SubstrateDecodingFailedError or "Substrate is not
        # DER-encoded") for anything it cannot decode; the CLI prints it and exits 1.
        return (
            LintFinding(
                severity=validation.ValidationFindingSeverity.FATAL.name,
                code=UNDECODABLE_DOCUMENT_CODE,
                node_path=root_node_name,
                message=f"The {document_name} is not decodable DER: {error}",
            ),
        )
    results = validator.validate(document.root)
    findings: list[LintFinding] = []
    for result in results:
        node_path = str(result.node.path)
        for description in result.finding_descriptions:
            # Lower numbers are more severe; this is report.get_findings_count's filter.
            if description.finding.severity <= threshold:
                message = description.message
                findings.append(
                    LintFinding(
                        severity=description.finding.severity.name,
                        code=str(description.finding.code),
                        node_path=node_path,
                        message=str(message) if message else None,
                    )
                )
    return tuple(findings)


def _build_certificate_validator() -> Any:
    """The validator container of pkilint/bin/lint_pkix_cert.py."""
    return certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )


def _build_crl_validator() -> Any:
    """The validator container of pkilint/bin/lint_crl.py with ``-p PKIX`` (either ``-t``)."""
    return crl.create_pkix_crl_validator_container(
        [
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [
            crl.create_issuer_validator_container([]),
            crl.create_validity_validator_container([]),
            crl.create_extensions_validator_container([]),
        ],
    )


def _build_ocsp_response_validator() -> Any:
    """The validator container of pkilint/bin/lint_ocsp_response.py."""
    return ocsp.create_pkix_ocsp_response_validator_container(
        [
            ocsp.create_response_decoder(),
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [],
    )


class _PKILintLinter:
    """Shared machinery: a severity threshold, one lazily built validator container, and the
    pkilint loader and root node name of the kind of document linted."""

    def __init__(
        self, minimum_severity: str, build: Callable[[], Any], load_der: Callable[..., Any], root_node_name: str
    ) -> None:
        self._threshold = _parse_severity(minimum_severity)
        self._validator = _LazyValidator(build)
        self._load_der = load_der
        self._root_node_name = root_node_name

    @property
    def minimum_severity(self) -> str:
        """The least severe severity reported, e.g. "WARNING"."""
        return str(self._threshold.name)

    def prepare(self) -> None:
        """Build the validators now (e.g. at start-up) instead of on the first ``lint``."""
        self._validator.get()

    def _lint(self, der: bytes, document_name: str) -> tuple[LintFinding, ...]:
        return _run(
            self._validator.get(),
            self._load_der,
            der,
            document_name=document_name,
            root_node_name=self._root_node_name,
            threshold=self._threshold,
        )


class PKILintCertificateLinter(_PKILintLinter):
    """Lints DER certificates with pkilint's PKIX certificate validators (as lint_pkix_cert)."""

    def __init__(self, minimum_severity: str = "WARNING") -> None:
        """Report findings at ``minimum_severity`` or more severe; ValueError for unknown names."""
        super().__init__(minimum_severity, _build_certificate_validator, loader.load_der_certificate, "certificate")

    def lint(self, certificate_der: bytes) -> tuple[LintFinding, ...]:
        """Findings at or above the minimum severity, as ``lint_pkix_cert lint -s SEVERITY``.

        Undecodable DER gives one FATAL finding (:data:`UNDECODABLE_DOCUMENT_CODE`).
        """
        return self._lint(certificate_der, "certificate")


class PKILintCRLLinter(_PKILintLinter):
    """Lints DER CRLs and ARLs with pkilint's PKIX CRL validators (as lint_crl -p PKIX)."""

    def __init__(self, minimum_severity: str = "WARNING") -> None:
        """Report findings at ``minimum_severity`` or more severe; ValueError for unknown names."""
        super().__init__(minimum_severity, _build_crl_validator, loader.load_der_crl, "certificateList")

    def lint(self, crl_der: bytes, *, is_arl: bool = False) -> tuple[LintFinding, ...]:
        """Findings at or above the minimum severity, as ``lint_crl lint -t CRL|ARL -p PKIX``.

        ``is_arl`` selects ``-t ARL``. In pkilint's PKIX profile the CRL type only matters for
        the BR profile's extra validators, so both types run the same validators; the argument
        is kept so callers state what they lint. Undecodable DER gives one FATAL finding.
        """
        return self._lint(crl_der, "ARL" if is_arl else "CRL")


class PKILintOCSPResponseLinter(_PKILintLinter):
    """Lints DER OCSP responses with pkilint's RFC 6960 validators (as lint_ocsp_response)."""

    def __init__(self, minimum_severity: str = "WARNING") -> None:
        """Report findings at ``minimum_severity`` or more severe; ValueError for unknown names."""
        super().__init__(
            minimum_severity, _build_ocsp_response_validator, loader.load_der_ocsp_response, "oCSPResponse"
        )

    def lint(self, response_der: bytes) -> tuple[LintFinding, ...]:
        """Findings at or above the minimum severity, as ``lint_ocsp_response lint -s SEVERITY``.

        Undecodable DER gives one FATAL finding (:data:`UNDECODABLE_DOCUMENT_CODE`).
        """
        return self._lint(response_der, "OCSP response")
