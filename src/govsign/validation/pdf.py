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
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.crypt.api import AuthStatus
from pyhanko.pdf_utils.decode_limits import DecodeLimits, DecodePurpose, StreamDecodeLimits
from pyhanko.pdf_utils.misc import PdfDecodeLimitError, PdfError, PdfReadError
from pyhanko.pdf_utils.reader import PdfFileReader, process_data_at_eof
from pyhanko.pdf_utils.xref import XRefBuilder, _prev, parse_xref_table
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffResult, ModificationLevel, StandardDiffPolicy
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
    claimed_timestamp_time,
    has_signature_timestamp,
    indication_of,
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
from govsign.validation.messages import Message, message
from govsign.validation.policy import Deadline, StatusSource, TimeBoundReachedError, ValidationPolicy
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
    stream: BinaryIO,
    policy: ValidationPolicy,
    *,
    now: dt.datetime,
    status: StatusSource | None = None,
    password: str | None = None,
) -> PDFValidation:
    """Validate every signature and document time-stamp of the PDF in ``stream`` at ``now``
    (an encrypted one opened with ``password``, else the empty user password).

    InvalidInputError when the file is not a PDF that can be read, or is built to exhaust the
    verifier (objects nested too deeply, more cross-reference entries, revisions, signatures
    or signature bytes than the policy allows, a stream that decodes to too much). The whole
    verification is bounded by ``policy.timeout_seconds``: what is not validated within it is
    INDETERMINATE, never a hang."""
    deadline = Deadline(policy.timeout_seconds)
    bounded = BoundedStream(stream, deadline, policy)
    try:
        check_structure(bounded, policy)
        reader = PdfFileReader(bounded, strict=False, decode_limits=decode_limits(policy))
        if reader.encrypted and reader.decrypt(password or "").status is AuthStatus.FAILED:
            raise InvalidInputError(
                "The PDF is encrypted and cannot be opened without its password."
                if password is None
                else "The password given does not open the PDF."
            )
        signatures = list(reader.embedded_regular_signatures)
        timestamps = list(reader.embedded_timestamp_signatures)
        if len(signatures) + len(timestamps) > policy.max_signatures:
            raise InvalidInputError(f"The PDF has more than {policy.max_signatures} signatures and time-stamps.")
        for embedded in signatures + timestamps:
            check_signature_size(embedded, policy)
    except InvalidInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the reader raises on a broken or hostile file is a problem, not a 500
        raise _unreadable(exc, bounded) from None
    try:
        return asyncio.run(_validate_all(reader, signatures, timestamps, policy, now, status, deadline, bounded))
    except (RecursionError, PdfDecodeLimitError) as exc:
        raise _unreadable(exc, bounded) from None
    except TimeBoundReachedError:  # reached outside a signature's validation (reading the DSS, say)
        return _all_timed_out(signatures, timestamps, policy, now)


def _all_timed_out(
    signatures: Sequence[EmbeddedPdfSignature],
    timestamps: Sequence[EmbeddedPdfSignature],
    policy: ValidationPolicy,
    now: dt.datetime,
) -> PDFValidation:
    """Every signature and time-stamp INDETERMINATE: the time bound was reached."""
    untimed = dt.datetime.min.replace(tzinfo=dt.UTC)
    return PDFValidation(
        signatures=[timed_out(_signed(signature), now, policy) for signature in signatures],
        timestamps=[
            TimestampSummary(time=untimed, tsa="", indication=Indication.INDETERMINATE, sub_indication="TRY_LATER")
            for _ in timestamps
        ],
        messages=[message("document.time-bound-reached", seconds=f"{policy.timeout_seconds:g}")],
    )


