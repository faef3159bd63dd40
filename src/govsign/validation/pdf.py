"""Validation of the signatures and document time-stamps of a PDF (PAdES, ETSI EN 319 102-1).

Each signature is validated by pyHanko's long-term validation procedure (EN 319 102-1 5.6.3,
``ades_lta_validation``): the document time-stamps are its evidence record, the DSS and the
signature's own revocation data are used first, our own CAs' status comes from our records, and
anything missing is fetched (bounded in time). On top of the engine's verdict, rules the
engine leaves open are applied here:

* the difference analysis of everything added after the signed revision must succeed and find
  only changes the signature permits (DocMDP) — otherwise the signature fails (EU DSS only warns);
* the algorithms must meet Circular 15/2025 (RSA >= 2048 bits, ECDSA >= P-256, SHA-256 or
  stronger), whatever the time;
* a signature whose chain's revocation status could not be established is never passed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.crypt.api import AuthStatus
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import DiffResult, ModificationLevel
from pyhanko.sign.validation.ades import (
    ades_basic_validation,
    ades_lta_validation,
    ades_timestamp_validation,
    ades_with_time_validation,
)
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.policy_decl import PdfSignatureValidationSpec
from pyhanko.sign.validation.status import ModificationInfo, PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo

from govsign.errors import InvalidInputError
from govsign.validation.engine import (
    ENTIRE,
    Coverage,
    Signed,
    has_signature_timestamp,
    indication_of,
    judge,
    reason,
    timed_out,
    unreadable,
)
from govsign.validation.etsi import etsi_report
from govsign.validation.evidence import (
    RevocationData,
    covers,
    own_status,
    validation_spec,
)
from govsign.validation.messages import Message
from govsign.validation.policy import StatusSource, ValidationPolicy
from govsign.validation.report import Indication, SignatureReport, TimestampSummary


@dataclass(frozen=True, kw_only=True)
class PDFValidation:
    """The signatures and document time-stamps of one PDF."""

    signatures: Sequence[SignatureReport]
    """Each signature, in document order."""
    timestamps: Sequence[TimestampSummary]
    """The document time-stamps."""
    messages: Sequence[Message]
    """What concerns the document as a whole."""
    etsi_xml: str | None = None
    """The ETSI TS 119 102-2 XML report of the signatures (None when there is none)."""


def validate_pdf(
    stream: BinaryIO, policy: ValidationPolicy, *, now: dt.datetime, status: StatusSource | None = None
) -> PDFValidation:
    """Validate every signature and document time-stamp of the PDF in ``stream`` at ``now``.
    InvalidInputError when the file is not a PDF that can be read; a signature that cannot be
    validated in time is INDETERMINATE, never a hang."""
    try:
        reader = PdfFileReader(stream, strict=False)
        if reader.encrypted and reader.decrypt(b"").status is AuthStatus.FAILED:
            raise InvalidInputError("The PDF is encrypted with a password; send it decrypted.")
        signatures = list(reader.embedded_regular_signatures)
        timestamps = list(reader.embedded_timestamp_signatures)
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise InvalidInputError(f"The file is not a readable PDF ({reason(exc)}).") from None
    if len(signatures) + len(timestamps) > policy.max_signatures:
        raise InvalidInputError(f"The PDF has more than {policy.max_signatures} signatures and time-stamps.")
    return asyncio.run(_validate_all(reader, signatures, timestamps, policy, now, status))


async def _validate_all(
    reader: PdfFileReader,
    signatures: list[EmbeddedPdfSignature],
    timestamps: list[EmbeddedPdfSignature],
    policy: ValidationPolicy,
    now: dt.datetime,
    status: StatusSource | None,
) -> PDFValidation:
    certificates = _all_certificates(signatures + timestamps)
    known = _embedded_revocation(reader) + own_status(status, certificates, policy)
    fetch = not covers(known, certificates)
    spec = PdfSignatureValidationSpec(validation_spec(policy, known, certificates, fetch=fetch))
    timing = ValidationTimingInfo(validation_time=now, best_signature_time=now, point_in_time_validation=False)
    reports = []
    validated: list[tuple[EmbeddedPdfSignature, Any, SignatureReport]] = []
    for signature in signatures:
        signed = _signed(signature)
        try:
            result, integrity = await asyncio.wait_for(_validate_one(signature, spec, timing), policy.timeout_seconds)
        except TimeoutError:
            reports.append(timed_out(signed, now, policy))
            continue
        except _FORGED as exc:  # a forged or broken signature dictionary or CMS: reported, never a crash
            reports.append(unreadable(signed, now, exc))
            continue
        signed = dataclasses.replace(signed, level=_level(signature, result.api_status, reader))
        report = judge(result, signed, integrity, known, policy, now)
        reports.append(report)
        validated.append((signature, result, report))
    document_timestamps = [await _document_timestamp(ts, spec, timing, policy) for ts in timestamps]
    return PDFValidation(
        signatures=reports, timestamps=document_timestamps, messages=[], etsi_xml=etsi_report(validated)
    )


#: What pyHanko raises on a signature dictionary or CMS it cannot make sense of.
_FORGED = (SignatureValidationError, PdfError, ValueError, TypeError, KeyError, IndexError, AttributeError)


def _signed(signature: EmbeddedPdfSignature) -> Signed:
    """What the signature says of itself, as far as it can be read."""
    try:
        certificate = signature.signer_cert
    except _FORGED:
        certificate = None
    try:
        claimed = signature.self_reported_timestamp
    except _FORGED:
        claimed = None
    return Signed(
        signer_certificate=certificate,
        digest_algorithm=str(signature.md_algorithm),
        level="PKCS7",
        claimed_signing_time=claimed,
        field_name=signature.field_name,
        revision=signature.signed_revision,
    )


async def _validate_one(
    signature: EmbeddedPdfSignature, spec: PdfSignatureValidationSpec, timing: ValidationTimingInfo
) -> tuple[Any, Coverage]:
    """The EN 319 102-1 process that fits the signature: long-term validation (5.6.3) when a
    document time-stamp follows it, validation with time (5.5) when it has a signature
    time-stamp, basic validation (5.3) otherwise (each stricter process would refuse a
    signature for lacking what the next level adds). Also the coverage and the difference
    analysis of what was added after the signed revision."""
    reader = signature.reader
    later = [ts for ts in reader.embedded_timestamp_signatures if ts.signed_revision > signature.signed_revision]
    result: Any
    if later:
        result = await ades_lta_validation(signature, spec, timing_info=timing)
    else:
        signature.compute_integrity_info(diff_policy=spec.diff_policy)  # type: ignore[no-untyped-call]
        process = ades_with_time_validation if has_signature_timestamp(signature.signer_info) else ades_basic_validation
        result = await process(
            signature.signed_data,
            spec.signature_validation_spec,
            timing_info=timing,
            raw_digest=signature.compute_digest(),
        )
    summary = signature.summarise_integrity_info()
    fields = ("coverage", "diff_result", "docmdp_ok")
    info = ModificationInfo(**{name: summary.get(name) for name in fields})
    return result, _modifications(info, _filled_when_signed(signature))


# -- what the document carries ------------------------------------------------------------------


def _embedded_revocation(reader: PdfFileReader) -> RevocationData:
    """The OCSP responses and CRLs of the document security store (DSS)."""
    try:
        dss = reader.root.get("/DSS")
    except (PdfError, KeyError):
        return RevocationData()
    if dss is None:
        return RevocationData()
    dss = dss.get_object()
    ocsps: list[tuple[asn1_ocsp.OCSPResponse, str]] = []
    crls: list[tuple[asn1_crl.CertificateList, str]] = []
    for key, kind in (("/OCSPs", "ocsp"), ("/CRLs", "crl")):
        for stream in dss.get(key, []) if key in dss else []:
            data = stream.get_object().data
            try:
                if kind == "ocsp":
                    ocsps.append((asn1_ocsp.OCSPResponse.load(data), "embedded-ocsp"))
                else:
                    crls.append((asn1_crl.CertificateList.load(data), "embedded-crl"))
            except ValueError:
                continue
    return RevocationData(ocsps=tuple(ocsps), crls=tuple(crls))


def _all_certificates(signatures: Sequence[EmbeddedPdfSignature]) -> list[asn1_x509.Certificate]:
    """The certificates of the signatures and of their signature time-stamps."""
    signed_datas = []
    for signature in signatures:
        signed_datas.append(signature.signed_data)
        for attribute in signature.signer_info["unsigned_attrs"] or []:
            if attribute["type"].native == "signature_time_stamp_token":
                signed_datas += [token["content"] for token in attribute["values"]]
    return [c.chosen for sd in signed_datas for c in sd["certificates"] or [] if c.name == "certificate"]


# -- one signature ------------------------------------------------------------------------------


def _modifications(info: ModificationInfo, settled: frozenset[str] = frozenset()) -> Coverage:
    """What the signature covers and what changed after it (the difference analysis).

    Form filling after a signature is permitted only into fields that were empty and writable
    when it was signed (``settled`` names the others): re-filling a field the signer saw filled,
    or changing a read-only one, changes what was signed (a shadow attack), which pyHanko's
    difference analysis alone would accept."""
    if info.coverage is None:
        return Coverage(coverage="partial", modified="unknown")
    if info.coverage is SignatureCoverageLevel.ENTIRE_FILE:
        return ENTIRE
    if info.coverage is not SignatureCoverageLevel.ENTIRE_REVISION:
        return Coverage(
            coverage="partial", modified="not-permitted", changes=["the signature does not cover a whole revision"]
        )
    level = info.modification_level
    if info.diff_result is None or level is None:
        return Coverage(coverage="entire-revision", modified="unknown")
    changes = [str(change) for change in getattr(info.diff_result, "changed_form_fields", ())]
    if not isinstance(info.diff_result, DiffResult):
        changes.append(reason(info.diff_result))
    if level is ModificationLevel.LTA_UPDATES:
        lta = ["validation data and document time-stamps (DSS) added", *changes]
        return Coverage(coverage="entire-revision", modified="permitted", changes=lta)
    described = [level.name.lower().replace("_", " "), *changes]
    refilled = sorted(name for name in changes if name in settled)
    if refilled:
        described.append("fields filled or read-only when signed were changed: " + ", ".join(refilled))
        return Coverage(coverage="entire-revision", modified="not-permitted", changes=described)
    if level in (ModificationLevel.FORM_FILLING, ModificationLevel.ANNOTATIONS) and info.docmdp_ok:
        return Coverage(coverage="entire-revision", modified="permitted", changes=described)
    return Coverage(coverage="entire-revision", modified="not-permitted", changes=described)


def _filled_when_signed(signature: EmbeddedPdfSignature) -> frozenset[str]:
    """The fully qualified names of the form fields that, in the signed revision, had a value or
    an appearance, or were read-only (/Ff bit 1)."""
    try:
        signed = signature.reader.get_historical_resolver(signature.signed_revision)
        acroform = signed.root.get("/AcroForm")
        fields = acroform.get_object().get("/Fields", []) if acroform is not None else []
        return frozenset(_settled_fields(fields, ""))
    except _FORGED:
        return frozenset()


def _settled_fields(fields: Any, prefix: str, depth: int = 0) -> Iterator[str]:
    if depth > 32:  # a hostile field tree: deeper than any real form
        return
    for reference in fields:
        field = reference.get_object()
        partial = field.get("/T")
        name = f"{prefix}.{partial}" if prefix and partial is not None else (str(partial) if partial else prefix)
        kids = field.get("/Kids")
        if kids is not None:
            yield from _settled_fields(kids, name, depth + 1)
        if field.get("/FT") == "/Sig":
            continue
        value = field.get("/V")
        read_only = int(field.get("/Ff", 0)) & 1
        if read_only or (value is not None and str(value) != "") or _draws(field.get("/AP")):
            yield name


def _draws(appearance: Any) -> bool:
    """Whether a field's normal appearance draws anything (an empty field's usually does not)."""
    if appearance is None:
        return False
    normal = appearance.get_object().get("/N")
    if normal is None:
        return False
    normal = normal.get_object()
    streams = [normal] if hasattr(normal, "data") else [state.get_object() for state in normal.values()]
    return any(getattr(stream, "data", b"").strip() not in (b"", b"/Tx BMC EMC") for stream in streams)


def _level(signature: EmbeddedPdfSignature, status: PdfSignatureStatus | None, reader: PdfFileReader) -> str:
    """The PAdES baseline level the signature meets (PKCS7 when it is not a PAdES signature)."""
    sub_filter = signature.sig_object.get("/SubFilter")
    if sub_filter != "/ETSI.CAdES.detached":
        return "PKCS7"
    if status is None or status.timestamp_validity is None:
        return "PAdES-BASELINE-B"
    try:
        has_dss = reader.root.get("/DSS") is not None
    except (PdfError, KeyError):
        has_dss = False
    if not has_dss:
        return "PAdES-BASELINE-T"
    later = [ts for ts in reader.embedded_timestamp_signatures if ts.signed_revision > signature.signed_revision]
    return "PAdES-BASELINE-LTA" if later else "PAdES-BASELINE-LT"


async def _document_timestamp(
    signature: EmbeddedPdfSignature,
    spec: PdfSignatureValidationSpec,
    timing: ValidationTimingInfo,
    policy: ValidationPolicy,
) -> TimestampSummary:
    """A document time-stamp (PAdES B-LTA) validated as a time-stamp (EN 319 102-1 5.4)."""
    try:
        tst = signature.signed_data["encap_content_info"]["content"].parsed
        gen_time = tst["gen_time"].native
        tsa = signature.signer_cert.subject.human_friendly
    except _FORGED:
        return TimestampSummary(
            time=dt.datetime.min.replace(tzinfo=dt.UTC),
            tsa="",
            indication=Indication.TOTAL_FAILED,
            sub_indication="FORMAT_FAILURE",
        )
    try:
        result = await asyncio.wait_for(
            ades_timestamp_validation(
                signature.signed_data,
                spec.signature_validation_spec,
                expected_tst_imprint=lambda _algorithm: signature.compute_digest(),
                timing_info=timing,
            ),
            policy.timeout_seconds,
        )
        indication, sub_indication = indication_of(result.ades_subindic)
    except TimeoutError:
        indication, sub_indication = Indication.INDETERMINATE, "TRY_LATER"
    except _FORGED:
        indication, sub_indication = Indication.TOTAL_FAILED, "FORMAT_FAILURE"
    return TimestampSummary(
        time=gen_time,
        tsa=tsa,
        indication=indication,
        sub_indication=sub_indication,
    )


# -- messages -----------------------------------------------------------------------------------
