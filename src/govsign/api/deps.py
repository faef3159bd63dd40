"""Request dependencies: the runtime, the platform, and the authenticated caller."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import Depends, Request

from govsign.access.policy import Permission, Principal
from govsign.errors import RateLimitedError, UnauthenticatedError
from govsign.pki.ports import AuditContext
from govsign.platform import Platform
from govsign.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def _source(request: Request) -> str:
    """The address failed authentications are counted for: the peer, or, when the peer is a
    trusted TLS proxy, the client address it forwards (the last X-Forwarded-For hop)."""
    peer = request.client.host if request.client else "unknown"
    settings = get_platform(request).runtime.settings
    if peer in settings.trusted_proxy_addresses:
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
    certificate. Failures are counted per source address; too many give 429."""
    platform = get_platform(request)
    source = _source(request)
    wait = platform.limiter.blocked_for(source)
    if wait:
        raise RateLimitedError("Too many failed authentications from this address; try again later.", wait)
    principal: Principal | None = None
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        principal = await asyncio.to_thread(platform.authenticate_token, token.strip())
    else:
        settings = platform.runtime.settings
        header = request.headers.get(settings.client_certificate_header)
        peer = request.client.host if request.client else "unknown"
        if header and peer in settings.trusted_proxy_addresses:
            fingerprint = _certificate_fingerprint(header)
            if fingerprint is not None:
                principal = await asyncio.to_thread(platform.authenticate_certificate, fingerprint)
    if principal is None:
        platform.limiter.failed(source)
        raise UnauthenticatedError("Send a valid API client token as 'Authorization: Bearer <token>'.")
    request.state.principal = principal
    return principal


Caller = Annotated[Principal, Depends(authenticated)]


def audit_context(request: Request, principal: Principal) -> AuditContext:
    return AuditContext(
        client_id=principal.client_id,
        agency_id=principal.agency_id,
        request_id=getattr(request.state, "request_id", None),
    )


def require(permission: Permission) -> object:
    """A dependency that checks the caller's role has ``permission`` (agency checks come later,
    once the object's agency is known)."""

    async def check(request: Request, principal: Caller) -> Principal:
        get_platform(request).authorize(principal, permission, agency_id=None, agency_bound=False)
        return principal

    return Depends(check)