def _unreadable(exc: BaseException, bounded: BoundedStream) -> InvalidInputError:
    """The problem to report for what the reader raised (itself, or an error of its own that
    our bounds caused: the reader wraps some exceptions of its input stream)."""
    chain = _causes(exc)
    if bounded.exceeded is not None:
        return bounded.exceeded
    if any(isinstance(e, RecursionError) for e in chain):
        return InvalidInputError(TOO_DEEP)
    if any(isinstance(e, PdfDecodeLimitError) for e in chain):
        return InvalidInputError(
            f"A stream of the PDF decodes to more data than a verification accepts "
            f"({policy_megabytes(bounded.policy.max_stream_bytes)} MB per stream); the file is refused."
        )
    if any(isinstance(e, TimeBoundReachedError) for e in chain):
        return InvalidInputError(
            f"The PDF could not be read within the verification's time bound of "
            f"{bounded.policy.timeout_seconds:g} seconds; the file is refused."
        )
    if isinstance(exc, PdfError) and "startxref loop" in str(exc):
        return InvalidInputError(
            "The PDF's cross-reference sections point back to each other (a /Prev loop); the file is refused."
        )
    return InvalidInputError(f"The file is not a readable PDF ({reason(exc)}).")


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 32:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


async def _validate_all(
    reader: PdfFileReader,
    signatures: list[EmbeddedPdfSignature],
    timestamps: list[EmbeddedPdfSignature],
    policy: ValidationPolicy,
    now: dt.datetime,
    status: StatusSource | None,
    deadline: Deadline,
    bounded: BoundedStream,
) -> PDFValidation:
    certificates = _all_certificates(signatures + timestamps)
    known = _embedded_revocation(reader) + own_status(status, certificates, policy)
    reports = []
    validated: list[tuple[EmbeddedPdfSignature, Any, SignatureReport]] = []
    cut_short = False
    for signature in signatures:
        signed = _signed(signature)
        if deadline.passed():
            reports.append(timed_out(signed, now, policy))
            cut_short = True
            continue
        spec = _spec(signature, certificates, known, policy, now, deadline)
        try:
            result, integrity = await asyncio.wait_for(_validate_one(signature, spec, now), deadline.remaining())
        except (TimeoutError, TimeBoundReachedError):
            reports.append(timed_out(signed, now, policy))
            cut_short = True
            continue
        except _FORGED as exc:  # a forged or broken signature dictionary or CMS: reported, never a crash
            _reraise_bounds(exc, bounded)
            if deadline.passed():
                reports.append(timed_out(signed, now, policy))
                cut_short = True
            else:
                reports.append(unreadable(signed, now, exc))
            continue
        signed = dataclasses.replace(signed, level=_level(signature, result.api_status, reader))
        stopped = path_building_stopped(spec.signature_validation_spec)
        report = judge(result, signed, integrity, known, policy, now, path_building_stopped=stopped)
        reports.append(report)
        validated.append((signature, result, report))
    document_timestamps = []
    for ts in timestamps:
        summary = await _document_timestamp(ts, _spec(ts, certificates, known, policy, now, deadline), now, deadline)
        cut_short = cut_short or (summary.sub_indication == "TRY_LATER" and deadline.passed())
        document_timestamps.append(summary)
    bound = f"{policy.timeout_seconds:g}"
    messages = [message("document.time-bound-reached", seconds=bound)] if cut_short else []
    return PDFValidation(
        signatures=reports, timestamps=document_timestamps, messages=messages, etsi_xml=_etsi_report(validated)
    )


def _spec(
    signature: EmbeddedPdfSignature,
    certificates: Sequence[asn1_x509.Certificate],
    known: RevocationData,
    policy: ValidationPolicy,
    now: dt.datetime,
    deadline: Deadline,
) -> PdfSignatureValidationSpec:
    """The engine's settings for one signature: nothing is fetched when the known revocation
    data covers its certificates with fresh answers (at the time its time-stamp claims), and
    path building and the difference analysis are bounded."""
    own = _all_certificates([signature])
    claimed = claimed_timestamp_time(signature.signer_info)
    at = Freshness(
        validation_time=now,
        best_signature_time=min(claimed, now) if claimed is not None else now,
        tolerance=dt.timedelta(seconds=policy.time_tolerance_seconds),
    )
    fetch = not covers(known, own, at)
    signature_spec = validation_spec(policy, known, certificates, fetch=fetch, deadline=deadline)
    return PdfSignatureValidationSpec(signature_spec, diff_policy=BoundedDiffPolicy(deadline))


def _reraise_bounds(exc: BaseException, bounded: BoundedStream) -> None:
    """Our bounds on the input, when they are why the engine failed: the whole file is refused
    (the engine turns some of them into errors of its own)."""
    if bounded.exceeded is not None:
        raise bounded.exceeded from None
    if any(isinstance(e, (PdfDecodeLimitError, RecursionError)) for e in _causes(exc)):
        raise _unreadable(exc, bounded) from None


