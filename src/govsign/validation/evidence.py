"""What the validation engine is given (trust, revocation data, fetching rules) and what a report
shows of certificates and their revocation status.

The engine is pyHanko's ETSI EN 319 102-1 implementation (``pyhanko.sign.validation.ades``) over
pyhanko-certvalidator, configured stricter than its defaults: revocation information is required
for every certificate of the chain (no soft fail), fetching is bounded in time, weak algorithms
are refused, path building is bounded, and revocation data must be fresh.

Freshness (issue 11): an OCSP response or CRL counts only when it was issued after the
best-signature-time, or when its nextUpdate has not passed at the validation time; stale data
counts as unavailable. pyhanko-certvalidator has no such rule: its default judges the
validation time against the thisUpdate..nextUpdate window only, ``TIME_AFTER_SIGNATURE`` only
the issue time, and ``retroactive_revinfo`` merely ignores thisUpdate. The rule is therefore
put into the containers of the revocation data the engine is given (:class:`FreshCRL`,
:class:`FreshOCSP`, whose ``usable_at`` the engine asks), the engine's own policy for what it
fetches itself stays the stricter default window, and :func:`revocation_summary` applies the
same rule to what a report shows (so that a report never calls a certificate good on stale
data, whatever path the engine took).
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.sign.validation.policy_decl import (
    LocalKnowledge,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator.authority import CertTrustAnchor, TrustAnchor, TrustQualifiers
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.errors import CRLFetchError, PathBuildingError
from pyhanko_certvalidator.fetchers.api import Fetchers
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
from pyhanko_certvalidator.fetchers.requests_fetchers.crl_client import RequestsCRLFetcher
from pyhanko_certvalidator.ltv.types import ValidationTimingParams
from pyhanko_certvalidator.policy_decl import (
    FRESHNESS_FALLBACK_VALIDITY_DEFAULT,
    REQUIRE_REVINFO,
    CertRevTrustPolicy,
    FreshnessReqType,
)
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import (
    CRLContainer,
    OCSPContainer,
    RevinfoUsability,
    RevinfoUsabilityRating,
)
from pyhanko_certvalidator.sig_validate import DEFAULT_SIGNATURE_VALIDATOR, SignatureValidator

from govsign.validation.policy import Deadline, StatusSource, ValidationPolicy
from govsign.validation.report import CertificateSummary, RevocationSummary, SignerSummary

#: How long an OCSP response without nextUpdate counts as current (pyhanko-certvalidator's own
#: fallback; RFC 5019 responders always set nextUpdate).
NO_NEXT_UPDATE_VALIDITY = FRESHNESS_FALLBACK_VALIDITY_DEFAULT
#: How path building says it hit its bound.
PATH_BUILDING_STOPPED = "Path building stopped"


@dataclass(frozen=True, kw_only=True)
class RevocationData:
    """OCSP responses and CRLs known for a validation, each with where it came from."""

    ocsps: tuple[tuple[asn1_ocsp.OCSPResponse, str], ...] = ()
    """OCSPResponses and their source (embedded-ocsp, govsign-records...)."""
    crls: tuple[tuple[asn1_crl.CertificateList, str], ...] = ()
    """CRLs and their source (embedded-crl...)."""

    def __add__(self, other: RevocationData) -> RevocationData:
        return RevocationData(ocsps=self.ocsps + other.ocsps, crls=self.crls + other.crls)


@dataclass(frozen=True, kw_only=True)
class Freshness:
    """The times revocation data is judged against."""

    validation_time: dt.datetime
    """When the validation happens."""
    best_signature_time: dt.datetime
    """The earliest proof of existence of the signature (the validation time when there is none)."""
    tolerance: dt.timedelta = dt.timedelta(seconds=1)
    """Clock drift tolerated between the CA, the time-stamping authority and us."""


def freshness(this_update: dt.datetime | None, next_update: dt.datetime | None, at: Freshness) -> RevinfoUsability:
    """Whether revocation data issued at ``this_update`` (current until ``next_update``) counts:
    issued after the best-signature-time, or not past its nextUpdate at the validation time.
    Data claiming to be issued after the validation time is not evidence yet (too new), and
    data whose nextUpdate precedes its thisUpdate is nonsense (unclear)."""
    if this_update is None or (next_update is not None and next_update < this_update):
        return RevinfoUsability(RevinfoUsabilityRating.UNCLEAR)
    if this_update > at.validation_time + at.tolerance:
        return RevinfoUsability(RevinfoUsabilityRating.TOO_NEW)
    if this_update >= at.best_signature_time - at.tolerance:
        return RevinfoUsability(RevinfoUsabilityRating.OK)
    current_until = next_update if next_update is not None else this_update + NO_NEXT_UPDATE_VALIDITY
    if at.validation_time - at.tolerance <= current_until:
        return RevinfoUsability(RevinfoUsabilityRating.OK)
    return RevinfoUsability(
        RevinfoUsabilityRating.STALE, last_usable_at=current_until + at.tolerance, compared_to=at.validation_time
    )


def _engine_freshness(timing: ValidationTimingParams) -> Freshness:
    return Freshness(
        validation_time=timing.validation_time,
        best_signature_time=timing.best_signature_time,
        tolerance=timing.time_tolerance,
    )


@dataclass(frozen=True)
class FreshCRL(CRLContainer):
    """A CRL that the engine judges by :func:`freshness` (at the times of the engine's context:
    the validation time, or the control time of a past validation, and the best-signature-time)."""

    deadline: Deadline | None = None
    """The verification's time bound, checked each time the engine considers the CRL."""

    def usable_at(self, policy: CertRevTrustPolicy, timing_params: ValidationTimingParams) -> RevinfoUsability:
        if self.deadline is not None:
            self.deadline.check()
        tbs = self.crl_data["tbs_cert_list"]
        return freshness(tbs["this_update"].native, tbs["next_update"].native, _engine_freshness(timing_params))


