"""What pyHanko's EN 319 102-1 engine concludes, made into our report: the indication and
sub-indication, the rules we add on top of the engine (Circular 15/2025 algorithms, changes
after signing), the facts a clerk must see and the messages that explain them. Shared by the
PDF and the CMS validations.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from pyhanko.sign.ades.report import AdESStatus, AdESSubIndic
from pyhanko.sign.validation.status import StandardCMSSignatureStatus
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo

from govsign.validation.evidence import (
    PATH_BUILDING_STOPPED,
    Freshness,
    RevocationData,
    certificate_summary,
    fetched,
    revocation_summary,
    signer_summary,
)
from govsign.validation.messages import Message, message
from govsign.validation.policy import ValidationPolicy
from govsign.validation.report import Indication, SignatureReport, TimestampSummary

#: Digest algorithms Circular 15/2025 accepts for signatures.
ACCEPTED_DIGESTS = frozenset({"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512"})
#: The smallest RSA modulus accepted, in bits.
MIN_RSA_BITS = 2048
#: The smallest elliptic curve accepted, in bits.
MIN_EC_BITS = 256


#: Sub-indications the engine gives when a chain cannot be validated, whatever the cause.
_CHAIN_FAILURES = frozenset({"CERTIFICATE_CHAIN_GENERAL_FAILURE", "CHAIN_CONSTRAINTS_FAILURE"})


@dataclass(frozen=True, kw_only=True)
class Coverage:
    """What a signature covers and what changed after it."""

    coverage: str
    """entire-document, entire-revision or partial."""
    modified: str
    """none, permitted, not-permitted, or unknown (the analysis did not conclude)."""
    changes: Sequence[str] = ()
    """What changed, in words."""


ENTIRE = Coverage(coverage="entire-document", modified="none")


@dataclass(frozen=True, kw_only=True)
class Signed:
    """What a signature is, besides the engine's verdict on it."""

    signer_certificate: asn1_x509.Certificate | None
    """The signing certificate as embedded (None when the signature carries none)."""
    digest_algorithm: str
    """The message digest algorithm."""
    level: str
    """The baseline level it meets."""
    claimed_signing_time: dt.datetime | None = None
    """The signing time it claims, when the engine did not read one."""
    field_name: str | None = None
    """The PDF signature field."""
    revision: int | None = None
    """The PDF revision it covers."""


