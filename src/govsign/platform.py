"""API platform services: agencies, API clients, authentication, dual control, idempotency,
audit queries and signed audit checkpoints. Composes the access core with storage and the
keystore; used by both front ends (``api`` and ``cli``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from govsign.access.clients import client_id_of, issue_secret, token_matches
from govsign.access.policy import AgencyTree, Permission, Principal, Role, decide
from govsign.audit.chain import ChainVerdict
from govsign.errors import (
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)
from govsign.keystore.api import KeyAlgorithm, KeyRef
from govsign.pki.ports import AuditContext, AuditEvent
from govsign.runtime import Runtime
from govsign.storage.repositories import AgencyRecord, APIClientRecord, ApprovalRecord, SQLPorts

log = logging.getLogger(__name__)

T = TypeVar("T")

_AGENCY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
AUDIT_KEY_LABEL = "govsign-audit-1"
CHECKPOINT_EVERY_EVENTS = 100


def load_server_key(runtime: Runtime) -> bytes:
    """The key API client secrets are hashed with (GOVSIGN_API_SECRET_KEY_FILE or generated)."""
    settings = runtime.settings
    path = settings.api_secret_key_file or settings.data_dir / "api-secret-key"
    if not path.exists():
        if settings.api_secret_key_file is not None:
            raise ConfigurationError(f"GOVSIGN_API_SECRET_KEY_FILE names {path}, which does not exist.")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    text = Path(path).read_text(encoding="ascii").strip()
    if len(text) < 32:
        raise ConfigurationError("The API secret key (GOVSIGN_API_SECRET_KEY_FILE) must hold at least 32 characters.")
    return text.encode("ascii")


@dataclass(frozen=True, kw_only=True)
class NewClient:
    """A registered client and its token, shown once."""

    client: APIClientRecord
    """The stored client."""
    token: str
    """The bearer token."""


class AuthFailureLimiter:
    """Counts failed authentications per source in a sliding minute (per process)."""

    def __init__(self, limit: int, window_seconds: float = 60.0) -> None:
        self._limit = limit
        self._window = window_seconds
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def blocked_for(self, source: str) -> int:
        """Seconds until ``source`` may try again (0 when it may now)."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(source, []) if now - t < self._window]
            self._failures[source] = recent
            if len(recent) < self._limit:
                return 0
            return max(1, int(self._window - (now - recent[0])) + 1)

    def failed(self, source: str) -> None:
        with self._lock:
            self._failures.setdefault(source, []).append(time.monotonic())
            if len(self._failures) > 10000:  # bound memory under a spray of sources
                self._failures = dict(list(self._failures.items())[-5000:])


