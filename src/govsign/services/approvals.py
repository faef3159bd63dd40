"""Dual control: operations named in GOVSIGN_DUAL_CONTROL wait, as approval requests, for a
second officer; that officer approves (and so executes) or rejects them.

The operations themselves are executed by the use case that owns them (certificates, CRL
publication), through :class:`ApprovedOperations`; this module only keeps the requests.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from govsign.access.policy import Permission
from govsign.clock import Clock
from govsign.errors import ConflictError, ForbiddenError, NotFoundError
from govsign.services.audit_log import AuditLog
from govsign.services.authorization import Authorization, Requester
from govsign.services.paging import Page
from govsign.services.uow import UnitOfWork, Work
from govsign.storage.approvals import ApprovalRecord
from govsign.storage.engine import Database

#: The operation of a request to publish CRLs now (CA administration).
PUBLISH_CRLS = "publish-crls"
#: The operation of a request to replace the OCSP responder or TSA certificate (CA administration).
REPLACE_SERVICE_CERTIFICATE = "replace-service-certificate"
#: Operations on the CA itself: an administrator (CA_ADMINISTER) decides them, whatever the agency.
CA_LEVEL_OPERATIONS = frozenset({PUBLISH_CRLS, REPLACE_SERVICE_CERTIFICATE})


class ApprovedOperations(Protocol):
    """Executes an approved request inside the approving unit of work; returns its result."""

    def execute(self, work: Work, approval: ApprovalRecord, requester: Requester) -> object: ...


class ApprovedOperationsByName:
    """Executes each approved request with the use case that owns its operation."""

    def __init__(self, default: ApprovedOperations, owners: Mapping[str, ApprovedOperations]) -> None:
        self._default = default
        self._owners = dict(owners)

    def execute(self, work: Work, approval: ApprovalRecord, requester: Requester) -> object:
        return self._owners.get(approval.operation, self._default).execute(work, approval, requester)


@dataclass(frozen=True, kw_only=True)
class CRLPublicationApproved:
    """The result of an approved CRL publication request: publish after the approval commits."""


class DualControl:
    """Which operations need a second officer, and the requests that wait for one."""

    def __init__(self, *, operations: frozenset[str], clock: Clock, audit: AuditLog) -> None:
        self._operations = operations
        self._clock = clock
        self._audit = audit

    def applies(self, requester: Requester, *operations: str) -> bool:
        """True when a request by ``requester`` for any of ``operations`` must wait for approval.
        The operator at the CLI acts alone (the CLI has no second officer yet)."""
        return requester.principal is not None and any(name in self._operations for name in operations)

    def applies_to_ca_administration(self, requester: Requester) -> bool:
        """True when a CA administration request that changes the CA's own keys (a service
        certificate's replacement) must wait for approval: for an API client and for the operator
        at the CLI alike, who then needs another operator (or an administrator) to approve."""
        return "ca-administration" in self._operations

    def request(
        self,
        work: Work,
        *,
        operation: str,
        target: str,
        parameters: Mapping[str, Any],
        agency_id: str | None,
        requester: Requester,
    ) -> ApprovalRecord:
        """Store a pending approval request in the unit of work (audited). An API client is named
        by its client id, the operator at the CLI by its actor (another operator decides)."""
        requested_by = requester.principal.client_id if requester.principal is not None else requester.actor
        record = ApprovalRecord(
            id=secrets.token_hex(8),
            operation=operation,
            target=target,
            parameters=dict(parameters),
            agency_id=agency_id,
            requested_by=requested_by,
            requested_at=self._clock.now(),
            status="pending",
            decided_by=None,
            decided_at=None,
            result=None,
        )
        work.ports.approvals.add(record)
        work.audit.record(
            "approval.request",
            actor=requester.actor,
            object_type="approval",
            object_id=record.id,
            details={"operation": operation, "target": target},
        )
        return record


class Approvals:
    """Lists, approves and rejects approval requests."""

    def __init__(
        self,
        *,
        database: Database,
        uow: UnitOfWork,
        clock: Clock,
        authorization: Authorization,
        executor: ApprovedOperations,
        publish_crls: Callable[[], object],
        after_commit: Callable[[str], None] = lambda _operation: None,
        keys_of: Callable[[ApprovalRecord], Sequence[str]] = lambda _approval: (),
    ) -> None:
        self._database = database
        self._uow = uow
        self._clock = clock
        self._authorization = authorization
        self._executor = executor
        self._publish_crls = publish_crls
        self._after_commit = after_commit
        self._keys_of = keys_of

    def list(
        self, requester: Requester, *, status: str | None, after: tuple[dt.datetime, str] | None, limit: int
    ) -> Page[ApprovalRecord]:
        """The requests the requester may see, newest first."""
        self._authorization.check_role(requester, Permission.APPROVAL_READ)
        scope = self._authorization.visible_agencies(requester)
        with self._database.read_only() as ports:
            records = ports.approvals.list(status=status, limit=limit + 1, after=after, agency_ids=scope)
        return Page.of(records, limit)

    def decide(
        self,
        approval_id: str,
        *,
        approve: bool,
        requester: Requester,
        describe: Callable[[object], dict[str, Any]],
    ) -> object:
        """Approve (execute) or reject a pending request of another officer. Returns the rejected
        request, or the executed operation's result (``describe`` turns it into what the request
        records as its result)."""

        def operation(work: Work) -> object:
            approval = work.ports.approvals.get_for_update(approval_id)
            if approval is None:
                raise NotFoundError(f"There is no approval request '{approval_id}'.")
            if requester.principal is not None:
                ca_level = approval.operation in CA_LEVEL_OPERATIONS
                self._authorization.authorize(
                    requester.principal,
                    Permission.CA_ADMINISTER if ca_level else Permission.APPROVAL_DECIDE,
                    agency_id=approval.agency_id,
                    agency_bound=not ca_level,
                )
            if approval.status != "pending":
                raise ConflictError(f"The approval request '{approval_id}' was decided already ({approval.status}).")
            decided_by = requester.principal.client_id if requester.principal is not None else requester.actor
            if approval.requested_by == decided_by:
                raise ForbiddenError("Dual control: a different officer must approve or reject this request.")
            now = self._clock.now()
            if not approve:
                work.ports.approvals.decide(
                    approval_id, status="rejected", decided_by=decided_by, decided_at=now, result=None
                )
                self._record(work, "approval.reject", approval, requester)
                updated = work.ports.approvals.get(approval_id)
                assert updated is not None
                return updated
            if approval.operation == PUBLISH_CRLS:
                result: object = CRLPublicationApproved()
                recorded: dict[str, Any] = {"publish_crls": True}
            else:
                result = self._executor.execute(work, approval, requester)
                recorded = describe(result)
            work.ports.approvals.decide(
                approval_id, status="executed", decided_by=decided_by, decided_at=now, result=recorded
            )
            self._record(work, "approval.approve", approval, requester)
            executed.append(approval.operation)
            return result

        executed: list[str] = []
        with self._database.read_only() as ports:
            asked = ports.approvals.get(approval_id)
        result = self._uow.run(
            operation,
            action="approval.decide",
            requester=requester,
            object_id=approval_id,
            reserve_keys=self._keys_of(asked) if asked is not None and approve else (),
        )
        if isinstance(result, CRLPublicationApproved):
            return self._publish_crls()
        for name in executed:
            self._after_commit(name)
        return result

    @staticmethod
    def _record(work: Work, action: str, approval: ApprovalRecord, requester: Requester) -> None:
        work.audit.record(
            action,
            actor=requester.actor,
            object_type="approval",
            object_id=approval.id,
            details={"operation": approval.operation},
        )
