"""The permission each /api/v1 operation needs of the caller's role, checked before the request's
body and parameters are judged.

FastAPI validates a request before the operation runs, and the services decide authorization
inside the operation: without this check an auditor sending a PIN that breaks the PIN rules got
a 422 about those rules instead of a 403. When a request does not validate, the caller is
authenticated (401/429 as usual) and the role is checked against this table (403, audited); only
a caller who may use the operation learns what was wrong with the request. The agency of the
object is still decided by the service, once the request is valid.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request

from govsign.access.policy import Permission
from govsign.api.deps import authenticated, get_services, requester
from govsign.errors import ForbiddenError, GovsignError, InvalidInputError

#: operationId -> the permission the caller's role must include.
OPERATION_PERMISSIONS: dict[str, Permission] = {
    "enrolCertificate": Permission.CERTIFICATE_ENROL,
    "searchCertificates": Permission.CERTIFICATE_READ,
    "getCertificate": Permission.CERTIFICATE_READ,
    "getCertificateChain": Permission.CERTIFICATE_READ,
    "revokeCertificate": Permission.CERTIFICATE_REVOKE,
    "holdCertificate": Permission.CERTIFICATE_SUSPEND,
    "releaseCertificate": Permission.CERTIFICATE_SUSPEND,
    "renewCertificate": Permission.CERTIFICATE_RENEW,
    "listApprovals": Permission.APPROVAL_READ,
    "approveRequest": Permission.APPROVAL_DECIDE,
    "rejectRequest": Permission.APPROVAL_DECIDE,
    "publishCRLs": Permission.CA_ADMINISTER,
    "replaceServiceCertificate": Permission.CA_ADMINISTER,
    "searchAudit": Permission.AUDIT_READ,
    "listCertificateAuthorities": Permission.CA_READ,
    "listAgencies": Permission.AGENCY_READ,
    "signPDF": Permission.SIGN,
    "signCMS": Permission.SIGN,
    "signSMIME": Permission.SIGN,
    "signDigests": Permission.SIGN,
    "enrolTOTP": Permission.CERTIFICATE_ENROL,
    "setPIN": Permission.CERTIFICATE_ENROL,
    "getFactors": Permission.SIGN,
    "activateSignature": Permission.SIGN,
    "setStampImage": Permission.CERTIFICATE_ENROL,
    "verifyDocument": Permission.VERIFY,
    "getVerification": Permission.VERIFY,
}


async def refusal_before_validation(
    request: Request, *, action: str | None = None, object_id: str | None = None
) -> GovsignError | None:
    """The UnauthenticatedError, RateLimitedError or ForbiddenError (audited as ``action`` on
    ``object_id``, by default ``api.<operationId>`` on the path's parameters) of a caller whose
    role does not allow the matched /api/v1 operation; None when it does, or for other paths."""
    route = request.scope.get("route")
    operation_id = getattr(route, "operation_id", None)
    permission = OPERATION_PERMISSIONS.get(operation_id or "")
    if permission is None or not request.url.path.startswith("/api/"):
        return None
    try:
        principal = getattr(request.state, "principal", None) or await authenticated(request)
    except GovsignError as exc:
        return exc
    services = get_services(request)
    who = requester(request, principal)
    try:
        await asyncio.to_thread(services.authorization.check_role, who, permission)
    except ForbiddenError as exc:
        target = object_id or "/".join(str(value) for value in request.path_params.values()) or request.url.path
        await asyncio.to_thread(services.audit.record_refusal, action or f"api.{operation_id}", who, target, exc)
        return exc
    return None


async def role_first(request: Request, *, action: str, object_id: str) -> None:
    """Raise the refusal of a caller whose role does not allow the operation, before a route
    that reads its body itself (the document routes) judges the body; audited as the operation
    itself would audit it (``action`` on ``object_id``)."""
    refusal = await refusal_before_validation(request, action=action, object_id=object_id)
    if refusal is not None:
        raise refusal


def _declared_query_parameters(request: Request) -> dict[tuple[str, str], dict[str, bool]]:
    """(method, path template) -> the query parameters the API document declares (name -> whether
    it may repeat, an array), per app."""
    cached: dict[tuple[str, str], dict[str, bool]] | None = getattr(request.app.state, "query_parameters", None)
    if cached is None:
        document: dict[str, Any] = request.app.openapi()
        cached = {
            (method.upper(), path): {
                parameter["name"]: _is_array(parameter.get("schema", {}))
                for parameter in operation.get("parameters", [])
                if parameter.get("in") == "query"
            }
            for path, item in document.get("paths", {}).items()
            for method, operation in item.items()
            if isinstance(operation, dict)
        }
        request.app.state.query_parameters = cached
    return cached


def _is_array(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "array" or any(_is_array(part) for part in schema.get("anyOf", []))


async def reject_unknown_query_parameters(request: Request) -> None:
    """Refuse (422) an /api/v1 request with a query parameter its operation does not declare, or a
    single-valued one given twice, as a JSON body with an unknown field is refused; the caller's
    role is decided first (403)."""
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    if template is None or not request.url.path.startswith("/api/") or not request.query_params:
        return
    declared = _declared_query_parameters(request).get((request.method, template))
    if declared is None:
        return
    given = request.query_params
    unknown = sorted(set(given) - set(declared))
    repeated = sorted(
        name for name in set(given) if name in declared and not declared[name] and len(given.getlist(name)) > 1
    )
    if unknown or repeated:
        refusal = await refusal_before_validation(request)
        if refusal is not None:
            raise refusal
        if unknown:
            names = ", ".join(f"'{name}'" for name in unknown[:5])
            raise InvalidInputError(f"The query parameters {names} are not parameters of this operation.")
        names = ", ".join(f"'{name}'" for name in repeated[:5])
        raise InvalidInputError(f"The query parameters {names} take one value each.")
