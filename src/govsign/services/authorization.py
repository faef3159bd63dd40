"""Who asks, and whether they may: the requester of an operation and the one authorization
check of every use case (role, then the object's agency within the caller's agency tree).

An operation is asked for either by an authenticated API client (a :class:`Requester` with a
principal: every rule applies) or by the operator at the CLI on the CA's own machine (no
principal: the operator is trusted with the whole CA, as the one who holds its data dir).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from govsign.access.policy import CA_WIDE_ROLES, AgencyTree, Permission, Principal, decide
from govsign.audit.events import AuditContext
from govsign.errors import ForbiddenError
from govsign.storage.engine import Database

#: How long a process keeps the agency tree before reading it again (a new sub-unit reaches
#: other processes within this time).
AGENCY_TREE_SECONDS = 5.0


@dataclass(frozen=True, kw_only=True)
class Requester:
    """Who asks for an operation: an API client (``principal``) or the operator at the CLI."""

    actor: str
    """How the audit log names them (``client:NAME``, ``operator:USER``)."""
    principal: Principal | None = None
    """The authenticated API client; None for the operator at the CLI."""
    context: AuditContext = field(default_factory=AuditContext)
    """The client, agency and request id that the audit events carry."""

    @classmethod
    def client(cls, principal: Principal, context: AuditContext) -> Requester:
        return cls(actor=principal.actor, principal=principal, context=context)

    @classmethod
    def operator(cls, actor: str) -> Requester:
        return cls(actor=actor)


class Authorization:
    """Decides with :func:`govsign.access.policy.decide` over the agency tree of the database."""

    def __init__(self, *, database: Database) -> None:
        self._database = database
        self._tree_cache: tuple[float, AgencyTree] | None = None

    def agency_tree(self) -> AgencyTree:
        cached = self._tree_cache
        if cached is not None and time.monotonic() - cached[0] < AGENCY_TREE_SECONDS:
            return cached[1]
        with self._database.read_only() as ports:
            tree = AgencyTree(ports.access.agency_parents())
        self._tree_cache = (time.monotonic(), tree)
        return tree

    def forget_agencies(self) -> None:
        """Read the agency tree again on the next decision (an agency was added)."""
        self._tree_cache = None

    def agency_subtree(self, agency_id: str) -> frozenset[str]:
        with self._database.read_only() as ports:
            parents = ports.access.agency_parents()
        tree = AgencyTree(parents)
        return frozenset(a for a in parents if tree.contains(agency_id, a))

    def authorize(
        self, principal: Principal, permission: Permission, *, agency_id: str | None, agency_bound: bool
    ) -> None:
        """Raise ForbiddenError unless allowed. Objects of no agency are CA-wide: only the CA-wide
        roles may act on them when the permission is agency-bound."""
        tree = self.agency_tree()
        if agency_bound and agency_id is None:
            decision = decide(principal, permission, tree, agency_id="\x00ca-wide")
        else:
            decision = decide(principal, permission, tree, agency_id=agency_id if agency_bound else None)
        if not decision.allowed:
            raise ForbiddenError(decision.reason)

    def check(self, requester: Requester, permission: Permission, *, agency_id: str | None = None) -> None:
        """The check of an operation on an object of ``agency_id`` (the operator may do anything)."""
        if requester.principal is not None:
            self.authorize(requester.principal, permission, agency_id=agency_id, agency_bound=True)

    def check_role(self, requester: Requester, permission: Permission) -> None:
        """The check of an operation that is not bound to an agency (listing, CA-wide actions)."""
        if requester.principal is not None:
            self.authorize(requester.principal, permission, agency_id=None, agency_bound=False)

    def visible_agencies(self, requester: Requester, wanted: str | None = None) -> frozenset[str] | None:
        """The agencies whose objects the requester may list (None: all), narrowed to ``wanted``."""
        principal = requester.principal
        if principal is None or principal.role in CA_WIDE_ROLES:
            return frozenset({wanted}) if wanted else None
        scope = self.agency_subtree(principal.agency_id)
        if wanted is not None:
            if wanted not in scope:
                raise ForbiddenError("The agency filter names an agency outside the caller's.")
            return frozenset({wanted})
        return scope
