"""Sole control of officials' signing keys: enrolment of second factors and per-transaction
signature activations (SCAL2 in CSC terms).

An official enrols a TOTP seed (shown once, then held only by the HSM as an HMAC-only secret)
and/or a PIN (kept as a scrypt hash). To sign, the calling system asks for an activation for
exactly the hashes of the documents, passing the official's one-time code and/or PIN; every
enrolled factor must be presented. The activation is a random token whose SHA-256 is stored with
the hashes, the credential and the calling system; it expires within five minutes and is used
up by the first signing that presents it. Consecutive wrong factors lock the credential for a
while. Every activation, every refusal and every failed factor is in the audit log; no factor
ever is.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from govsign.access.policy import Permission
from govsign.activation.binding import (
    MAX_ACTIVATION_HASHES,
    ActivationScope,
    ActivationState,
    activation_token_hash,
    check_activation,
    new_activation_token,
)
from govsign.activation.factors import (
    TOTPEnrolment,
    check_new_pin,
    check_totp_format,
    hash_pin,
    match_totp,
    new_totp_seed,
    pin_matches,
    totp_enrolment,
)
from govsign.clock import Clock
from govsign.errors import (
    ConflictError,
    ForbiddenError,
    GovsignError,
    InvalidInputError,
    PolicyViolationError,
    RateLimitedError,
)
from govsign.keystore.api import KeyStore, SecretRef
from govsign.pki.authority import CertificateView
from govsign.pki.records import CertificateRecord, CertificateStatus
from govsign.services.audit_log import AuditLog
from govsign.services.authorization import Authorization, Requester
from govsign.services.signing_credentials import SOLE_CONTROL_PROFILE, check_may_sign, needs_activation
from govsign.services.uow import UnitOfWork, Work
from govsign.storage.ports import SQLPorts
from govsign.storage.sole_control import CredentialFactorsRecord, SignatureActivationRecord

log = logging.getLogger(__name__)

TOTP_ISSUER = "govsign"


@dataclass(frozen=True, kw_only=True)
class SoleControlPolicy:
    """How long activations live and how wrong factors are punished (from the settings)."""

    activation_ttl_seconds: int = 300
    """Lifetime of a signature activation (at most five minutes)."""
    factor_failure_limit: int = 5
    """Wrong one-time codes or PINs in a row before the factors lock."""
    factor_lockout_minutes: int = 15
    """How long the factors stay locked."""


@dataclass(frozen=True, kw_only=True)
class FactorStatus:
    """Which factors a credential has, and whether they are locked (never the factors)."""

    credential: str
    """Serial of the credential."""
    totp: bool
    """A TOTP seed is enrolled."""
    pin: bool
    """A PIN is set."""
    locked_until: dt.datetime | None
    """Until when wrong attempts locked the factors (None: not locked)."""


@dataclass(frozen=True, kw_only=True)
class ActivationRequest:
    """What a signing system asks the official to activate, with the official's factors."""

    hash_algorithm: str
    """Algorithm of the hashes."""
    hashes: Sequence[bytes]
    """The hashes of exactly the documents to sign."""
    count: int | None = None
    """How many signatures (the number of hashes when not given)."""
    otp: str | None = None
    """The official's one-time code, when a TOTP seed is enrolled."""
    pin: str | None = None
    """The official's PIN, when one is set."""


@dataclass(frozen=True, kw_only=True)
class ActivationGrant:
    """A signature activation, returned once to the calling system."""

    token: str
    """The activation, to present when signing (shown once; only its hash is kept)."""
    credential: str
    """Serial of the credential it activates."""
    hash_algorithm: str
    """Algorithm of the hashes it covers."""
    count: int
    """How many hashes it covers."""
    expires_at: dt.datetime
    """When it expires."""


@dataclass(frozen=True, kw_only=True)
class _Refusal:
    """A factor check that failed: committed (failure count, audit), then raised."""

    error: GovsignError
    """The error to raise once the transaction has committed."""


