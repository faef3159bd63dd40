"""Rows to the CA core's records (``govsign.pki.records``): one mapping each."""

from __future__ import annotations

from govsign.keystore.api import KeyAlgorithm, KeyRef
from govsign.pki.records import (
    CARecord,
    CARole,
    CertificateRecord,
    CertificateStatus,
    RevocationReason,
    RevocationRecord,
)
from govsign.storage.models import CertificateAuthorityRow, CertificateRow, RevocationRow
from govsign.storage.sql import to_record


def ca_record(row: CertificateAuthorityRow) -> CARecord:
    key = KeyRef(label=row.key_label, key_id=bytes.fromhex(row.key_id_hex), algorithm=KeyAlgorithm(row.key_algorithm))
    return to_record(CARecord, row, role=CARole(row.role), key=key)


def certificate_record(row: CertificateRow) -> CertificateRecord:
    algorithm = KeyAlgorithm(row.key_algorithm)
    key = None
    if row.key_label is not None and row.key_id_hex is not None:
        key = KeyRef(label=row.key_label, key_id=bytes.fromhex(row.key_id_hex), algorithm=algorithm)
    return to_record(CertificateRecord, row, status=CertificateStatus(row.status), key_algorithm=algorithm, key=key)


def revocation_record(row: RevocationRow) -> RevocationRecord:
    return to_record(RevocationRecord, row, reason=RevocationReason(row.reason))