def judge(
    result: Any,
    signed: Signed,
    coverage: Coverage,
    known: RevocationData,
    policy: ValidationPolicy,
    now: dt.datetime,
    *,
    path_building_stopped: bool = False,
) -> SignatureReport:
    """The report of one signature: the engine's EN 319 102-1 verdict, then our rules on top
    (algorithms, chain length, fresh revocation data, coverage, changes after signing), the
    facts and the messages that explain it. ``path_building_stopped``: the engine's path
    building hit its budget (see ``evidence.BoundedTrustManager``)."""
    status: StandardCMSSignatureStatus | None = result.api_status
    subindic: AdESSubIndic = result.ades_subindic
    indication, sub_indication = indication_of(subindic)
    messages: list[Message] = []
    chain = _chain(status, signed.signer_certificate) if signed.signer_certificate is not None else []
    modified, changes = coverage.modified, list(coverage.changes)
    best_time: dt.datetime = getattr(result, "best_signature_time", None) or now
    signer_certificate = status.signing_cert if status is not None else signed.signer_certificate
    if signer_certificate is None:
        return unvalidated(
            signed, now, "NO_SIGNING_CERTIFICATE_FOUND", message("signature.no-signing-certificate"), failed=False
        )
    weak = weak_algorithm(signed.digest_algorithm, signer_certificate)
    timestamps = _signature_timestamps(status)
    everything = known + fetched(known, result.validation_objects)
    at = Freshness(
        validation_time=now,
        best_signature_time=min(best_time, now),
        tolerance=dt.timedelta(seconds=policy.time_tolerance_seconds),
    )
    revocation = revocation_summary(chain, everything, at)
    # a CA or the signer whose status rests on stale data only, or on nothing (the trust anchor
    # of a validated path has no status to establish)
    unestablished = [
        entry
        for certificate, entry in zip(chain, revocation, strict=False)
        if entry.status == "unavailable" and certificate.subject != certificate.issuer
    ]
    stale = {entry.subject for entry in revocation_summary(chain, everything) if entry.status != "unavailable"}

    if weak is not None:
        indication, sub_indication = Indication.INDETERMINATE, "CRYPTO_CONSTRAINTS_FAILURE"
        messages.append(message("signature.weak-algorithm", algorithm=weak))
    too_long = len(chain) > policy.max_chain_length and indication is not Indication.TOTAL_FAILED
    if too_long:
        indication, sub_indication = Indication.INDETERMINATE, "CHAIN_CONSTRAINTS_FAILURE"
        messages.append(message("signature.chain-too-long", length=len(chain), limit=policy.max_chain_length))
    if indication is Indication.TOTAL_PASSED and unestablished:
        # whatever the engine concluded (its past validation slides back to the data's
        # validity), stale revocation data does not establish a status
        indication, sub_indication = Indication.INDETERMINATE, "TRY_LATER"
    if indication is Indication.TOTAL_PASSED:
        if coverage.coverage == "partial" or modified == "not-permitted":
            indication, sub_indication = Indication.TOTAL_FAILED, "FORMAT_FAILURE"
        elif modified == "unknown":
            indication, sub_indication = Indication.INDETERMINATE, "SIG_CONSTRAINTS_FAILURE"
    if path_building_stopped or PATH_BUILDING_STOPPED in (result.failure_msg or ""):
        messages.append(message("signature.path-building-bounded"))
    elif not too_long:  # the engine's own chain failure says less than ours
        messages += _explain(sub_indication, status, signer_certificate, result.failure_msg)
    messages += _coverage_messages(coverage.coverage, modified, changes)
    messages += _timestamp_messages(timestamps)
    if indication is Indication.TOTAL_PASSED:
        messages.insert(0, message("signature.valid"))
    intact = bool(status is not None and status.intact and status.valid)
    if (
        indication is Indication.INDETERMINATE
        and sub_indication in _CHAIN_FAILURES
        and _no_issuer_verifies(chain, policy)
    ):
        sub_indication = "NO_CERTIFICATE_CHAIN_FOUND"
        messages = [m for m in messages if m.code != "signature.chain-failure"]
        messages.insert(0, message("signature.untrusted"))
    if indication is Indication.INDETERMINATE and sub_indication in _CHAIN_FAILURES and unestablished:
        # the chain failed for want of revocation information: EN 319 102-1 says try later
        sub_indication = "TRY_LATER"
        messages = [m for m in messages if m.code != "signature.chain-failure"]
        if not any(m.code == "signature.revocation-unavailable" for m in messages):
            messages.insert(0, message("signature.revocation-unavailable"))
    for entry in unestablished:
        if entry.subject in stale:
            messages.append(message("revocation.stale", subject=entry.subject))
    revoked_then = any(
        r.status == "revoked" and r.revoked_at is not None and r.revoked_at <= best_time for r in revocation[:1]
    )
    validity = signer_certificate["tbs_certificate"]["validity"]
    in_validity = validity["not_before"].native <= best_time <= validity["not_after"].native
    return SignatureReport(
        indication=indication,
        sub_indication=sub_indication,
        level=signed.level,
        field_name=signed.field_name,
        revision=signed.revision,
        signer=signer_summary(signer_certificate),
        chain=[certificate_summary(c) for c in chain],
        claimed_signing_time=getattr(status, "signer_reported_dt", None) or signed.claimed_signing_time,
        best_signature_time=best_time,
        timestamps=timestamps,
        revocation=revocation,
        coverage=coverage.coverage,
        modifications_after_signing="not-permitted" if modified == "unknown" else modified,
        modifications=changes,
        integrity=intact,
        valid_at_signing_time=in_validity and not revoked_then,
        messages=messages,
    )


def signature_timing(signer_info: cms.SignerInfo, now: dt.datetime, *, with_time: bool) -> ValidationTimingInfo:
    """The engine's timing for a signature validated at ``now``. For validation with time
    (EN 319 102-1 5.5: a signature with a signature time-stamp), the best-signature-time the
    engine judges revocation data by is the time its time-stamp claims: revocation data issued
    after it is fresh (the engine then validates the time-stamp itself, and a signature whose
    time-stamp fails is not passed, so a false claim gains nothing). Otherwise, and for the
    long-term process (whose past validation finds the time from the evidence), it is ``now``."""
    claimed = claimed_timestamp_time(signer_info) if with_time else None
    best = min(claimed, now) if claimed is not None else now
    return ValidationTimingInfo(validation_time=now, best_signature_time=best, point_in_time_validation=False)


