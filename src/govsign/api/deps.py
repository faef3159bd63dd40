"""Request dependencies: the opened services and the authenticated caller."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import Depends, Request

from govsign.access.clients import client_id_of
from govsign.access.policy import Principal
from govsign.audit.events import AuditContext
from govsign.config import Settings
from govsign.errors import RateLimitedError, UnauthenticatedError
from govsign.services.authorization import Requester
from govsign.services.bootstrap import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def media_type(request: Request) -> str:
    """The request body's media type: its Content-Type without parameters, in lower case."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def source_address(request: Request) -> str:
    """The address failed authentications are counted for: the peer, or, when the peer is a
    trusted TLS proxy, the client address it forwards (the last X-Forwarded-For hop)."""
    peer = request.client.host if request.client else "unknown"
    if peer in get_settings(request).trusted_proxy_addresses:
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return peer


def _certificate_fingerprint(header_value: str) -> str | None:
    try:
        pem = unquote(header_value).encode("ascii")
        certificate = x509.load_pem_x509_certificate(pem)
    except (ValueError, UnicodeEncodeError):
        return None
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


async def authenticated(request: Request) -> Principal:
    """The caller, from ``Authorization: Bearer`` or (behind a trusted TLS proxy) its client
    certificate. Failures are counted for the source address and the client the credentials
    named, in the database (every worker and node counts the same); past the limit a failure is
    answered 429. Valid credentials are never refused."""
    authentication = get_services(request).authentication
    principal: Principal | None = None
    claimed: str | None = None
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        claimed = client_id_of(token.strip())
        principal = await asyncio.to_thread(authentication.authenticate_token, token.strip())
    else:
        settings = get_settings(request)
        header = request.headers.get(settings.client_certificate_header)
        peer = request.client.host if request.client else "unknown"
        if header and peer in settings.trusted_proxy_addresses:
            fingerprint = _certificate_fingerprint(header)
            if fingerprint is not None:
                claimed = f"certificate:{fingerprint[:32]}"
                principal = await asyncio.to_thread(authentication.authenticate_certificate, fingerprint)
    if principal is None:
        wait = await asyncio.to_thread(authentication.record_failure, source_address(request), claimed)
        if wait:
            raise RateLimitedError("Too many failed authentications from this address; try again later.", wait)
        raise UnauthenticatedError("Send a valid API client token as 'Authorization: Bearer <token>'.")
    request.state.principal = principal
    return principal


Caller = Annotated[Principal, Depends(authenticated)]


def requester(request: Request, principal: Principal) -> Requester:
    """The authenticated caller as the services see it, with the request's audit context."""
    context = AuditContext(
        client_id=principal.client_id,
        agency_id=principal.agency_id,
        request_id=getattr(request.state, "request_id", None),
    )
    return Requester.client(principal, context)
