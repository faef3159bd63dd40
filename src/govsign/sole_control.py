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
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from govsign.access.policy import Permission, Principal
from govsign.activation.binding import (
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
from govsign.errors import (
    ConflictError,
    ForbiddenError,
    GovsignError,
    InvalidInputError,
    PolicyViolationError,
    RateLimitedError,
)
from govsign.keystore.api import SecretRef
from govsign.pki.ports import AuditContext, CertificateRecord, CertificateStatus
from govsign.platform import Platform
from govsign.runtime import record_failure
from govsign.signing.stamp import check_png
from govsign.storage.repositories import CredentialFactorsRecord, SignatureActivationRecord, SQLPorts

log = logging.getLogger(__name__)

#: The profile whose keys are under an official's sole control.
SOLE_CONTROL_PROFILE = "individual"
TOTP_ISSUER = "govsign"


@dataclass(frozen=True, kw_only=True)
class FactorStatus:
    """Which factors a credential has, and whether they are locked (never the factors)."""

    credential: str
    totp: bool
    pin: bool
    locked_until: dt.datetime | None


@dataclass(frozen=True, kw_only=True)
class ActivationGrant:
    """A signature activation, returned once to the calling system."""

    token: str
    credential: str
    hash_algorithm: str
    count: int
    expires_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class _Refusal:
    """A factor check that failed: committed (failure count, audit), then raised."""

    error: GovsignError


class SoleControl:
    """Factor enrolment and signature activations on top of the platform."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.runtime = platform.runtime
        self.settings = platform.runtime.settings

    # -- enrolment ------------------------------------------------------------------------

    def _official_credential(self, ports: SQLPorts, principal: Principal | None, serial: str) -> CertificateRecord:
        authority = self.runtime.authority(ports)
        view = authority.show(serial)
        record = view.record
        if principal is not None:
            self.platform.authorize(
                principal, Permission.CERTIFICATE_ENROL, agency_id=record.agency_id, agency_bound=True
            )
        if record.profile != SOLE_CONTROL_PROFILE:
            raise PolicyViolationError(
                f"Second factors are for officials' (individual) credentials; this one is of the {record.profile} profile."
            )
        if record.key is None:
            raise PolicyViolationError("The credential's key is not held in the HSM of this service.")
        if view.status is not CertificateStatus.VALID:
            raise ConflictError(f"The credential is {view.status.value} and cannot get new factors.")
        return record

    def enrol_totp(
        self, serial: str, *, actor: str, principal: Principal | None = None, context: AuditContext | None = None
    ) -> tuple[str, TOTPEnrolment]:
        """Create a new TOTP seed for the official (replacing any earlier one) and return the
        credential's serial and the seed, once; from then on the seed exists only in the HSM."""
        seed = new_totp_seed()
        secret_ref: SecretRef | None = None
        old: SecretRef | None = None
        try:
            with self.runtime.database.unit_of_work() as ports:
                record = self._official_credential(ports, principal, serial)
                assert record.id is not None
                factors = ports.sole_control.factors_for_update(record.id)
                if factors is not None and factors.totp_label and factors.totp_key_id_hex:
                    old = SecretRef(label=factors.totp_label, key_id=bytes.fromhex(factors.totp_key_id_hex))
                now = self.runtime.clock.now()
                secret_ref = self.runtime.keystore.import_hmac_secret(
                    label=f"govsign-totp-{record.serial_hex}-{int(now.timestamp())}", secret=seed
                )
                ports.sole_control.save_factors(
                    record.id,
                    at=now,
                    totp_label=secret_ref.label,
                    totp_key_id_hex=secret_ref.key_id.hex(),
                    totp_last_step=None,
                    failed_attempts=0,
                    locked_until=None,
                )
                self._audit(ports, "credential.factor.enrol", actor, record.serial_hex, {"factor": "totp"}, context)
                account = record.email or record.serial_hex
                serial_hex = record.serial_hex
        except GovsignError as exc:
            if secret_ref is not None:
                self._destroy_quietly(secret_ref)
            self._refused("credential.factor.enrol", actor, serial, exc, context)
            raise
        if old is not None:
            self._destroy_quietly(old)
        return serial_hex, totp_enrolment(seed, account=account, issuer=TOTP_ISSUER)

    def set_pin(
        self,
        serial: str,
        pin: str,
        *,
        actor: str,
        current_pin: str | None = None,
        principal: Principal | None = None,
        context: AuditContext | None = None,
    ) -> None:
        """Set the official's PIN. Changing an existing PIN needs the current one (the official
        changes it); only the CLI at the RA desk (no principal) may reset it without."""
        try:
            refusal = self._set_pin(
                serial, pin, actor=actor, current_pin=current_pin, principal=principal, context=context
            )
        except GovsignError as exc:
            self._refused("credential.factor.enrol", actor, serial, exc, context)
            raise
        if refusal is not None:  # a wrong current PIN: counted and audited in its own transaction
            raise refusal.error

    def _set_pin(
        self,
        serial: str,
        pin: str,
        *,
        actor: str,
        current_pin: str | None,
        principal: Principal | None,
        context: AuditContext | None,
    ) -> _Refusal | None:
        check_new_pin(pin)
        new_hash = hash_pin(pin)
        with self.runtime.database.unit_of_work() as ports:
            record = self._official_credential(ports, principal, serial)
            assert record.id is not None
            factors = ports.sole_control.factors_for_update(record.id)
            now = self.runtime.clock.now()
            if factors is not None and factors.pin_hash is not None and principal is not None:
                self._check_not_locked(factors, now)
                if current_pin is None:
                    raise InvalidInputError("Changing a PIN needs the current PIN.")
                if not pin_matches(current_pin, factors.pin_hash):
                    return self._count_failure(ports, record, factors, now, actor, context, ["pin"])
            ports.sole_control.save_factors(record.id, at=now, pin_hash=new_hash)
            self._audit(ports, "credential.factor.enrol", actor, record.serial_hex, {"factor": "pin"}, context)
        return None

    def factor_status(self, serial: str, *, principal: Principal | None = None) -> FactorStatus:
        with self.runtime.database.read_only() as ports:
            authority = self.runtime.authority(ports)
            record = authority.show(serial).record
            if principal is not None:
                self.platform.authorize(principal, Permission.SIGN, agency_id=record.agency_id, agency_bound=True)
            assert record.id is not None
            factors = ports.sole_control.factors_for_update(record.id)
        now = self.runtime.clock.now()
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

    def set_stamp_image(
        self,
        serial: str,
        image_png: bytes,
        *,
        actor: str,
        principal: Principal | None = None,
        context: AuditContext | None = None,
    ) -> str:
        """Store the image the credential's visible signatures show (Decree 30: the agency's seal
        for an organization credential, the official's handwritten signature for an individual
        one); returns its SHA-256."""
        try:
            check_png(image_png)
            digest = hashlib.sha256(image_png).hexdigest()
            with self.runtime.database.unit_of_work() as ports:
                view = self.runtime.authority(ports).show(serial)
                record = view.record
                if principal is not None:
                    self.platform.authorize(
                        principal, Permission.CERTIFICATE_ENROL, agency_id=record.agency_id, agency_bound=True
                    )
                if record.profile not in ("individual", "organization"):
                    raise PolicyViolationError(
                        f"Visible signatures are for officials and agency seals, not the {record.profile} profile."
                    )
                assert record.id is not None
                ports.stamp_images.put(record.id, bytes(image_png), self.runtime.clock.now())
                self._audit(
                    ports, "credential.stamp-image.set", actor, record.serial_hex, {"image_sha256": digest}, context
                )
        except GovsignError as exc:
            self._refused("credential.stamp-image.set", actor, serial, exc, context)
            raise
        return digest

    # -- activation -----------------------------------------------------------------------

    def activate(
        self,
        principal: Principal,
        serial: str,
        *,
        hash_algorithm: str,
        hashes: Sequence[bytes],
        count: int | None,
        otp: str | None,
        pin: str | None,
        context: AuditContext | None = None,
    ) -> ActivationGrant:
        """Check the official's factors and grant a single-use activation for exactly these hashes."""
        try:
            outcome = self._activate(
                principal,
                serial,
                hash_algorithm=hash_algorithm,
                hashes=hashes,
                count=count,
                otp=otp,
                pin=pin,
                context=context,
            )
        except GovsignError as exc:
            self._refused("signature.activate", principal.actor, serial, exc, context)
            raise
        if isinstance(outcome, _Refusal):  # wrong factors: counted and audited in their own transaction
            raise outcome.error
        return outcome

    def _activate(
        self,
        principal: Principal,
        serial: str,
        *,
        hash_algorithm: str,
        hashes: Sequence[bytes],
        count: int | None,
        otp: str | None,
        pin: str | None,
        context: AuditContext | None,
    ) -> ActivationGrant | _Refusal:
        actor = principal.actor
        scope = ActivationScope.of(hash_algorithm, hashes, count=count)
        if otp is not None:
            otp = check_totp_format(otp)
        with self.runtime.database.unit_of_work() as ports:
            authority = self.runtime.authority(ports)
            view = authority.show(serial)
            record = view.record
            self.platform.authorize(principal, Permission.SIGN, agency_id=record.agency_id, agency_bound=True)
            if record.profile != SOLE_CONTROL_PROFILE:
                raise PolicyViolationError(
                    f"Credentials of the {record.profile} profile are used without a signature activation."
                )
            if view.status is not CertificateStatus.VALID:
                raise ConflictError(f"The signing certificate is {view.status.value} and cannot sign.")
            assert record.id is not None
            factors = ports.sole_control.factors_for_update(record.id)
            if factors is None or not (factors.totp_label or factors.pin_hash):
                raise PolicyViolationError("The official has enrolled no second factor for this credential.")
            now = self.runtime.clock.now()
            self._check_not_locked(factors, now)
            missing = [
                name
                for name, enrolled, given in (
                    ("one-time code", factors.totp_label, otp),
                    ("PIN", factors.pin_hash, pin),
                )
                if enrolled and given is None
            ]
            if missing:
                raise InvalidInputError(f"The official's {' and '.join(missing)} must be given to activate signing.")
            wrong: list[str] = []
            step: int | None = None
            if factors.totp_label and factors.totp_key_id_hex and otp is not None:
                secret = SecretRef(label=factors.totp_label, key_id=bytes.fromhex(factors.totp_key_id_hex))
                step = match_totp(
                    lambda message: self.runtime.keystore.hmac_sha1(secret, message),
                    otp,
                    now,
                    last_used_step=factors.totp_last_step,
                )
                if step is None:
                    wrong.append("totp")
            if factors.pin_hash and pin is not None and not pin_matches(pin, factors.pin_hash):
                wrong.append("pin")
            if wrong:
                if step is not None:  # a matching code is used up even when the PIN was wrong
                    ports.sole_control.save_factors(record.id, at=now, totp_last_step=step)
                return self._count_failure(ports, record, factors, now, actor, context, wrong)
            token, token_hash = new_activation_token()
            expires_at = now + dt.timedelta(seconds=self.settings.activation_ttl_seconds)
            ports.sole_control.save_factors(
                record.id,
                at=now,
                failed_attempts=0,
                locked_until=None,
                **({"totp_last_step": step} if step is not None else {}),
            )
            ports.sole_control.add_activation(
                SignatureActivationRecord(
                    token_sha256=token_hash,
                    certificate_id=record.id,
                    client_id=principal.client_id,
                    hash_algorithm=scope.hash_algorithm,
                    hashes=scope.hashes,
                    created_at=now,
                    expires_at=expires_at,
                    used_at=None,
                )
            )
            ports.sole_control.purge_activations(expired_before=now - dt.timedelta(days=1))
            self._audit(
                ports,
                "signature.activate",
                actor,
                record.serial_hex,
                {
                    "hash_algorithm": scope.hash_algorithm,
                    "hashes": list(scope.hashes),
                    "count": len(scope.hashes),
                    "expires_at": expires_at.isoformat(),
                    "factors": [name for name, on in (("totp", factors.totp_label), ("pin", factors.pin_hash)) if on],
                },
                context,
            )
            return ActivationGrant(
                token=token,
                credential=record.serial_hex,
                hash_algorithm=scope.hash_algorithm,
                count=len(scope.hashes),
                expires_at=expires_at,
            )

    def consume(
        self,
        ports: SQLPorts,
        record: CertificateRecord,
        principal: Principal,
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
        token_hash = activation_token_hash(token)
        stored = ports.sole_control.activation_for_update(token_hash)
        assert record.id is not None
        state = (
            ActivationState(
                credential_serial=record.serial_hex if stored.certificate_id == record.id else "",
                client_id=stored.client_id,
                scope=ActivationScope(hash_algorithm=stored.hash_algorithm, hashes=stored.hashes),
                expires_at=stored.expires_at,
                used_at=stored.used_at,
            )
            if stored is not None
            else None
        )
        hash_algorithm, values = hashes(stored.hash_algorithm if stored is not None else "sha256")
        now = self.runtime.clock.now()
        check_activation(
            state,
            credential_serial=record.serial_hex,
            client_id=principal.client_id,
            hash_algorithm=hash_algorithm,
            hashes=values,
            now=now,
        )
        if not ports.sole_control.consume_activation(token_hash, now):
            raise ConflictError("The signature activation has already been used; each activation signs once.")
        return {"activation_sha256": token_hash}

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
        ports: SQLPorts,
        record: CertificateRecord,
        factors: CredentialFactorsRecord,
        now: dt.datetime,
        actor: str,
        context: AuditContext | None,
        wrong: list[str],
    ) -> _Refusal:
        assert record.id is not None
        failures = factors.failed_attempts + 1
        limit = self.settings.factor_failure_limit
        locked_until = now + dt.timedelta(minutes=self.settings.factor_lockout_minutes) if failures >= limit else None
        ports.sole_control.save_factors(
            record.id, at=now, failed_attempts=0 if locked_until else failures, locked_until=locked_until
        )
        self._audit(
            ports,
            "signature.activate",
            actor,
            record.serial_hex,
            {"error": "wrong-factor", "factors": wrong, "failures": failures, "locked": locked_until is not None},
            context,
            outcome="denied",
        )
        left = limit - failures
        message = "The one-time code or PIN is wrong" + (
            "; the factors are now locked for a while." if locked_until else f"; {left} attempts are left."
        )
        return _Refusal(error=ForbiddenError(message))

    def _audit(
        self,
        ports: SQLPorts,
        action: str,
        actor: str,
        serial_hex: str,
        details: dict[str, Any],
        context: AuditContext | None,
        *,
        outcome: str = "success",
    ) -> None:
        self.platform._audit(ports, action, actor, "certificate", serial_hex, details, context, outcome=outcome)

    def _refused(self, action: str, actor: str, serial: str, exc: GovsignError, context: AuditContext | None) -> None:
        record_failure(self.runtime.database, self.runtime.clock, action, actor, "certificate", serial, exc, context)

    def _destroy_quietly(self, ref: SecretRef) -> None:
        try:
            self.runtime.keystore.destroy_secret(ref)
        except GovsignError:
            log.error("could not destroy the HSM secret %s", ref.label)
