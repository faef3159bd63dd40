"""The repositories of one unit of work, all on the same session (one transaction)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from govsign.storage.access import SQLAccessStore
from govsign.storage.approvals import SQLApprovalStore
from govsign.storage.audit import SQLAuditCheckpoints, SQLAuditKeys, SQLAuditLog
from govsign.storage.auth_failures import SQLAuthFailureStore
from govsign.storage.cas import SQLCARegistry
from govsign.storage.certificates import SQLCertificateStore, SQLRevocationStore
from govsign.storage.crls import SQLCRLStore
from govsign.storage.idempotency import SQLIdempotencyStore
from govsign.storage.leases import SQLLeaseStore
from govsign.storage.ocsp import SQLOCSPStore
from govsign.storage.pending_keys import SQLPendingKeyStore
from govsign.storage.rate_counters import SQLRateCounterStore
from govsign.storage.references import SQLReferenceStore
from govsign.storage.sole_control import SQLSoleControlStore
from govsign.storage.stamp_images import SQLStampImageStore
from govsign.storage.verifications import SQLVerificationStore


class SQLPorts:
    """The ports of one unit of work, all on the same session (one transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cas = SQLCARegistry(session)
        self.certificates = SQLCertificateStore(session)
        self.revocations = SQLRevocationStore(session)
        self.audit = SQLAuditLog(session)
        self.crls = SQLCRLStore(session)
        self.ocsp = SQLOCSPStore(session)
        self.access = SQLAccessStore(session)
        self.idempotency = SQLIdempotencyStore(session)
        self.approvals = SQLApprovalStore(session)
        self.checkpoints = SQLAuditCheckpoints(session)
        self.audit_keys = SQLAuditKeys(session)
        self.sole_control = SQLSoleControlStore(session)
        self.stamp_images = SQLStampImageStore(session)
        self.verifications = SQLVerificationStore(session)
        self.leases = SQLLeaseStore(session)
        self.auth_failures = SQLAuthFailureStore(session)
        self.references = SQLReferenceStore(session)
        self.rate_counters = SQLRateCounterStore(session)
        self.pending_keys = SQLPendingKeyStore(session)
