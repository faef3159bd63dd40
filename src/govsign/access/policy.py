"""Roles, permissions and agency scoping, decided in one place.

Every API client has one role and belongs to one agency. An agency may have sub-units (a
tree). A client acts on objects of its own agency and its sub-units, except the roles whose
scope is the whole CA (``admin``, ``auditor``). Every endpoint names the permission it needs and,
when it touches a subscriber, the subscriber's agency; :func:`decide` says allow or deny.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Role(enum.StrEnum):
    ADMIN = "admin"
    RA_OFFICER = "ra-officer"
    SIGNER = "signer"
    VERIFIER = "verifier"
    AUDITOR = "auditor"


class Permission(enum.StrEnum):
    CERTIFICATE_READ = "certificate:read"
    CERTIFICATE_ENROL = "certificate:enrol"
    CERTIFICATE_REVOKE = "certificate:revoke"
    CERTIFICATE_SUSPEND = "certificate:suspend"
    CERTIFICATE_RENEW = "certificate:renew"
    APPROVAL_DECIDE = "approval:decide"
    APPROVAL_READ = "approval:read"
    AUDIT_READ = "audit:read"
    CA_READ = "ca:read"
    CA_ADMINISTER = "ca:administer"
    AGENCY_READ = "agency:read"
    SIGN = "sign"
    VERIFY = "verify"


ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.RA_OFFICER: frozenset(
        {
            Permission.CERTIFICATE_READ,
            Permission.CERTIFICATE_ENROL,
            Permission.CERTIFICATE_REVOKE,
            Permission.CERTIFICATE_SUSPEND,
            Permission.CERTIFICATE_RENEW,
            Permission.APPROVAL_DECIDE,
            Permission.APPROVAL_READ,
            Permission.CA_READ,
            Permission.AGENCY_READ,
        }
    ),
    Role.SIGNER: frozenset({Permission.SIGN, Permission.VERIFY, Permission.CA_READ}),
    Role.VERIFIER: frozenset({Permission.VERIFY, Permission.CA_READ}),
    Role.AUDITOR: frozenset(
        {
            Permission.AUDIT_READ,
            Permission.CERTIFICATE_READ,
            Permission.APPROVAL_READ,
            Permission.CA_READ,
            Permission.VERIFY,
            Permission.AGENCY_READ,
        }
    ),
}

#: Roles whose scope is the whole CA rather than their own agency subtree.
CA_WIDE_ROLES = frozenset({Role.ADMIN, Role.AUDITOR})


@dataclass(frozen=True, kw_only=True)
class Principal:
    """An authenticated caller."""

    client_id: str
    """The API client's id."""
    client_name: str
    """The API client's name."""
    role: Role
    """Its role."""
    agency_id: str
    """The agency it belongs to."""

    @property
    def actor(self) -> str:
        return f"client:{self.client_name}"


class AgencyTree:
    """Parent links of agencies, to answer "is X within Y's subtree"."""

    def __init__(self, parents: Mapping[str, str | None]) -> None:
        self._parents = dict(parents)

    def contains(self, ancestor: str, agency: str) -> bool:
        seen: set[str] = set()
        current: str | None = agency
        while current is not None and current not in seen:
            if current == ancestor:
                return True
            seen.add(current)
            current = self._parents.get(current)
        return False

    def known(self, agency: str) -> bool:
        return agency in self._parents


@dataclass(frozen=True, kw_only=True)
class Decision:
    """Allow or deny, with the reason shown in the 403 problem and the audit log."""

    allowed: bool
    """True to allow."""
    reason: str
    """One sentence."""


def decide(principal: Principal, permission: Permission, tree: AgencyTree, *, agency_id: str | None = None) -> Decision:
    """May ``principal`` use ``permission`` on an object of ``agency_id`` (None: not agency-bound)?"""
    if permission not in ROLE_PERMISSIONS[principal.role]:
        return Decision(allowed=False, reason=f"The {principal.role.value} role does not allow {permission.value}.")
    if agency_id is None or principal.role in CA_WIDE_ROLES:
        return Decision(allowed=True, reason="Allowed by role.")
    if tree.contains(principal.agency_id, agency_id):
        return Decision(allowed=True, reason="Allowed within the client's agency.")
    return Decision(allowed=False, reason="The object belongs to another agency.")