def claimed_timestamp_time(signer_info: cms.SignerInfo) -> dt.datetime | None:
    """The earliest genTime of the signature's time-stamp tokens (None when it has none or they
    cannot be read)."""
    times = []
    for attribute in signer_info["unsigned_attrs"] or []:
        if attribute["type"].native != "signature_time_stamp_token":
            continue
        for token in attribute["values"]:
            try:
                gen_time = token["content"]["encap_content_info"]["content"].parsed["gen_time"].native
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
            if isinstance(gen_time, dt.datetime):
                times.append(gen_time)
    return min(times, default=None)


def indication_of(subindic: AdESSubIndic) -> tuple[Indication, str | None]:
    """EN 319 102-1 indication and sub-indication (EU DSS spelling) of the engine's verdict."""
    if subindic.status is AdESStatus.PASSED:
        return Indication.TOTAL_PASSED, None
    name = {"REVOCATION_OUT_OF_BOUNDS_NO_POE": "OUT_OF_BOUNDS_NO_POE", "GENERIC": "CERTIFICATE_CHAIN_GENERAL_FAILURE"}
    sub = name.get(subindic.standard_name, subindic.standard_name)
    if subindic.status is AdESStatus.FAILED:
        return Indication.TOTAL_FAILED, sub
    return Indication.INDETERMINATE, sub


def _chain(status: StandardCMSSignatureStatus | None, signer: asn1_x509.Certificate) -> list[asn1_x509.Certificate]:
    """Leaf first, anchor last: the validated path, else the signer's certificate alone."""
    if status is not None and status.validation_path is not None:
        return list(reversed(list(status.validation_path.iter_certs(include_root=True))))
    return [signer]


def weak_algorithm(digest: str, certificate: asn1_x509.Certificate) -> str | None:
    """The algorithm Circular 15/2025 refuses that the signature uses, if any."""
    if digest not in ACCEPTED_DIGESTS:
        return digest.upper()
    public_key = certificate.public_key
    if public_key.algorithm == "rsa" and public_key.bit_size < MIN_RSA_BITS:
        return f"RSA-{public_key.bit_size}"
    if public_key.algorithm == "ec" and public_key.bit_size < MIN_EC_BITS:
        return f"EC-{public_key.bit_size}"
    return None


def _signature_timestamps(status: StandardCMSSignatureStatus | None) -> list[TimestampSummary]:
    ts = getattr(status, "timestamp_validity", None)
    if ts is None:
        return []
    tsa = ts.signing_cert.subject.human_friendly if ts.signing_cert is not None else ""
    passed = bool(ts.intact and ts.valid and ts.trusted)
    return [
        TimestampSummary(
            time=ts.timestamp,
            tsa=tsa,
            indication=Indication.TOTAL_PASSED if passed else Indication.INDETERMINATE,
            sub_indication=None
            if passed
            else (ts.trust_problem_indic.standard_name if ts.trust_problem_indic else "NO_POE"),
        )
    ]


def _explain(
    sub_indication: str | None,
    status: StandardCMSSignatureStatus | None,
    certificate: asn1_x509.Certificate,
    failure: str | None,
) -> list[Message]:
    if sub_indication is None:
        return []
    validity = certificate["tbs_certificate"]["validity"]
    revocation = status.revocation_details if status is not None else None
    revoked_at = revocation.revocation_date.isoformat() if revocation is not None else "?"
    simple = {
        "HASH_FAILURE": ("signature.hash-mismatch", {}),
        "SIG_CRYPTO_FAILURE": ("signature.crypto-failure", {}),
        "FORMAT_FAILURE": ("signature.format", {"reason": failure or "see the coverage of the signature"}),
        "NO_SIGNING_CERTIFICATE_FOUND": ("signature.no-signing-certificate", {}),
        "NO_CERTIFICATE_CHAIN_FOUND": ("signature.untrusted", {}),
        "REVOKED": ("signature.revoked", {"revoked_at": revoked_at}),
        "REVOKED_NO_POE": ("signature.revoked-no-poe", {}),
        "REVOKED_CA_NO_POE": ("signature.ca-revoked-no-poe", {}),
        "TRY_LATER": ("signature.revocation-unavailable", {}),
        "NOT_YET_VALID": ("signature.not-yet-valid", {"not_before": validity["not_before"].native.isoformat()}),
        "EXPIRED": (
            "signature.expired",
            {
                "not_before": validity["not_before"].native.isoformat(),
                "not_after": validity["not_after"].native.isoformat(),
            },
        ),
        "CRYPTO_CONSTRAINTS_FAILURE": None,
        "CERTIFICATE_CHAIN_GENERAL_FAILURE": ("signature.chain-failure", {"reason": failure or "unknown"}),
        "CHAIN_CONSTRAINTS_FAILURE": ("signature.chain-failure", {"reason": failure or "unknown"}),
    }
    entry = simple.get(sub_indication, ("signature.indeterminate", {"reason": failure or sub_indication}))
    if entry is None:
        return []
    code, facts = entry
    return [message(code, **facts)]