@dataclass(frozen=True)
class FreshOCSP(OCSPContainer):
    """An OCSP response (one of its SingleResponses) that the engine judges by :func:`freshness`."""

    deadline: Deadline | None = None
    """The verification's time bound, checked each time the engine considers the response."""

    def usable_at(self, policy: CertRevTrustPolicy, timing_params: ValidationTimingParams) -> RevinfoUsability:
        if self.deadline is not None:
            self.deadline.check()
        single = self.extract_single_response()
        if single is None:
            return RevinfoUsability(RevinfoUsabilityRating.UNCLEAR)
        return freshness(single["this_update"].native, single["next_update"].native, _engine_freshness(timing_params))


class BoundedTrustManager(SimpleTrustManager):
    """Our trust anchors, with paths bounded in length and path building bounded in work.

    pyhanko-certvalidator's path builder asks for the issuers of every certificate it tries and
    walks every combination of the candidates (a document embedding many certificates with one
    name kept it busy past 60 s here). Each question counts as a step; past the budget, or past
    the verification's time bound, path building stops. The anchors' max_path_length bounds the
    number of intermediates that are not self-issued (RFC 5280 6.1.4); the engine's report of
    the validated path bounds the others (see ``engine.judge``)."""

    def __init__(self, roots: Iterable[asn1_x509.Certificate], *, policy: ValidationPolicy, deadline: Deadline | None):
        super().__init__()  # type: ignore[no-untyped-call]
        intermediates = max(0, policy.max_chain_length - 2)
        qualifiers = TrustQualifiers(max_path_length=intermediates, max_aa_path_length=intermediates)
        for root in roots:
            self._register_root(CertTrustAnchor(root, quals=qualifiers))
        self._budget = policy.max_path_building_steps
        self._deadline = deadline
        self.steps = 0
        """Issuer look-ups so far."""
        self.exhausted = False
        """Whether path building hit the budget (the engine reports it as a chain not found)."""

    def find_potential_issuers(self, cert: asn1_x509.Certificate) -> Iterator[TrustAnchor]:
        if self._deadline is not None:
            self._deadline.check()
        self.steps += 1
        if self.steps > self._budget:
            self.exhausted = True
            raise PathBuildingError(
                f"{PATH_BUILDING_STOPPED} after {self._budget} steps: the document offers too many "
                "candidate issuer certificates."
            )
        yield from super().find_potential_issuers(cert)