#: What pyHanko raises on a signature dictionary or CMS it cannot make sense of.
_FORGED = (SignatureValidationError, PdfError, ValueError, TypeError, KeyError, IndexError, AttributeError)


def _signed(signature: EmbeddedPdfSignature) -> Signed:
    """What the signature says of itself, as far as it can be read."""
    try:
        certificate = signature.signer_cert
    except _FORGED:  # pragma: no cover - the reader has parsed it already
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
    signature: EmbeddedPdfSignature, spec: PdfSignatureValidationSpec, now: dt.datetime
) -> tuple[Any, Coverage]:
    """The EN 319 102-1 process that fits the signature: long-term validation (5.6.3) when a
    document time-stamp follows it, validation with time (5.5) when it has a signature
    time-stamp, basic validation (5.3) otherwise (each stricter process would refuse a
    signature for lacking what the next level adds). Also the coverage and the difference
    analysis of what was added after the signed revision."""
    reader = signature.reader
    later = [ts for ts in reader.embedded_timestamp_signatures if ts.signed_revision > signature.signed_revision]
    result: Any
    with_time = not later and has_signature_timestamp(signature.signer_info)
    timing = signature_timing(signature.signer_info, now, with_time=with_time)
    if later:
        result = await ades_lta_validation(signature, spec, timing_info=timing)
    else:
        signature.compute_integrity_info(diff_policy=spec.diff_policy)  # type: ignore[no-untyped-call]
        process = ades_with_time_validation if with_time else ades_basic_validation
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
            purpose = DecodePurpose.OCSP_RESPONSE if kind == "ocsp" else DecodePurpose.CRL
            data = stream.get_object().read_data(purpose)
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
        changes.append(f"refused by the difference analysis: {reason(info.diff_result)}")
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
    except PdfDecodeLimitError:
        raise  # a bomb in a field's appearance must not switch the check off: the file is refused
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
    signature: EmbeddedPdfSignature, spec: PdfSignatureValidationSpec, now: dt.datetime, deadline: Deadline
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
    timing = ValidationTimingInfo(validation_time=now, best_signature_time=now, point_in_time_validation=False)
    try:
        deadline.check()
        result = await asyncio.wait_for(
            ades_timestamp_validation(
                signature.signed_data,
                spec.signature_validation_spec,
                expected_tst_imprint=lambda _algorithm: signature.compute_digest(),
                timing_info=timing,
            ),
            deadline.remaining(),
        )
        indication, sub_indication = indication_of(result.ades_subindic)
    except (TimeoutError, TimeBoundReachedError):
        indication, sub_indication = Indication.INDETERMINATE, "TRY_LATER"
    except _FORGED:
        indication, sub_indication = Indication.TOTAL_FAILED, "FORMAT_FAILURE"
        if deadline.passed():
            indication, sub_indication = Indication.INDETERMINATE, "TRY_LATER"
    return TimestampSummary(
        time=gen_time,
        tsa=tsa,
        indication=indication,
        sub_indication=sub_indication,
    )


# -- hostile input ------------------------------------------------------------------------------
#
# pyHanko's reader is written for documents, not for attacks on it, and measured here it costs:
# a compressed cross-reference stream declaring 5 million objects (34 KB on disk) 28 s and
# 850 MB; an 8 MB hex string (a signature's /Contents) 25 s and 750 MB, since strings are
# parsed a byte at a time; arrays nested 100000 deep a RecursionError. Each is bounded before
# or while the reader gets to it, and refused with a sentence saying why.

#: The problem of a file whose objects nest deeper than Python's stack allows the reader.
TOO_DEEP = (
    "The PDF nests its objects too deeply to be read (arrays or dictionaries inside one another, or the "
    "structures of a signature; a real document nests a few dozen levels at most); the file is refused."
)
#: Reads between two checks of the time bound (the reader reads a byte at a time when it parses).
_CHECK_EVERY = 1024
#: Reads of at most this many bytes are the reader parsing objects (larger ones copy stream
#: data, cross-reference rows or byte ranges).
_PARSING_READ = 16
#: The window in which long hex strings are looked for (plus the longest one allowed).
_SCAN_WINDOW = 4 * 1024 * 1024


def policy_megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g}"


