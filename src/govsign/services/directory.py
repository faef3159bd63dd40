"""The directory: agencies (and their sub-units) and the API clients that act for them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from govsign.access.clients import issue_secret
from govsign.access.policy import Role
from govsign.clock import Clock
from govsign.errors import ConflictError, InvalidInputError, NotFoundError
from govsign.services.audit_log import AuditLog
from govsign.services.authentication import normalise_fingerprint
from govsign.services.authorization import Authorization
from govsign.storage.access import AgencyRecord, APIClientRecord
from govsign.storage.engine import Database
from govsign.storage.ports import SQLPorts

_AGENCY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
#: Letters of any script (Vietnamese: "Hệ thống QLVB"), digits, spaces, dots, hyphens, underscores.
_CLIENT_NAME = re.compile(r"^[^\W_][\w .-]{0,99}$")


@dataclass(frozen=True, kw_only=True)
class NewClient:
    """A registered client and its token, shown once."""

    client: APIClientRecord
    """The stored client."""
    token: str
    """The bearer token."""


class Directory:
    """Adds, lists, disables and rotates agencies and API clients (each change audited)."""

    def __init__(
        self,
        *,
        database: Database,
        clock: Clock,
        audit: AuditLog,
        authorization: Authorization,
        server_key: Callable[[], bytes],
    ) -> None:
        self._database = database
        self._clock = clock
        self._audit = audit
        self._authorization = authorization
        self._server_key = server_key

    # -- agencies -------------------------------------------------------------------------------

    def add_agency(self, agency_id: str, name: str, parent_id: str | None, *, actor: str) -> AgencyRecord:
        if not _AGENCY_ID.match(agency_id):
            raise InvalidInputError(
                "An agency id is 1 to 64 lower-case letters, digits and hyphens, such as 'bo-tu-phap'."
            )
        if not name.strip():
            raise InvalidInputError("The agency needs a name.")
        with self._database.unit_of_work() as ports:
            if ports.access.get_agency(agency_id) is not None:
                raise ConflictError(f"The agency '{agency_id}' exists already.")
            if parent_id is not None and ports.access.get_agency(parent_id) is None:
                raise NotFoundError(f"There is no agency '{parent_id}' to be the parent.")
            record = AgencyRecord(id=agency_id, name=name.strip(), parent_id=parent_id, created_at=self._clock.now())
            ports.access.add_agency(record)
            self._record(ports, "agency.create", actor, "agency", agency_id, {"name": record.name, "parent": parent_id})
        self._authorization.forget_agencies()
        return record

    def list_agencies(self) -> list[AgencyRecord]:
        with self._database.read_only() as ports:
            return ports.access.list_agencies()

    # -- clients --------------------------------------------------------------------------------

    def add_client(
        self, name: str, *, role: str, agency_id: str, actor: str, certificate_fingerprint: str | None = None
    ) -> NewClient:
        name = unicodedata.normalize("NFC", name) if isinstance(name, str) else name
        if not isinstance(name, str) or not _CLIENT_NAME.match(name) or name != name.strip():
            raise InvalidInputError("A client name is 1 to 100 letters, digits, spaces, dots, hyphens or underscores.")
        try:
            parsed_role = Role(role)
        except ValueError:
            raise InvalidInputError(
                f"There is no role '{role}'; use one of {', '.join(r.value for r in Role)}."
            ) from None
        fingerprint = normalise_fingerprint(certificate_fingerprint) if certificate_fingerprint else None
        issued = issue_secret(self._server_key())
        with self._database.unit_of_work() as ports:
            if ports.access.get_agency(agency_id) is None:
                raise NotFoundError(f"There is no agency '{agency_id}'; add it with 'govsign agency add'.")
            if ports.access.client_by_name(name) is not None:
                raise ConflictError(f"A client named '{name}' exists already.")
            record = APIClientRecord(
                id=issued.client_id,
                name=name,
                role=parsed_role.value,
                agency_id=agency_id,
                secret_hash=issued.secret_hash,
                status="active",
                certificate_fingerprint=fingerprint,
                created_at=self._clock.now(),
                rotated_at=None,
            )
            ports.access.add_client(record)
            self._record(
                ports, "client.create", actor, "client", name, {"role": parsed_role.value, "agency": agency_id}
            )
        return NewClient(client=record, token=issued.token)

    def list_clients(self) -> list[APIClientRecord]:
        with self._database.read_only() as ports:
            return ports.access.list_clients()

    def disable_client(self, name: str, *, actor: str) -> APIClientRecord:
        with self._database.unit_of_work() as ports:
            client = _client(ports, name)
            ports.access.update_client(client.id, status="disabled")
            self._record(ports, "client.disable", actor, "client", name, {})
            return ports.access.get_client(client.id) or client

    def rotate_client(self, name: str, *, actor: str) -> NewClient:
        with self._database.unit_of_work() as ports:
            client = _client(ports, name)
            issued = issue_secret(self._server_key(), client.id)
            ports.access.update_client(client.id, secret_hash=issued.secret_hash, rotated_at=self._clock.now())
            self._record(ports, "client.rotate", actor, "client", name, {})
            return NewClient(client=ports.access.get_client(client.id) or client, token=issued.token)

    def _record(
        self, ports: SQLPorts, action: str, actor: str, object_type: str, object_id: str, details: dict[str, object]
    ) -> None:
        self._audit.record(ports, action, actor=actor, object_type=object_type, object_id=object_id, details=details)


def _client(ports: SQLPorts, name: str) -> APIClientRecord:
    client = ports.access.client_by_name(name)
    if client is None:
        raise NotFoundError(f"There is no client named '{name}'.")
    return client