class _DeadlineSignatureValidator(SignatureValidator):
    """The engine's signature checks (of certificates, CRLs and OCSP responses), each first
    checking the verification's time bound."""

    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline

    def validate_signature(self, *args: Any, **kwargs: Any) -> None:
        self._deadline.check()
        DEFAULT_SIGNATURE_VALIDATOR.validate_signature(*args, **kwargs)


def load_certificates(data: bytes) -> list[bytes]:
    """The DER certificates of a PEM bundle (or of one DER certificate); ValueError otherwise."""
    if pem.detect(data):
        found = [der for kind, _headers, der in pem.unarmor(data, multiple=True) if kind == "CERTIFICATE"]
    else:
        found = [data]
    for der in found:
        x509.load_der_x509_certificate(der)  # raises ValueError for anything that is not one
    if not found:
        raise ValueError("no certificate in it")
    return found


def own_status(
    source: StatusSource | None, certificates: Iterable[asn1_x509.Certificate], policy: ValidationPolicy
) -> RevocationData:
    """Our own records' answers for the certificates we issued, and for the intermediates the
    policy offers (a document may embed the leaf only), with no HTTP round trip."""
    if source is None:
        return RevocationData()
    wanted = {c.dump(): c for c in certificates}
    wanted.update({der: asn1_x509.Certificate.load(der) for der in policy.intermediates if der not in wanted})
    parsed = [x509.load_der_x509_certificate(der) for der in wanted]
    ocsps = tuple((asn1_ocsp.OCSPResponse.load(der), "govsign-records") for der in source.ocsp_responses(parsed))
    crls = tuple((asn1_crl.CertificateList.load(der), "govsign-records") for der in source.crls(parsed))
    return RevocationData(ocsps=ocsps, crls=crls)


def covers(known: RevocationData, certificates: Iterable[asn1_x509.Certificate], at: Freshness | None = None) -> bool:
    """Whether ``known`` says something about every certificate that is not self-signed (and,
    with ``at``, something fresh)."""
    return all(
        _status_of(certificate, None, known, at).status != "unavailable"
        for certificate in certificates
        if certificate.subject != certificate.issuer
    )


class CRLCache:
    """CRLs fetched from distribution points, shared by the verifications of a process: a CRL is
    kept until its nextUpdate (at most a day), a URL that failed is not asked again for
    FAILURE_SECONDS (a dead distribution point costs one bounded fetch, not one per request)."""

    MAX_ENTRIES = 512
    MAX_SECONDS = 24 * 3600.0
    FAILURE_SECONDS = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, asn1_crl.CertificateList | None]] = {}

    def get(self, url: str) -> asn1_crl.CertificateList | bool | None:
        """The CRL kept for ``url``; False when it failed lately; None when nothing is kept."""
        with self._lock:
            entry = self._entries.get(url)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._entries[url]
                return None
            return entry[1] if entry[1] is not None else False

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def put(self, url: str, fetched: asn1_crl.CertificateList | None) -> None:
        """Keep a fetched CRL (or, None, a failure) for ``url``."""
        if fetched is None:
            keep = self.FAILURE_SECONDS
        else:
            next_update = fetched["tbs_cert_list"]["next_update"].native
            if next_update is None:
                return
            keep = min((next_update - dt.datetime.now(dt.UTC)).total_seconds(), self.MAX_SECONDS)
            if keep <= 0:
                return
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.pop(next(iter(self._entries)))
            self._entries[url] = (time.monotonic() + keep, fetched)