class BoundedStream:
    """The PDF as the reader reads it, with the verification's bounds on the reading: every
    so many reads the time bound is checked (so that parsing stops too), and the bytes the
    reader parses object by object are counted against ``policy.max_pdf_parse_bytes``. When a
    bound is exceeded, :attr:`exceeded` says so (the reader wraps some exceptions of its input
    in errors of its own, so the exception raised here may arrive changed)."""

    def __init__(self, raw: BinaryIO, deadline: Deadline, policy: ValidationPolicy) -> None:
        self._raw = raw
        self._deadline = deadline
        self.policy = policy
        """The bounds."""
        self._reads = 0
        self._parsed = 0
        self.exceeded: InvalidInputError | None = None
        """The problem, once a bound on the input was exceeded."""

    def read(self, size: int = -1) -> bytes:
        self._reads += 1
        if 0 <= size <= _PARSING_READ:
            self._parsed += size
            if self._parsed > self.policy.max_pdf_parse_bytes:
                self._refuse(
                    f"The PDF has more than {policy_megabytes(self.policy.max_pdf_parse_bytes)} MB of objects "
                    "to parse (besides its streams); the file is refused."
                )
        if self._reads % _CHECK_EVERY == 0:
            self._deadline.check()
        return self._raw.read(size)

    def readinto(self, buffer: Any) -> int:
        self._deadline.check()
        return self._raw.readinto(buffer)  # type: ignore[attr-defined, no-any-return]

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def _refuse(self, sentence: str) -> None:
        self.exceeded = InvalidInputError(sentence)
        raise self.exceeded

    def __getattr__(self, name: str) -> Any:
        if name == "_raw":  # not set yet (copying): no recursion
            raise AttributeError(name)
        return getattr(self._raw, name)


def decode_limits(policy: ValidationPolicy) -> DecodeLimits:
    """pyHanko's limits on stream decoding (0.38: a ratio and an absolute bound per stream, a
    budget per document), with the absolute bound per stream lowered to the policy's."""
    return DecodeLimits(per_stream=StreamDecodeLimits(max_output_size=policy.max_stream_bytes))


def check_structure(stream: BoundedStream, policy: ValidationPolicy) -> None:
    """InvalidInputError when the file declares more objects or revisions than the policy
    allows, or carries a hex string longer than the largest signature, before the reader
    builds its tables or parses the string."""
    _check_hex_strings(stream, policy)
    counter = _XRefCounter(stream, policy)
    try:
        counter.read_xrefs()  # type: ignore[no-untyped-call]
    finally:
        stream.seek(0)


def _check_hex_strings(stream: BoundedStream, policy: ValidationPolicy) -> None:
    longest = 2 * policy.max_signature_bytes + 1  # hex digits (and whitespace) of the largest signature
    pattern = re.compile(rb"<[0-9A-Fa-f\x00\t\n\x0c\r ]{%d}" % longest)
    raw = stream._raw  # our own scan, not the reader parsing
    raw.seek(0)
    position = 0
    while True:
        raw.seek(position)
        window = raw.read(_SCAN_WINDOW + longest + 1)
        if pattern.search(window):
            raise InvalidInputError(
                f"The PDF holds a string longer than the largest signature accepted "
                f"({policy.max_signature_bytes} bytes); the file is refused."
            )
        if len(window) <= _SCAN_WINDOW:
            return
        position += _SCAN_WINDOW


class _NoObjects:
    """The reader the cross-reference count works for: it resolves nothing (a cross-reference
    section must not depend on objects it locates)."""

    strict = False

    def get_object(self, *_args: Any, **_kwargs: Any) -> Any:
        raise PdfReadError("An indirect object is used where the cross-reference section must be direct.")


