"""Certificate revocation lists: complete CRLs, delta CRLs and their publication.

* Built from the stored revocations of one CA (an index range scan), never from a scan of the
  certificates table.
* Complete and delta CRLs share one CRL number sequence per CA (RFC 5280 section 5.2.4); numbers
  are allocated under a row lock, so they are unique and increasing across processes.
* Every CRL is built first with a placeholder signer, linted with pkilint, and only then signed
  by the CA key in the HSM, which is bound to the linted TBS bytes.
* The delta CRL names a *base* complete CRL (Delta CRL Indicator) that is kept for up to
  ``delta_base_max_age`` and lists what changed since: new revocations and holds, and
  ``removeFromCRL`` for holds released since the base.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from govsign.clock import Clock
from govsign.errors import InternalError, LintFailedError
from govsign.keystore.api import KeyStore
from govsign.keystore.cryptography_keys import hsm_private_key
from govsign.pki.issuer import PublicURLs, cryptography_hash
from govsign.pki.placeholder import placeholder_key
from govsign.pki.records import CARecord, RevocationReason, RevocationRecord

_REASON_FLAGS: dict[RevocationReason, x509.ReasonFlags] = {
    RevocationReason.KEY_COMPROMISE: x509.ReasonFlags.key_compromise,
    RevocationReason.CA_COMPROMISE: x509.ReasonFlags.ca_compromise,
    RevocationReason.AFFILIATION_CHANGED: x509.ReasonFlags.affiliation_changed,
    RevocationReason.SUPERSEDED: x509.ReasonFlags.superseded,
    RevocationReason.CESSATION_OF_OPERATION: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.CERTIFICATE_HOLD: x509.ReasonFlags.certificate_hold,
    RevocationReason.PRIVILEGE_WITHDRAWN: x509.ReasonFlags.privilege_withdrawn,
    RevocationReason.AA_COMPROMISE: x509.ReasonFlags.aa_compromise,
}


@dataclass(frozen=True, kw_only=True)
class CRLPolicy:
    """How often CRLs are issued."""

    validity: dt.timedelta = dt.timedelta(hours=24)
    """nextUpdate - thisUpdate."""
    refresh_before: dt.timedelta = dt.timedelta(hours=6)
    """Sign a new CRL when less than this remains before nextUpdate."""
    delta_base_max_age: dt.timedelta = dt.timedelta(hours=24)
    """A new base for delta CRLs is chosen when the current one is older than this."""


@dataclass(frozen=True, kw_only=True)
class CRLEntry:
    """One revoked certificate on a CRL."""

    serial: int
    """Serial number."""
    revoked_at: dt.datetime
    """Revocation date."""
    reason: RevocationReason | None
    """Reason code; None for unspecified (RFC 5280: the extension is then absent)."""
    invalidity_date: dt.datetime | None = None
    """Invalidity date extension."""
    remove_from_crl: bool = False
    """Delta CRLs only: a released hold (reason removeFromCRL)."""


@dataclass(frozen=True, kw_only=True)
class StoredCRL:
    """A signed CRL as stored."""

    ca_id: str
    """The CA that signed it."""
    number: int
    """CRL number."""
    is_delta: bool
    """Delta CRL (True) or complete CRL."""
    base_number: int | None
    """For a delta CRL: the complete CRL it applies to."""
    this_update: dt.datetime
    """thisUpdate."""
    next_update: dt.datetime
    """nextUpdate."""
    entry_count: int
    """Number of entries."""
    der: bytes
    """The CRL."""


@dataclass(kw_only=True)
class CRLState:
    """Per-CA numbering and change tracking, read and written under a row lock."""

    ca_id: str
    """The CA."""
    next_crl_number: int
    """The number the next CRL (complete or delta) gets."""
    change_seq: int
    """Counts revocation changes."""
    published_change_seq: int
    """The change count the last published CRLs include."""
    delta_base_number: int | None
    """The complete CRL the current delta CRLs apply to."""


class CRLStore(Protocol):
    def lock_crl_state(self, ca_id: str) -> CRLState: ...
    def save_crl_state(self, state: CRLState) -> None: ...
    def active_revocations(self, ca_id: str) -> list[RevocationRecord]: ...
    def latest_crl(self, ca_id: str, *, delta: bool) -> StoredCRL | None: ...
    def crl_by_number(self, ca_id: str, number: int) -> StoredCRL | None: ...
    def released_holds_since(self, ca_id: str, since: dt.datetime) -> list[str]: ...
    def add_crl(self, crl: StoredCRL) -> None: ...


class CRLLinter(Protocol):
    def lint(self, crl_der: bytes, *, is_arl: bool = False) -> Sequence[Any]: ...


def entry_for(revocation: RevocationRecord) -> CRLEntry:
    reason = None if revocation.reason is RevocationReason.UNSPECIFIED else revocation.reason
    return CRLEntry(
        serial=int(revocation.serial_hex, 16),
        revoked_at=revocation.revoked_at,
        reason=reason,
        invalidity_date=revocation.invalidity_date,
    )


def delta_entries(
    current: Sequence[CRLEntry], base: x509.CertificateRevocationList, released_since_base: Sequence[int] = ()
) -> list[CRLEntry]:
    """What changed between a base complete CRL and the current set of revocations.

    ``released_since_base`` lists holds released after the base was issued: each gets
    removeFromCRL even if the base never listed it, because a later complete CRL may have
    (RFC 5280 section 5.2.4: base + delta must equal the current state for any complete CRL
    numbered at or above the base).
    """
    base_reasons: dict[int, x509.ReasonFlags | None] = {}
    for revoked in base:
        try:
            reason: x509.ReasonFlags | None = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reason = None
        base_reasons[revoked.serial_number] = reason
    changes: list[CRLEntry] = []
    current_serials = set()
    for entry in current:
        current_serials.add(entry.serial)
        flag = _REASON_FLAGS[entry.reason] if entry.reason is not None else None
        if entry.serial not in base_reasons or base_reasons[entry.serial] != flag:
            changes.append(entry)
    removed: set[int] = set()
    for serial, reason in base_reasons.items():
        if serial not in current_serials and reason is x509.ReasonFlags.certificate_hold:
            changes.append(
                CRLEntry(serial=serial, revoked_at=_hold_release_date(base, serial), reason=None, remove_from_crl=True)
            )
            removed.add(serial)
    for serial in released_since_base:
        if serial not in current_serials and serial not in removed and serial not in base_reasons:
            changes.append(CRLEntry(serial=serial, revoked_at=base.last_update_utc, reason=None, remove_from_crl=True))
            removed.add(serial)
    return changes


def _hold_release_date(base: x509.CertificateRevocationList, serial: int) -> dt.datetime:
    revoked = base.get_revoked_certificate_by_serial_number(serial)
    assert revoked is not None
    return revoked.revocation_date_utc


@dataclass(frozen=True, kw_only=True)
class CRLSpec:
    """Everything that goes into one CRL."""

    issuer: CARecord
    """The CA signing it."""
    number: int
    """CRL number."""
    this_update: dt.datetime
    """thisUpdate."""
    next_update: dt.datetime
    """nextUpdate."""
    entries: tuple[CRLEntry, ...]
    """Revoked certificates."""
    delta_base: int | None = None
    """Base CRL number for a delta CRL."""
    freshest_crl_url: str | None = None
    """Where the delta CRLs are (complete CRLs only)."""


def _builder(spec: CRLSpec) -> x509.CertificateRevocationListBuilder:
    issuer_certificate = x509.load_der_x509_certificate(spec.issuer.certificate_der)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_certificate.subject)
        .last_update(spec.this_update)
        .next_update(spec.next_update)
    )
    ski = issuer_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    builder = builder.add_extension(x509.CRLNumber(spec.number), critical=False)
    if spec.delta_base is not None:
        builder = builder.add_extension(x509.DeltaCRLIndicator(spec.delta_base), critical=True)
    elif spec.freshest_crl_url is not None:
        builder = builder.add_extension(
            x509.FreshestCRL(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(spec.freshest_crl_url)], None, None, None)]
            ),
            critical=False,
        )
    for entry in sorted(spec.entries, key=lambda e: e.serial):
        revoked = x509.RevokedCertificateBuilder().serial_number(entry.serial).revocation_date(entry.revoked_at)
        if entry.remove_from_crl:
            revoked = revoked.add_extension(x509.CRLReason(x509.ReasonFlags.remove_from_crl), critical=False)
        elif entry.reason is not None:
            revoked = revoked.add_extension(x509.CRLReason(_REASON_FLAGS[entry.reason]), critical=False)
        if entry.invalidity_date is not None and not entry.remove_from_crl:
            revoked = revoked.add_extension(
                x509.InvalidityDate(entry.invalidity_date.replace(tzinfo=None)), critical=False
            )
        builder = builder.add_revoked_certificate(revoked.build())
    return builder


def sign_crl(
    spec: CRLSpec, keystore: KeyStore, linter: CRLLinter | None, *, is_arl: bool = False
) -> x509.CertificateRevocationList:
    """Build, lint, then have the HSM sign exactly the linted TBS CRL."""
    hash_algorithm = cryptography_hash(spec.issuer.key.algorithm.default_hash)
    issuer_public = x509.load_der_x509_certificate(spec.issuer.certificate_der).public_key()
    preview = _builder(spec).sign(placeholder_key(issuer_public), hash_algorithm)  # type: ignore[arg-type]
    if linter is not None:
        findings = linter.lint(preview.public_bytes(serialization.Encoding.DER), is_arl=is_arl)
        if findings:
            problems = tuple(f"{f.severity} {f.code}" + (f": {f.message}" if f.message else "") for f in findings)
            raise LintFailedError(
                "The CRL was not signed because the lint found problems: " + "; ".join(problems) + ".", problems
            )
    key = hsm_private_key(keystore, spec.issuer.key, expected_message=preview.tbs_certlist_bytes)
    crl = _builder(spec).sign(key, hash_algorithm)
    if crl.tbs_certlist_bytes != preview.tbs_certlist_bytes:
        raise InternalError("The signed CRL differs from the linted one.")
    if not crl.is_signature_valid(issuer_public):  # type: ignore[arg-type]
        raise InternalError("The HSM produced a CRL signature that does not verify.")
    return crl


@dataclass(frozen=True, kw_only=True)
class PublishedCRLs:
    """The CRLs signed by one publication."""

    full: StoredCRL
    """The new complete CRL."""
    delta: StoredCRL
    """The new delta CRL."""


class CRLPublisher:
    """Signs complete and delta CRLs for one CA when they are due."""

    def __init__(
        self,
        *,
        store: CRLStore,
        keystore: KeyStore,
        clock: Clock,
        policy: CRLPolicy,
        urls: PublicURLs,
        linter: CRLLinter | None,
    ) -> None:
        self._store = store
        self._keystore = keystore
        self._clock = clock
        self._policy = policy
        self._urls = urls
        self._linter = linter

    def is_due(self, ca: CARecord) -> bool:
        """Cheap check (no lock): a revocation changed or nextUpdate is near."""
        latest = self._store.latest_crl(ca.id, delta=False)
        if latest is None:
            return True
        return self._near_next_update(ca, latest)

    def _near_next_update(self, ca: CARecord, latest: StoredCRL) -> bool:
        if latest.next_update >= ca.not_after:
            return False  # nextUpdate is capped at the CA's end; re-signing would not extend it
        return latest.next_update - self._clock.now() <= self._policy.refresh_before

    def publish(self, ca: CARecord, *, force: bool = False) -> PublishedCRLs | None:
        """Sign a new complete and delta CRL if due (or forced); None when nothing was due."""
        state = self._store.lock_crl_state(ca.id)
        now = self._clock.now()
        latest_full = self._store.latest_crl(ca.id, delta=False)
        due = (
            force
            or latest_full is None
            or state.change_seq > state.published_change_seq
            or self._near_next_update(ca, latest_full)
        )
        if not due:
            return None
        entries = tuple(entry_for(r) for r in self._store.active_revocations(ca.id))
        next_update = min(now + self._policy.validity, ca.not_after)
        full_number = state.next_crl_number
        full_spec = CRLSpec(
            issuer=ca,
            number=full_number,
            this_update=now,
            next_update=next_update,
            entries=entries,
            freshest_crl_url=self._urls.delta_crl(ca.id),
        )
        stored_full = self._sign_and_store(full_spec)

        base = (
            self._store.crl_by_number(ca.id, state.delta_base_number) if state.delta_base_number is not None else None
        )
        if base is None or now - base.this_update > self._policy.delta_base_max_age:
            base = stored_full
        base_crl = x509.load_der_x509_crl(base.der)
        released = [int(serial, 16) for serial in self._store.released_holds_since(ca.id, base.this_update)]
        changes = tuple(delta_entries(entries, base_crl, released))
        delta_number = full_number + 1
        # The delta CRL has the complete one's issuer and times; it names its base, not a Freshest CRL.
        stored_delta = self._sign_and_store(
            replace(full_spec, number=delta_number, entries=changes, delta_base=base.number, freshest_crl_url=None)
        )
        state.next_crl_number = delta_number + 1
        state.published_change_seq = state.change_seq
        state.delta_base_number = base.number
        self._store.save_crl_state(state)
        return PublishedCRLs(full=stored_full, delta=stored_delta)

    def _sign_and_store(self, spec: CRLSpec) -> StoredCRL:
        """Sign the complete or delta CRL of ``spec`` (an ARL when its CA is a root) and store it."""
        crl = sign_crl(spec, self._keystore, self._linter, is_arl=spec.issuer.parent_id is None)
        stored = StoredCRL(
            ca_id=spec.issuer.id,
            number=spec.number,
            is_delta=spec.delta_base is not None,
            base_number=spec.delta_base,
            this_update=spec.this_update,
            next_update=spec.next_update,
            entry_count=len(spec.entries),
            der=crl.public_bytes(serialization.Encoding.DER),
        )
        self._store.add_crl(stored)
        return stored