#: The process's fetched CRLs.
FETCHED_CRLS = CRLCache()


class _CachingCRLFetcher(RequestsCRLFetcher):
    """pyhanko-certvalidator's CRL fetcher, asking :data:`FETCHED_CRLS` first."""

    async def _fetch_single(self, url: str) -> Any:
        kept = FETCHED_CRLS.get(url)
        if kept is False:
            raise CRLFetchError(f"Failure to fetch CRL from URL {url} (failed moments ago)")
        if kept is not None:
            crl = kept

            async def cached() -> asn1_crl.CertificateList:
                return crl

            # through the fetcher's own bookkeeping, where the engine looks for what was fetched
            return await self._perform_fetch(url, cached)  # type: ignore[no-untyped-call]
        try:
            fetched = await super()._fetch_single(url)  # type: ignore[no-untyped-call]
        except CRLFetchError:
            FETCHED_CRLS.put(url, None)
            raise
        if isinstance(fetched, asn1_crl.CertificateList):
            FETCHED_CRLS.put(url, fetched)
        return fetched


class CachingFetcherBackend(RequestsFetcherBackend):
    """The requests-based fetchers, with fetched CRLs shared between verifications."""

    def get_fetchers(self) -> Fetchers:
        fetchers = super().get_fetchers()
        budget = getattr(fetchers.crl_fetcher, "_budget", None)  # the fetchers' shared budget
        crl_fetcher = _CachingCRLFetcher(per_request_timeout=self.per_request_timeout, budget=budget)  # type: ignore[no-untyped-call]
        return Fetchers(ocsp_fetcher=fetchers.ocsp_fetcher, crl_fetcher=crl_fetcher, cert_fetcher=fetchers.cert_fetcher)


@functools.lru_cache(maxsize=64)
def _parsed(ders: tuple[bytes, ...]) -> tuple[asn1_x509.Certificate, ...]:
    """The policy's anchors or intermediates, parsed in full once and then shared between
    verifications and threads (only read: nothing is parsed lazily any more)."""
    certificates = tuple(asn1_x509.Certificate.load(der) for der in ders)
    for certificate in certificates:
        certificate.native  # noqa: B018 - force a full parse
    return certificates


def validation_spec(
    policy: ValidationPolicy,
    known: RevocationData,
    extra_certificates: Sequence[asn1_x509.Certificate] = (),
    *,
    fetch: bool = True,
    deadline: Deadline | None = None,
) -> SignatureValidationSpec:
    """The engine's settings: our trust, revocation required for the whole chain, fetching
    bounded. ``fetch`` False keeps to the known data: the engine would otherwise fetch first and
    drop the known data when a fetch fails, so when the embedded data and our records cover the
    chain nothing is fetched at all. With ``deadline``, the engine's path building, revocation
    checks and signature checks raise TimeBoundReachedError once it has passed.

    The known revocation data is judged by :func:`freshness`; what the engine fetches itself by
    pyhanko-certvalidator's default window (thisUpdate <= validation time <= nextUpdate), a
    stricter rule (the engine fetches at the validation time, so a fetched answer fits it)."""
    roots = list(_parsed(policy.trust_anchors))
    intermediates = list(_parsed(policy.intermediates))
    cert_policy = CertValidationPolicySpec(
        trust_manager=BoundedTrustManager(roots, policy=policy, deadline=deadline),
        revinfo_policy=CertRevTrustPolicy(
            REQUIRE_REVINFO, freshness_req_type=FreshnessReqType.DEFAULT, retroactive_revinfo=False
        ),
        time_tolerance=dt.timedelta(seconds=policy.time_tolerance_seconds),
        signature_validator=_DeadlineSignatureValidator(deadline)
        if deadline is not None
        else DEFAULT_SIGNATURE_VALIDATOR,
    )
    online = policy.fetch_revocation and fetch
    rule = RevinfoOnlineFetchingRule.NO_HISTORICAL_FETCH if online else RevinfoOnlineFetchingRule.LOCAL_ONLY
    gathering = RevocationInfoGatheringSpec(
        online_fetching_rule=rule,
        fetcher_backend=CachingFetcherBackend(per_request_timeout=policy.fetch_timeout_seconds),
    )
    ocsps: list[OCSPContainer] = [
        FreshOCSP(ocsp_response_data=container.ocsp_response_data, index=container.index, deadline=deadline)
        for response, _ in known.ocsps
        for container in OCSPContainer.load_multi(response)
    ]
    crls: list[CRLContainer] = [FreshCRL(crl, deadline=deadline) for crl, _ in known.crls]
    knowledge = LocalKnowledge(known_ocsps=ocsps, known_crls=crls, known_certs=[*intermediates, *extra_certificates])
    return SignatureValidationSpec(
        cert_validation_policy=cert_policy, revinfo_gathering_policy=gathering, local_knowledge=knowledge
    )