class _XRefCounter(XRefBuilder):
    """Walks the cross-reference sections as pyHanko's reader will (the same startxref, /Prev
    and /XRefStm, the same corrections and loop detection: its own loop) but only counts their
    entries and revisions, keeping none of them."""

    def __init__(self, stream: BoundedStream, policy: ValidationPolicy) -> None:
        stream.seek(-1, os.SEEK_END)
        super().__init__(
            handler=_NoObjects(),  # type: ignore[arg-type]
            stream=stream,
            strict=False,
            last_startxref=process_data_at_eof(stream),
        )
        self._policy = policy
        self.entries = 0
        """Cross-reference entries so far."""
        self.revisions = 0
        """Sections (revisions) so far."""

    def _revision(self) -> None:
        self.revisions += 1
        if self.revisions > self._policy.max_pdf_revisions:
            raise InvalidInputError(
                f"The PDF has more than {self._policy.max_pdf_revisions} revisions (incremental updates); "
                "the file is refused."
            )

    def _count(self, entries: int) -> None:
        self.entries += entries
        if self.entries > self._policy.max_pdf_objects:
            raise InvalidInputError(
                f"The PDF's cross-reference sections declare more than {self._policy.max_pdf_objects} objects; "
                "the file is refused."
            )

    def _count_stream(self, xref_stream: generic.StreamObject) -> int | None:
        """A cross-reference stream's entries are those its /Index subsections declare (all of
        /Size without one), whatever its rows take: with /W [0 0 0], none at all."""
        size = int(xref_stream.raw_get("/Size"))
        index = xref_stream.raw_get("/Index") if "/Index" in xref_stream else None
        self._count(sum(int(count) for count in list(index)[1::2]) if index is not None else size)
        if size > self._policy.max_pdf_objects:
            self._count(size)
        return _prev(xref_stream)  # type: ignore[no-any-return]

    def _read_xref_stream(self, declared_startxref: int) -> int | None:
        self._revision()
        _ref, xref_stream = self._read_xref_stream_object()  # type: ignore[no-untyped-call]
        return self._count_stream(xref_stream)

    def _read_xref_table(self, declared_startxref: int) -> int | None:
        self._revision()
        stream = self.stream
        for _entry in parse_xref_table(stream, strict=False):
            self._count(1)
        trailer = generic.DictionaryObject.read_from_stream(
            stream,
            generic.TrailerReference(self.handler),  # type: ignore[no-untyped-call]
        )
        try:  # as pyHanko's reader: a hybrid file's /XRefStm, ignored unless it is a number
            hybrid: int | None = int(trailer.raw_get("/XRefStm"))
        except (KeyError, ValueError, TypeError):
            hybrid = None
        if hybrid is not None:
            position = stream.tell()
            stream.seek(hybrid)
            _ref, xref_stream = self._read_xref_stream_object()  # type: ignore[no-untyped-call]
            self._count_stream(xref_stream)
            stream.seek(position)
        return _prev(trailer)  # type: ignore[no-any-return]


def check_signature_size(signature: EmbeddedPdfSignature, policy: ValidationPolicy) -> None:
    """InvalidInputError for a signature larger than the policy allows, or embedding more
    certificates."""
    contents = signature.pkcs7_content
    if len(contents) > policy.max_signature_bytes:
        raise InvalidInputError(
            f"The signature {signature.field_name or ''} is {len(contents)} bytes, more than the "
            f"{policy.max_signature_bytes} accepted; the file is refused."
        )
    certificates = len(_all_certificates([signature]))
    if certificates > policy.max_certificates_per_signature:
        raise InvalidInputError(
            f"The signature {signature.field_name or ''} embeds {certificates} certificates, more than the "
            f"{policy.max_certificates_per_signature} accepted; the file is refused."
        )


class BoundedDiffPolicy(StandardDiffPolicy):
    """pyHanko's default difference analysis, checking the verification's time bound before
    comparing each revision (a file with many revisions is compared revision by revision, for
    each signature)."""

    def __init__(self, deadline: Deadline) -> None:
        default = DEFAULT_DIFF_POLICY
        super().__init__(
            global_rules=default.global_rules,
            form_rule=default.form_rule,
            reject_object_freeing=default.reject_object_freeing,
            ignore_orphaned_objects=default.ignore_orphaned_objects,
            ignore_identical_objects=default.ignore_identical_objects,
        )
        self._deadline = deadline

    def apply(self, *args: Any, **kwargs: Any) -> Any:
        self._deadline.check()
        return super().apply(*args, **kwargs)


def _etsi_report(validated: Sequence[tuple[EmbeddedPdfSignature, Any, SignatureReport]]) -> str | None:
    # imported when first needed: the XML bindings take a quarter of a second to import, which
    # every CLI command would pay otherwise
    from govsign.validation.etsi import etsi_report

    return etsi_report(validated)
