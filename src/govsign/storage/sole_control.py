"""Officials' second factors and their single-use signature activations."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update

from govsign.storage.models import CredentialFactorsRow, SignatureActivationRow
from govsign.storage.sql import Repository, locked_row, to_record, to_row


@dataclass(frozen=True, kw_only=True)
class CredentialFactorsRecord:
    certificate_id: int
    """The official's credential."""
    totp_label: str | None
    """Label of the TOTP seed in the HSM, if enrolled."""
    totp_key_id_hex: str | None
    """CKA_ID of the TOTP seed, hex."""
    totp_last_step: int | None
    """The last TOTP time step accepted (a code is used once)."""
    pin_hash: str | None
    """scrypt hash of the PIN, if set."""
    failed_attempts: int
    """Wrong factors in a row."""
    locked_until: dt.datetime | None
    """Until when the factors are locked, if they are."""
    updated_at: dt.datetime
    """When the row last changed."""


@dataclass(frozen=True, kw_only=True)
class SignatureActivationRecord:
    token_sha256: str
    """SHA-256 of the activation token (never the token)."""
    certificate_id: int
    """The credential it activates."""
    client_id: str
    """The client it was granted to."""
    hash_algorithm: str
    """Algorithm of the hashes."""
    hashes: tuple[str, ...]
    """The hashes it covers (hex)."""
    created_at: dt.datetime
    """When it was granted."""
    expires_at: dt.datetime
    """When it expires."""
    used_at: dt.datetime | None
    """When it was used (None while unused)."""
    max_signatures: int | None = None
    """For an authorization bound to no hashes (CSC SCAL 1): how many signatures it allows."""


class SQLSoleControlStore(Repository):
    """Second factors of officials and their signature activations."""

    def factors_for_update(self, certificate_id: int) -> CredentialFactorsRecord | None:
        """The factors, row-locked so concurrent checks count failures and steps one at a time."""
        query = select(CredentialFactorsRow).where(CredentialFactorsRow.certificate_id == certificate_id)
        row = locked_row(self._session, query)
        return to_record(CredentialFactorsRecord, row) if row is not None else None

    def factors(self, certificate_id: int) -> CredentialFactorsRecord | None:
        """The factors as they are now (not locked: for showing which factors exist)."""
        row = self._session.get(CredentialFactorsRow, certificate_id)
        return to_record(CredentialFactorsRecord, row) if row is not None else None

    def save_factors(self, certificate_id: int, *, at: dt.datetime, **values: Any) -> None:
        """Update the factors row (created on first use) with the given columns."""
        row = self._session.get(CredentialFactorsRow, certificate_id)
        if row is None:
            row = CredentialFactorsRow(certificate_id=certificate_id, failed_attempts=0, updated_at=at)
            self._session.add(row)
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at = at
        self._session.flush()

    def add_activation(self, record: SignatureActivationRecord) -> None:
        self._session.add(to_row(SignatureActivationRow, record, hashes_json=json.dumps(list(record.hashes))))
        self._session.flush()

    def activation_for_update(self, token_sha256: str) -> SignatureActivationRecord | None:
        query = select(SignatureActivationRow).where(SignatureActivationRow.token_sha256 == token_sha256)
        row = locked_row(self._session, query)
        if row is None:
            return None
        return to_record(SignatureActivationRecord, row, hashes=tuple(json.loads(row.hashes_json)))

    def consume_activation(self, token_sha256: str, at: dt.datetime) -> bool:
        """Mark it used; False when another request used it first."""
        result = self._session.execute(
            update(SignatureActivationRow)
            .where(SignatureActivationRow.token_sha256 == token_sha256, SignatureActivationRow.used_at.is_(None))
            .values(used_at=at)
        )
        return bool(getattr(result, "rowcount", 0))

    def purge_activations(self, *, expired_before: dt.datetime) -> int:
        """Delete activations that expired before the given time (used or not)."""
        result = self._session.execute(
            delete(SignatureActivationRow).where(SignatureActivationRow.expires_at < expired_before)
        )
        return int(getattr(result, "rowcount", 0) or 0)