class SoleControl:
    """Factor enrolment and signature activations."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        keystore: KeyStore,
        clock: Clock,
        authorization: Authorization,
        audit: AuditLog,
        policy: SoleControlPolicy,
    ) -> None:
        self._uow = uow
        self._keystore = keystore
        self._clock = clock
        self._authorization = authorization
        self._audit = audit
        self._policy = policy

    # -- enrolment ------------------------------------------------------------------------

    def _official_credential(self, work: Work, requester: Requester, serial: str) -> CertificateRecord:
        view = work.ca.show(serial)
        record = view.record
        self._authorization.check(requester, Permission.CERTIFICATE_ENROL, agency_id=record.agency_id)
        if record.profile != SOLE_CONTROL_PROFILE:
            raise PolicyViolationError(
                f"Second factors are for officials' (individual) credentials; this one is of the {record.profile} profile."
            )
        if record.key is None:
            raise PolicyViolationError("The credential's key is not held in the HSM of this service.")
        if view.status is not CertificateStatus.VALID:
            raise ConflictError(f"The credential is {view.status.value} and cannot get new factors.")
        return record

    def enrol_totp(self, serial: str, requester: Requester) -> tuple[str, TOTPEnrolment]:
        """Create a new TOTP seed for the official (replacing any earlier one) and return the
        credential's serial and the seed, once; from then on the seed exists only in the HSM."""
        seed = new_totp_seed()
        secret_ref: SecretRef | None = None
        old: SecretRef | None = None
        try:
            with self._uow.transaction(requester.context) as work:
                record = self._official_credential(work, requester, serial)
                assert record.id is not None
                factors = work.ports.sole_control.factors_for_update(record.id)
                if factors is not None and factors.totp_label and factors.totp_key_id_hex:
                    old = SecretRef(label=factors.totp_label, key_id=bytes.fromhex(factors.totp_key_id_hex))
                now = self._clock.now()
                secret_ref = self._keystore.import_hmac_secret(
                    label=f"govsign-totp-{record.serial_hex}-{int(now.timestamp())}", secret=seed
                )
                work.ports.sole_control.save_factors(
                    record.id,
                    at=now,
                    totp_label=secret_ref.label,
                    totp_key_id_hex=secret_ref.key_id.hex(),
                    totp_last_step=None,
                    failed_attempts=0,
                    locked_until=None,
                )
                work.audit.certificate_event(
                    "credential.factor.enrol", requester, record.serial_hex, {"factor": "totp"}
                )
                account = record.email or record.serial_hex
                serial_hex = record.serial_hex
        except GovsignError as exc:
            if secret_ref is not None:
                self._destroy_quietly(secret_ref)
            self._audit.record_refusal("credential.factor.enrol", requester, serial, exc)
            raise
        if old is not None:
            self._destroy_quietly(old)
        return serial_hex, totp_enrolment(seed, account=account, issuer=TOTP_ISSUER)

    def set_pin(self, serial: str, pin: str, requester: Requester, *, current_pin: str | None = None) -> None:
        """Set the official's PIN. Changing an existing PIN needs the current one (the official
        changes it); only the operator at the RA desk (the CLI) may reset it without."""
        try:
            refusal = self._set_pin(serial, pin, requester, current_pin)
        except GovsignError as exc:
            self._audit.record_refusal("credential.factor.enrol", requester, serial, exc)
            raise
        if refusal is not None:  # a wrong current PIN: counted and audited in its own transaction
            raise refusal.error

    def _set_pin(self, serial: str, pin: str, requester: Requester, current_pin: str | None) -> _Refusal | None:
        check_new_pin(pin)
        new_hash = hash_pin(pin)
        with self._uow.transaction(requester.context) as work:
            record = self._official_credential(work, requester, serial)
            assert record.id is not None
            factors = work.ports.sole_control.factors_for_update(record.id)
            now = self._clock.now()
            if factors is not None and factors.pin_hash is not None and requester.principal is not None:
                self._check_not_locked(factors, now)
                if current_pin is None:
                    raise InvalidInputError("Changing a PIN needs the current PIN.")
                if not pin_matches(current_pin, factors.pin_hash):
                    return self._count_failure(work, record, factors, now, requester, ["pin"])
            work.ports.sole_control.save_factors(record.id, at=now, pin_hash=new_hash)
            work.audit.certificate_event("credential.factor.enrol", requester, record.serial_hex, {"factor": "pin"})
        return None

    def factor_status(self, serial: str, requester: Requester) -> FactorStatus:
        with self._uow.reading() as work:
            record = work.ca.show(serial).record
            self._authorization.check(requester, Permission.SIGN, agency_id=record.agency_id)
            assert record.id is not None
            factors = work.ports.sole_control.factors_for_update(record.id)
        now = self._clock.now()
        locked = (
            factors.locked_until
            if factors is not None and factors.locked_until and factors.locked_until > now
            else None
        )
        return FactorStatus(
            credential=record.serial_hex,
            totp=bool(factors and factors.totp_label),
            pin=bool(factors and factors.pin_hash),
            locked_until=locked,
        )

    # -- activation -----------------------------------------------------------------------

    def activate(self, serial: str, requester: Requester, request: ActivationRequest) -> ActivationGrant:
        """Check the official's factors and grant a single-use activation for exactly these hashes."""
        assert requester.principal is not None, "activations are granted to API clients"
        try:
            outcome = self._activate(serial, requester, request)
        except GovsignError as exc:
            self._audit.record_refusal("signature.activate", requester, serial, exc)
            raise
        if isinstance(outcome, _Refusal):  # wrong factors: counted and audited in their own transaction
            raise outcome.error
        return outcome

    def _activate(self, serial: str, requester: Requester, request: ActivationRequest) -> ActivationGrant | _Refusal:
        principal = requester.principal
        assert principal is not None
        scope = ActivationScope.of(request.hash_algorithm, request.hashes, count=request.count)
        otp = check_totp_format(request.otp) if request.otp is not None else None
        with self._uow.transaction(requester.context) as work:
            view = work.ca.show(serial)
            record = view.record
            self._authorization.check(requester, Permission.SIGN, agency_id=record.agency_id)
            check_may_sign(view)
            if not needs_activation(view):
                raise PolicyViolationError(
                    f"Credentials of the {record.profile} profile are used without a signature activation."
                )
            assert record.id is not None
            factors = work.ports.sole_control.factors_for_update(record.id)
            if factors is None or not (factors.totp_label or factors.pin_hash):
                raise PolicyViolationError("The official has enrolled no second factor for this credential.")
            now = self._clock.now()
            wrong, step = self._check_factors(factors, otp, request.pin, now)
            if wrong:
                if step is not None:  # a matching code is used up even when the PIN was wrong
                    work.ports.sole_control.save_factors(record.id, at=now, totp_last_step=step)
                return self._count_failure(work, record, factors, now, requester, wrong)
            return self._grant(work, record, factors, scope, requester, step, now)

    def _check_factors(
        self, factors: CredentialFactorsRecord, otp: str | None, pin: str | None, now: dt.datetime
    ) -> tuple[list[str], int | None]:
        """The factors that were wrong, and the TOTP step a right one-time code used; refuses a
        locked credential and a missing factor before checking any."""
        self._check_not_locked(factors, now)
        enrolled = (("one-time code", factors.totp_label, otp), ("PIN", factors.pin_hash, pin))
        missing = [name for name, on, given in enrolled if on and given is None]
        if missing:
            raise InvalidInputError(f"The official's {' and '.join(missing)} must be given to activate signing.")
        wrong: list[str] = []
        step: int | None = None
        if factors.totp_label and factors.totp_key_id_hex and otp is not None:
            secret = SecretRef(label=factors.totp_label, key_id=bytes.fromhex(factors.totp_key_id_hex))
            hmac_sha1 = functools.partial(self._keystore.hmac_sha1, secret)
            step = match_totp(hmac_sha1, otp, now, last_used_step=factors.totp_last_step)
            if step is None:
                wrong.append("totp")
        if factors.pin_hash and pin is not None and not pin_matches(pin, factors.pin_hash):
            wrong.append("pin")
        return wrong, step

    def _grant(
        self,
        work: Work,
        record: CertificateRecord,
        factors: CredentialFactorsRecord,
        scope: ActivationScope,
        requester: Requester,
        step: int | None,
        now: dt.datetime,
    ) -> ActivationGrant:
        """Store a new activation for exactly ``scope`` (the factors were right) and audit it."""
        assert record.id is not None and requester.principal is not None
        expires_at = now + dt.timedelta(seconds=self._policy.activation_ttl_seconds)
        steps = {"totp_last_step": step} if step is not None else {}
        work.ports.sole_control.save_factors(record.id, at=now, failed_attempts=0, locked_until=None, **steps)
        token = _store_activation(
            work.ports, record.id, requester.principal.client_id, scope.hash_algorithm, scope.hashes, now, expires_at
        )
        work.ports.sole_control.purge_activations(expired_before=now - dt.timedelta(days=1))
        used = [name for name, on in (("totp", factors.totp_label), ("pin", factors.pin_hash)) if on]
        count = len(scope.hashes)
        details = {"hash_algorithm": scope.hash_algorithm, "hashes": list(scope.hashes), "count": count}
        details |= {"expires_at": expires_at.isoformat(), "factors": used}
        work.audit.certificate_event("signature.activate", requester, record.serial_hex, details)
        return ActivationGrant(
            token=token,
            credential=record.serial_hex,
            hash_algorithm=scope.hash_algorithm,
            count=count,
            expires_at=expires_at,
        )

    def consume(
        self,
        ports: SQLPorts,
        view: CertificateView,
        requester: Requester,
        token: str | None,
        hashes: Callable[[str], tuple[str, Sequence[bytes]]],
    ) -> dict[str, Any]:
        """Use up the activation for this signing, inside the caller's transaction; raise unless
        it exists, belongs to this credential and caller, is unused, unexpired and covers
        exactly the hashes that ``hashes`` gives for the activation's digest algorithm (sha256
        when the activation is unknown). Returns what the signature's audit event records of it."""
        if not token:
            raise PolicyViolationError(
                "Signing with an official's credential needs the official's signature activation for these documents."
            )
        record = view.record
        assert record.id is not None
        client_id = requester.principal.client_id if requester.principal is not None else ""
        token_hash = activation_token_hash(token)
        stored = ports.sole_control.activation_for_update(token_hash)
        state = (
            ActivationState(
                credential_serial=record.serial_hex if stored.certificate_id == record.id else "",
                client_id=stored.client_id,
                scope=ActivationScope(hash_algorithm=stored.hash_algorithm, hashes=stored.hashes),
                expires_at=stored.expires_at,
                used_at=stored.used_at,
                max_signatures=stored.max_signatures,
            )
            if stored is not None
            else None
        )
        hash_algorithm, values = hashes(
            stored.hash_algorithm if stored is not None and stored.hash_algorithm else "sha256"
        )
        now = self._clock.now()
        check_activation(
            state,
            credential_serial=record.serial_hex,
            client_id=client_id,
            hash_algorithm=hash_algorithm,
            hashes=values,
            now=now,
        )
        if not ports.sole_control.consume_activation(token_hash, now):
            raise ConflictError("The signature activation has already been used; each activation signs once.")
        return {"activation_sha256": token_hash}

    def restore(self, token_sha256: str, requester: Requester, serial: str) -> None:
        """Make a used activation usable again (its expiry unchanged) when the signing it was
        used for was refused on the request's own parameters and signed nothing; audited."""
        with self._uow.transaction(requester.context) as work:
            if work.ports.sole_control.restore_activation(token_sha256):
                work.audit.certificate_event(
                    "signature.activate.restore", requester, serial, {"activation_sha256": token_sha256}
                )

    def split(
        self,
        ports: SQLPorts,
        view: CertificateView,
        requester: Requester,
        token: str | None,
        hash_algorithm: str,
        groups: Sequence[Sequence[bytes]],
    ) -> list[str]:
        """Use up one activation covering every hash of ``groups`` (as :meth:`consume` does,
        in the caller's transaction) and grant one activation per group in its place, to the
        same client for the same credential, each for exactly its group's hashes and for a
        minute: a request that signs several documents under one SAD signs each with its own."""
        flat = [value for group in groups for value in group]
        used = self.consume(ports, view, requester, token, lambda _algorithm: (hash_algorithm, flat))
        record = view.record
        assert record.id is not None and requester.principal is not None
        now = self._clock.now()
        tokens: list[str] = []
        for group in groups:
            hashes = tuple(bytes(value).hex() for value in group)
            expires_at = now + dt.timedelta(seconds=60)
            client = requester.principal.client_id
            tokens.append(_store_activation(ports, record.id, client, hash_algorithm, hashes, now, expires_at))
        details = {**used, "parts": [activation_token_hash(part) for part in tokens], "count": len(flat)}
        self._audit.trail(ports, requester.context).certificate_event(
            "signature.activate.split", requester, record.serial_hex, details
        )
        return tokens

    def extend(self, serial: str, requester: Requester, token: str) -> ActivationGrant:
        """A fresh SAD in place of an unused, unexpired one of a seal or device credential (CSC
        ``extendTransaction``): the same client, credential and scope, the old one used up. An
        official's activation is never extended: sole control asks the official again."""
        try:
            return self._extend(serial, requester, token)
        except GovsignError as exc:
            self._audit.record_refusal("signature.authorize", requester, serial, exc)
            raise

    def _extend(self, serial: str, requester: Requester, token: str) -> ActivationGrant:
        principal = requester.principal
        assert principal is not None
        with self._uow.transaction(requester.context) as work:
            view = work.ca.show(serial)
            record = view.record
            self._authorization.check(requester, Permission.SIGN, agency_id=record.agency_id)
            check_may_sign(view)
            if needs_activation(view):
                raise PolicyViolationError(
                    "An official's authorization is not extended: the official authorizes the signing again."
                )
            token_hash = activation_token_hash(token)
            stored = work.ports.sole_control.activation_for_update(token_hash)
            now = self._clock.now()
            if stored is None or stored.certificate_id != record.id or stored.client_id != principal.client_id:
                raise PolicyViolationError("The SAD is not one this client holds for this credential.")
            if stored.used_at is not None or now >= stored.expires_at:
                raise ConflictError("The SAD has been used or has expired; ask for a new one.")
            work.ports.sole_control.consume_activation(token_hash, now)
            fresh, fresh_hash = new_activation_token()
            expires_at = now + dt.timedelta(seconds=self._policy.activation_ttl_seconds)
            work.ports.sole_control.add_activation(
                replace(stored, token_sha256=fresh_hash, created_at=now, expires_at=expires_at, used_at=None)
            )
            details = {"replaces_sha256": token_hash, "expires_at": expires_at.isoformat()}
            work.audit.certificate_event("signature.authorize.extend", requester, record.serial_hex, details)
        count = stored.max_signatures if stored.max_signatures is not None else len(stored.hashes)
        return ActivationGrant(
            token=fresh,
            credential=record.serial_hex,
            hash_algorithm=stored.hash_algorithm,
            count=count,
            expires_at=expires_at,
        )

    def authorize_without_factors(
        self,
        serial: str,
        requester: Requester,
        *,
        count: int,
        hash_algorithm: str | None = None,
        hashes: Sequence[bytes] = (),
    ) -> ActivationGrant:
        """A single-use authorization of an agency seal or device credential (CSC SCAL 1: no
        factors) for ``count`` signatures by the calling client, bound to ``hashes`` when they
        are given; refused (and audited) for an official's credential, whose authorization needs
        the official's factors (:meth:`activate`)."""
        assert requester.principal is not None, "authorizations are granted to API clients"
        try:
            return self._authorize_without_factors(serial, requester, count, hash_algorithm, hashes)
        except GovsignError as exc:
            self._audit.record_refusal("signature.authorize", requester, serial, exc)
            raise

    def _authorize_without_factors(
        self, serial: str, requester: Requester, count: int, hash_algorithm: str | None, hashes: Sequence[bytes]
    ) -> ActivationGrant:
        principal = requester.principal
        assert principal is not None
        if not isinstance(count, int) or not 1 <= count <= MAX_ACTIVATION_HASHES:
            raise InvalidInputError(f"An authorization covers 1 to {MAX_ACTIVATION_HASHES} signatures.")
        scope = ActivationScope.of(hash_algorithm or "", hashes, count=count) if hashes else None
        with self._uow.transaction(requester.context) as work:
            view = work.ca.show(serial)
            record = view.record
            self._authorization.check(requester, Permission.SIGN, agency_id=record.agency_id)
            check_may_sign(view)
            if needs_activation(view):
                raise PolicyViolationError(
                    "An official's credential is authorized only with the official's factors (SCAL 2)."
                )
            assert record.id is not None
            now = self._clock.now()
            expires_at = now + dt.timedelta(seconds=self._policy.activation_ttl_seconds)
            token = _store_activation(
                work.ports, record.id, principal.client_id, scope.hash_algorithm if scope else "",
                scope.hashes if scope else (), now, expires_at, max_signatures=None if scope else count,
            )  # fmt: skip
            details: dict[str, Any] = {"count": count, "expires_at": expires_at.isoformat(), "factors": []}
            if scope is not None:
                details |= {"hash_algorithm": scope.hash_algorithm, "hashes": list(scope.hashes)}
            work.audit.certificate_event("signature.authorize", requester, record.serial_hex, details)
        return ActivationGrant(
            token=token,
            credential=record.serial_hex,
            hash_algorithm=scope.hash_algorithm if scope else "",
            count=count,
            expires_at=expires_at,
        )

    # -- helpers --------------------------------------------------------------------------

    def _check_not_locked(self, factors: CredentialFactorsRecord, now: dt.datetime) -> None:
        if factors.locked_until is not None and factors.locked_until > now:
            seconds = int((factors.locked_until - now).total_seconds()) + 1
            raise RateLimitedError(
                "The official's factors are locked after too many wrong attempts; "
                f"try again in {max(1, (seconds + 59) // 60)} minutes.",
                retry_after=seconds,
            )

    def _count_failure(
        self,
        work: Work,
        record: CertificateRecord,
        factors: CredentialFactorsRecord,
        now: dt.datetime,
        requester: Requester,
        wrong: list[str],
    ) -> _Refusal:
        assert record.id is not None
        failures = factors.failed_attempts + 1
        limit = self._policy.factor_failure_limit
        locked_until = now + dt.timedelta(minutes=self._policy.factor_lockout_minutes) if failures >= limit else None
        work.ports.sole_control.save_factors(
            record.id, at=now, failed_attempts=0 if locked_until else failures, locked_until=locked_until
        )
        work.audit.certificate_event(
            "signature.activate",
            requester,
            record.serial_hex,
            {"error": "wrong-factor", "factors": wrong, "failures": failures, "locked": locked_until is not None},
            outcome="denied",
        )
        left = limit - failures
        message = "The one-time code or PIN is wrong" + (
            "; the factors are now locked for a while." if locked_until else f"; {left} attempts are left."
        )
        return _Refusal(error=ForbiddenError(message))

    def _destroy_quietly(self, ref: SecretRef) -> None:
        try:
            self._keystore.destroy_secret(ref)
        except GovsignError:
            log.error("could not destroy the HSM secret %s", ref.label)


def _store_activation(
    ports: SQLPorts,
    certificate_id: int,
    client_id: str,
    hash_algorithm: str,
    hashes: tuple[str, ...],
    now: dt.datetime,
    expires_at: dt.datetime,
    *,
    max_signatures: int | None = None,
) -> str:
    """Store a new unused activation (only its token's hash) and return the token, shown once."""
    token, token_hash = new_activation_token()
    ports.sole_control.add_activation(
        SignatureActivationRecord(
            token_sha256=token_hash,
            certificate_id=certificate_id,
            client_id=client_id,
            hash_algorithm=hash_algorithm,
            hashes=hashes,
            created_at=now,
            expires_at=expires_at,
            used_at=None,
            max_signatures=max_signatures,
        )
    )
    return token