def _attribute(name: asn1_x509.Name, key: str) -> str | None:
    values = [value for rdn in name.chosen for attribute in rdn if (value := _named(attribute, key)) is not None]
    return ", ".join(values) if values else None


def _named(attribute: asn1_x509.NameTypeAndValue, key: str) -> str | None:
    if attribute["type"].native != key and attribute["type"].dotted != key:
        return None
    value = attribute["value"].native
    return str(value) if value is not None else None


def _rfc4514(certificate: asn1_x509.Certificate, issuer: bool = False) -> str:
    parsed = x509.load_der_x509_certificate(certificate.dump())
    return (parsed.issuer if issuer else parsed.subject).rfc4514_string()


def certificate_summary(certificate: asn1_x509.Certificate) -> CertificateSummary:
    validity = certificate["tbs_certificate"]["validity"]
    return CertificateSummary(
        subject=_rfc4514(certificate),
        serial=format(certificate.serial_number, "x"),
        not_before=validity["not_before"].native,
        not_after=validity["not_after"].native,
    )


def signer_summary(certificate: asn1_x509.Certificate) -> SignerSummary:
    """Who signed, as Circular 15/2025 Appendix II asks a verifier to show."""
    subject = certificate.subject
    emails = certificate.subject_alt_name_value.native if certificate.subject_alt_name_value is not None else []
    email = next((value for value in emails if "@" in str(value)), None) or _attribute(subject, "email_address")
    parsed = x509.load_der_x509_certificate(certificate.dump())
    summary = certificate_summary(certificate)
    return SignerSummary(
        common_name=_attribute(subject, "common_name"),
        organization=_attribute(subject, "organization_name"),
        organizational_unit=_attribute(subject, "organizational_unit_name"),
        uid=_attribute(subject, "0.9.2342.19200300.100.1.1"),
        email=str(email) if email is not None else None,
        country=_attribute(subject, "country_name"),
        serial=summary.serial,
        issuer=_rfc4514(certificate, issuer=True),
        not_before=summary.not_before,
        not_after=summary.not_after,
        certificate_pem=parsed.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    )


def revocation_summary(
    chain: Sequence[asn1_x509.Certificate], known: RevocationData, at: Freshness | None = None
) -> list[RevocationSummary]:
    """The status of each certificate of the chain but its root, from the OCSP responses and
    CRLs known (embedded, from our records, or fetched by the engine); with ``at``, only fresh
    data counts (a certificate with stale data only is ``unavailable``)."""
    summaries = []
    for index, certificate in enumerate(chain[:-1] if len(chain) > 1 else chain):
        issuer = chain[index + 1] if index + 1 < len(chain) else None
        summaries.append(_status_of(certificate, issuer, known, at))
    return summaries