class Platform:
    """API platform operations on top of a :class:`Runtime`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._server_key = load_server_key(runtime)
        self.limiter = AuthFailureLimiter(runtime.settings.auth_failure_limit)
        self._tree_cache: tuple[float, AgencyTree] | None = None

    # -- agencies and clients ---------------------------------------------------------------

    def add_agency(self, agency_id: str, name: str, parent_id: str | None, *, actor: str) -> AgencyRecord:
        if not _AGENCY_ID.match(agency_id):
            raise InvalidInputError(
                "An agency id is 1 to 64 lower-case letters, digits and hyphens, such as 'bo-tu-phap'."
            )
        if not name.strip():
            raise InvalidInputError("The agency needs a name.")

        def add(ports: SQLPorts) -> AgencyRecord:
            if ports.access.get_agency(agency_id) is not None:
                raise ConflictError(f"The agency '{agency_id}' exists already.")
            if parent_id is not None and ports.access.get_agency(parent_id) is None:
                raise NotFoundError(f"There is no agency '{parent_id}' to be the parent.")
            record = AgencyRecord(
                id=agency_id, name=name.strip(), parent_id=parent_id, created_at=self.runtime.clock.now()
            )
            ports.access.add_agency(record)
            self._audit(ports, "agency.create", actor, "agency", agency_id, {"name": record.name, "parent": parent_id})
            return record

        record = self._write(add)
        self._tree_cache = None
        return record

    def list_agencies(self) -> list[AgencyRecord]:
        with self.runtime.database.read_only() as ports:
            return ports.access.list_agencies()

    def agency_tree(self) -> AgencyTree:
        cached = self._tree_cache
        if cached is not None and time.monotonic() - cached[0] < 5.0:
            return cached[1]
        with self.runtime.database.read_only() as ports:
            tree = AgencyTree(ports.access.agency_parents())
        self._tree_cache = (time.monotonic(), tree)
        return tree

    def agency_subtree(self, agency_id: str) -> frozenset[str]:
        with self.runtime.database.read_only() as ports:
            parents = ports.access.agency_parents()
        tree = AgencyTree(parents)
        return frozenset(a for a in parents if tree.contains(agency_id, a))

    def add_client(
        self, name: str, *, role: str, agency_id: str, actor: str, certificate_fingerprint: str | None = None
    ) -> NewClient:
        if not _CLIENT_NAME.match(name):
            raise InvalidInputError("A client name is 1 to 100 letters, digits, spaces, dots, hyphens or underscores.")
        try:
            parsed_role = Role(role)
        except ValueError:
            raise InvalidInputError(
                f"There is no role '{role}'; use one of {', '.join(r.value for r in Role)}."
            ) from None
        fingerprint = _normalise_fingerprint(certificate_fingerprint) if certificate_fingerprint else None
        issued = issue_secret(self._server_key)

        def add(ports: SQLPorts) -> APIClientRecord:
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
                created_at=self.runtime.clock.now(),
                rotated_at=None,
            )
            ports.access.add_client(record)
            self._audit(ports, "client.create", actor, "client", name, {"role": parsed_role.value, "agency": agency_id})
            return record

        return NewClient(client=self._write(add), token=issued.token)

    def list_clients(self) -> list[APIClientRecord]:
        with self.runtime.database.read_only() as ports:
            return ports.access.list_clients()

    def disable_client(self, name: str, *, actor: str) -> APIClientRecord:
        def disable(ports: SQLPorts) -> APIClientRecord:
            client = self._client(ports, name)
            ports.access.update_client(client.id, status="disabled")
            self._audit(ports, "client.disable", actor, "client", name, {})
            return ports.access.get_client(client.id) or client

        return self._write(disable)

    def rotate_client(self, name: str, *, actor: str) -> NewClient:
        def rotate(ports: SQLPorts) -> NewClient:
            client = self._client(ports, name)
            issued = issue_secret(self._server_key, client.id)
            ports.access.update_client(client.id, secret_hash=issued.secret_hash, rotated_at=self.runtime.clock.now())
            self._audit(ports, "client.rotate", actor, "client", name, {})
            return NewClient(client=ports.access.get_client(client.id) or client, token=issued.token)

        return self._write(rotate)

    @staticmethod
    def _client(ports: SQLPorts, name: str) -> APIClientRecord:
        client = ports.access.client_by_name(name)
        if client is None:
            raise NotFoundError(f"There is no client named '{name}'.")
        return client

    # -- authentication ---------------------------------------------------------------------

    def authenticate_token(self, token: str) -> Principal | None:
        client_id = client_id_of(token)
        if client_id is None:
            return None
        with self.runtime.database.read_only() as ports:
            client = ports.access.get_client(client_id)
        if (
            client is None
            or client.status != "active"
            or not token_matches(self._server_key, token, client.secret_hash)
        ):
            return None
        return Principal(
            client_id=client.id, client_name=client.name, role=Role(client.role), agency_id=client.agency_id
        )

    def authenticate_certificate(self, fingerprint: str) -> Principal | None:
        with self.runtime.database.read_only() as ports:
            client = ports.access.client_by_certificate(_normalise_fingerprint(fingerprint))
        if client is None or client.status != "active":
            return None
        return Principal(
            client_id=client.id, client_name=client.name, role=Role(client.role), agency_id=client.agency_id
        )

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

    # -- dual control -----------------------------------------------------------------------

    def needs_approval(self, operation: str) -> bool:
        return operation in self.runtime.settings.dual_control_operations

    def create_approval(
        self,
        ports: SQLPorts,
        *,
        operation: str,
        target: str,
        parameters: dict[str, Any],
        agency_id: str | None,
        principal: Principal,
        context: AuditContext,
    ) -> ApprovalRecord:
        record = ApprovalRecord(
            id=secrets.token_hex(8),
            operation=operation,
            target=target,
            parameters=parameters,
            agency_id=agency_id,
            requested_by=principal.client_id,
            requested_at=self.runtime.clock.now(),
            status="pending",
            decided_by=None,
            decided_at=None,
            result=None,
        )
        ports.approvals.add(record)
        self._audit(
            ports,
            "approval.request",
            principal.actor,
            "approval",
            record.id,
            {"operation": operation, "target": target},
            context,
        )
        return record

    # -- idempotency ------------------------------------------------------------------------

    def idempotent(
        self,
        principal: Principal,
        key: str | None,
        request_body: dict[str, Any],
        run: Callable[[Callable[[SQLPorts, int, dict[str, Any]], None]], tuple[int, dict[str, Any]]],
        *,
        wait_seconds: float = 30.0,
    ) -> tuple[int, dict[str, Any]]:
        """Run a creating request at most once per (client, Idempotency-Key).

        ``run`` receives a ``remember(ports, status, body)`` callback to call inside its own
        transaction, so the stored response commits together with the change. A retry with the
        same key gets the first response; one still in flight is waited for; the same key with a
        different body is refused.
        """
        if key is None:
            return run(lambda _ports, _status, _body: None)
        if not 1 <= len(key) <= 200 or not key.isprintable():
            raise InvalidInputError("The Idempotency-Key header must be 1 to 200 printable characters.")
        request_hash = hashlib.sha256(json.dumps(request_body, sort_keys=True, default=str).encode()).hexdigest()
        deadline = time.monotonic() + wait_seconds
        while True:
            with self.runtime.database.unit_of_work() as ports:
                claimed = ports.idempotency.claim(principal.client_id, key, request_hash, self.runtime.clock.now())
                existing = None if claimed else ports.idempotency.get(principal.client_id, key)
                if existing is not None and existing.response_status is None:
                    stale = self.runtime.clock.now() - dt.timedelta(seconds=120)
                    claimed = ports.idempotency.take_over(
                        principal.client_id, key, older_than=stale, at=self.runtime.clock.now()
                    )
            if claimed:
                break
            assert existing is not None
            if existing.request_hash != request_hash:
                raise ConflictError("This Idempotency-Key was used with a different request body.")
            if existing.response_status is not None and existing.response_body is not None:
                return existing.response_status, json.loads(existing.response_body)
            if time.monotonic() > deadline:
                raise ConflictError("A request with this Idempotency-Key is still being processed; retry later.")
            time.sleep(0.05)

        def remember(ports: SQLPorts, status: int, body: dict[str, Any]) -> None:
            ports.idempotency.complete(principal.client_id, key, status, json.dumps(body, sort_keys=True, default=str))

        try:
            return run(remember)
        except BaseException:
            with self.runtime.database.unit_of_work() as ports:
                ports.idempotency.release(principal.client_id, key)
            raise

    # -- audit ------------------------------------------------------------------------------

    def _audit_key(self) -> KeyRef:
        keystore = self.runtime.keystore
        key = keystore.find_key(label=AUDIT_KEY_LABEL, algorithm=KeyAlgorithm.EC_P256)
        if key is None:
            key = keystore.generate_key_pair(label=AUDIT_KEY_LABEL, algorithm=KeyAlgorithm.EC_P256)
        return key

    def checkpoint(self, *, force: bool = False) -> int | None:
        """Sign the chain head with the audit key in the HSM when CHECKPOINT_EVERY_EVENTS events
        (or, with ``force``, any) have been added since the last checkpoint."""
        with self.runtime.database.unit_of_work() as ports:
            last_id, last_hash = ports.checkpoints.head()
            latest = ports.checkpoints.latest()
            since = last_id - (latest.last_event_id if latest else 0)
            if last_id == 0 or since <= 0 or (since < CHECKPOINT_EVERY_EVENTS and not force):
                return None
            key = self._audit_key()
            signed_at = self.runtime.clock.now()
            message = _checkpoint_message(last_id, last_hash, signed_at)
            signature = self.runtime.keystore.sign(
                key, message, scheme=key.algorithm.default_scheme, hash_algorithm=key.algorithm.default_hash
            )
            ports.checkpoints.add(
                last_event_id=last_id,
                last_hash=last_hash,
                signed_at=signed_at,
                key_label=key.label,
                signature=signature,
            )
            return last_id

    def verify_audit(self) -> ChainVerdict:
        """The chain, then every checkpoint's signature and hash."""
        with self.runtime.database.read_only() as ports:
            verdict = ports.audit.verify()
            checkpoints = ports.checkpoints.all()
            if not verdict.intact:
                return verdict
            if not checkpoints:
                return verdict
            key = self.runtime.keystore.find_key(label=AUDIT_KEY_LABEL, algorithm=KeyAlgorithm.EC_P256)
            public = self.runtime.keystore.public_key(key) if key is not None else None
            for last_event_id, last_hash, signed_at, _label, signature in checkpoints:
                problem = None
                if public is None:
                    problem = "the audit key is missing from the HSM"
                else:
                    try:
                        assert isinstance(public, ec.EllipticCurvePublicKey)
                        public.verify(
                            signature,
                            _checkpoint_message(last_event_id, last_hash, signed_at),
                            ec.ECDSA(hashes.SHA256()),
                        )
                    except InvalidSignature:
                        problem = "its signature does not verify"
                if problem is None and ports.checkpoints.event_hash_at(last_event_id) != last_hash:
                    problem = "the event it covers was changed"
                if problem is not None:
                    return ChainVerdict(
                        intact=False,
                        events_checked=verdict.events_checked,
                        first_broken_sequence=last_event_id,
                        problem=f"The audit checkpoint at event {last_event_id} is not valid: {problem}.",
                    )
        return verdict

    # -- helpers ----------------------------------------------------------------------------

    def _write(self, operation: Callable[[SQLPorts], T]) -> T:
        with self.runtime.database.unit_of_work() as ports:
            return operation(ports)

    def _audit(
        self,
        ports: SQLPorts,
        action: str,
        actor: str,
        object_type: str,
        object_id: str,
        details: dict[str, Any],
        context: AuditContext | None = None,
        *,
        outcome: str = "success",
    ) -> None:
        context = context or AuditContext()
        ports.audit.append(
            AuditEvent(
                action=action,
                actor=actor,
                object_type=object_type,
                object_id=object_id,
                outcome=outcome,
                details=details,
                client_id=context.client_id,
                agency_id=context.agency_id,
                request_id=context.request_id,
            ),
            at=self.runtime.clock.now(),
        )


def _checkpoint_message(last_event_id: int, last_hash: str, signed_at: dt.datetime) -> bytes:
    stamp = signed_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"govsign-audit-checkpoint\n{last_event_id}\n{last_hash}\n{stamp}\n".encode("ascii")


def _normalise_fingerprint(value: str) -> str:
    text = value.replace(":", "").strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise InvalidInputError("A certificate fingerprint is the SHA-256 of the DER certificate, in hex.")
    return text