def _coverage_messages(coverage: str, modified: str, changes: Sequence[str]) -> list[Message]:
    if coverage == "entire-document":
        return [message("coverage.entire-document")]
    if coverage == "partial":
        return [message("coverage.partial")]
    if modified == "permitted":
        return [message("coverage.permitted-changes", changes="; ".join(changes))]
    if modified == "unknown":
        return [message("coverage.unknown")]
    return [message("coverage.not-permitted", changes="; ".join(changes) or "unknown changes")]


def _timestamp_messages(timestamps: Sequence[TimestampSummary]) -> list[Message]:
    if not timestamps:
        return [message("timestamp.none")]
    return [
        message("timestamp.proves", tsa=ts.tsa, time=ts.time.isoformat())
        if ts.indication is Indication.TOTAL_PASSED
        else message("timestamp.invalid", reason=ts.sub_indication or "unknown")
        for ts in timestamps
    ]


def reason(exc: BaseException) -> str:
    """One line about what was wrong with the file (never a stack trace)."""
    text = " ".join(str(exc).split())[:200]
    return text or type(exc).__name__


def has_signature_timestamp(signer_info: cms.SignerInfo) -> bool:
    """Whether the signature carries a signature time-stamp (CAdES/PAdES B-T and above)."""
    unsigned = signer_info["unsigned_attrs"]
    if not unsigned:
        return False
    return any(attribute["type"].native == "signature_time_stamp_token" for attribute in unsigned)


def unvalidated(
    signed: Signed, now: dt.datetime, sub_indication: str, explanation: Message, *, failed: bool
) -> SignatureReport:
    """The report of a signature the engine could not finish with (timed out, or unreadable)."""
    return SignatureReport(
        indication=Indication.TOTAL_FAILED if failed else Indication.INDETERMINATE,
        sub_indication=sub_indication,
        level=signed.level,
        field_name=signed.field_name,
        revision=signed.revision,
        signer=signer_summary(signed.signer_certificate) if signed.signer_certificate is not None else None,
        chain=[],
        claimed_signing_time=signed.claimed_signing_time,
        best_signature_time=now,
        timestamps=[],
        revocation=[],
        coverage="partial",
        modifications_after_signing="not-permitted",
        modifications=[],
        integrity=False,
        valid_at_signing_time=False,
        messages=[explanation],
    )


def _no_issuer_verifies(chain: Sequence[asn1_x509.Certificate], policy: ValidationPolicy) -> bool:
    """Whether a certificate of the chain found is not signed by the next one, or the top one
    names an issuer among our anchors and intermediates none of which signed it (an anchor with
    the issuer's name but another key, say): then there is no chain, and trying later cannot help."""
    for issued, issuer in itertools.pairwise(chain):
        if not _signed_by(issued.dump(), issuer.dump()):
            return True
    top = chain[-1] if chain else None
    if top is None or top.subject == top.issuer:
        return False
    candidates = [
        der
        for der in (*policy.trust_anchors, *policy.intermediates)
        if asn1_x509.Certificate.load(der).subject == top.issuer
    ]
    return bool(candidates) and not any(_signed_by(top.dump(), der) for der in candidates)


def _signed_by(issued_der: bytes, issuer_der: bytes) -> bool:
    try:
        x509.load_der_x509_certificate(issued_der).verify_directly_issued_by(x509.load_der_x509_certificate(issuer_der))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def timed_out(signed: Signed, now: dt.datetime, policy: ValidationPolicy) -> SignatureReport:
    """INDETERMINATE / TRY_LATER: the verification's time bound was reached before this
    signature was validated."""
    explanation = message("document.timed-out", seconds=f"{policy.timeout_seconds:g}")
    return unvalidated(signed, now, "TRY_LATER", explanation, failed=False)


def unreadable(signed: Signed, now: dt.datetime, error: BaseException) -> SignatureReport:
    """TOTAL_FAILED / FORMAT_FAILURE: the signature cannot be read."""
    return unvalidated(signed, now, "FORMAT_FAILURE", message("signature.format", reason=reason(error)), failed=True)