def fetched(known: RevocationData, validation_objects: Iterable[Any]) -> RevocationData:
    """The OCSP responses and CRLs the engine used that were not known before: it fetched them."""
    have = {response.dump() for response, _ in known.ocsps} | {crl.dump() for crl, _ in known.crls}
    ocsps: list[tuple[asn1_ocsp.OCSPResponse, str]] = []
    crls: list[tuple[asn1_crl.CertificateList, str]] = []
    for vo in validation_objects:
        if isinstance(vo.value, OCSPContainer) and vo.value.ocsp_response_data.dump() not in have:
            ocsps.append((vo.value.ocsp_response_data, "fetched-ocsp"))
        elif isinstance(vo.value, CRLContainer) and vo.value.crl_data.dump() not in have:
            crls.append((vo.value.crl_data, "fetched-crl"))
    return RevocationData(ocsps=tuple(ocsps), crls=tuple(crls))


def _status_of(
    certificate: asn1_x509.Certificate,
    issuer: asn1_x509.Certificate | None,
    known: RevocationData,
    at: Freshness | None = None,
) -> RevocationSummary:
    subject = _rfc4514(certificate)
    serial = certificate.serial_number
    for response, source in known.ocsps:
        for single, produced_at in _single_responses(response):
            if single["cert_id"]["serial_number"].native != serial:
                continue
            if issuer is not None and single["cert_id"]["issuer_key_hash"].native != _key_hash(issuer, single):
                continue
            if at is not None and not _fresh(single["this_update"].native, single["next_update"].native, at):
                continue
            status = single["cert_status"]
            revoked = status.name == "revoked"
            return RevocationSummary(
                subject=subject,
                status="revoked" if revoked else ("good" if status.name == "good" else "unknown"),
                revoked_at=status.chosen["revocation_time"].native if revoked else None,
                reason=_reason(status.chosen["revocation_reason"].native) if revoked else None,
                source=source,
                produced_at=produced_at,
            )
    for crl, source in known.crls:
        if crl.issuer != certificate.issuer:
            continue
        tbs = crl["tbs_cert_list"]
        if at is not None and not _fresh(tbs["this_update"].native, tbs["next_update"].native, at):
            continue
        entry = next(
            (e for e in crl["tbs_cert_list"]["revoked_certificates"] if e["user_certificate"].native == serial), None
        )
        return RevocationSummary(
            subject=subject,
            status="revoked" if entry is not None else "good",
            revoked_at=entry["revocation_date"].native if entry is not None else None,
            reason=_reason(entry.crl_reason_value.native if entry.crl_reason_value else None)
            if entry is not None
            else None,
            source=source,
            produced_at=crl["tbs_cert_list"]["this_update"].native,
        )
    return RevocationSummary(
        subject=subject, status="unavailable", revoked_at=None, reason=None, source=None, produced_at=None
    )


def _fresh(this_update: dt.datetime | None, next_update: dt.datetime | None, at: Freshness) -> bool:
    return freshness(this_update, next_update, at).rating is RevinfoUsabilityRating.OK


def _single_responses(response: asn1_ocsp.OCSPResponse) -> Iterable[tuple[asn1_ocsp.SingleResponse, dt.datetime]]:
    if response["response_status"].native != "successful":
        return
    basic = response.basic_ocsp_response["tbs_response_data"]
    for single in basic["responses"]:
        yield single, basic["produced_at"].native


def _key_hash(issuer: asn1_x509.Certificate, single: asn1_ocsp.SingleResponse) -> bytes:
    algorithm = single["cert_id"]["hash_algorithm"]["algorithm"].native
    return bytes(getattr(issuer.public_key, algorithm if algorithm in ("sha1", "sha256") else "sha1"))


def _reason(native: str | None) -> str | None:
    return native.replace("_", "-") if native else None


def path_building_stopped(spec: SignatureValidationSpec) -> bool:
    """Whether path building under ``spec`` hit its budget."""
    manager = spec.cert_validation_policy.trust_manager
    return isinstance(manager, BoundedTrustManager) and manager.exhausted
