"""REST endpoints of the registration authority, approvals, audit and directory (`/api/v1`).

Every endpoint needs an authenticated API client; the role and agency checks are made in
:mod:`govsign.api.ra` and :mod:`govsign.platform` (one place: ``Platform.authorize``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from govsign.access.policy import Permission, Principal
from govsign.api.deps import Caller, audit_context, get_platform, get_runtime
from govsign.api.ra import RAService, decode_cursor, encode_cursor
from govsign.api.schemas import resources as schemas

router = APIRouter(prefix="/api/v1")

SERIAL = Annotated[str, Path(pattern=r"^[0-9a-fA-F:]{1,60}$", description="Serial number in hex.")]
IDEMPOTENCY_KEY = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, description="Retries with the same key return the first result."),
]
LIMIT = Annotated[int, Query(ge=1, le=200, description="Page size.")]

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        401: "Missing or invalid credentials.",
        403: "The caller's role or agency does not allow this.",
        404: "No such object.",
        409: "The object's state does not allow this, or the idempotency key is in use.",
        413: "The request body is too large.",
        415: "The request body is not JSON.",
        422: "The request is invalid or refused by policy.",
        429: "Too many failed authentications from this address.",
        503: "The HSM or the database is unavailable.",
    }
    return {
        status: {"description": descriptions[status], "content": _PROBLEM} for status in (401, 403, 429, 503, *statuses)
    }


def _service(request: Request, principal: Principal) -> RAService:
    return RAService(get_platform(request), principal, audit_context(request, principal))


def _json(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


@router.post(
    "/certificates",
    operation_id="enrolCertificate",
    summary="Enrol a subscriber: issue a certificate from a CSR or with a key generated in the HSM.",
    tags=["certificates"],
    status_code=201,
    response_model=schemas.Certificate,
    responses={
        202: {"model": schemas.Approval, "description": "Waiting for a second officer's approval."},
        **_problems(404, 409, 413, 422),
    },
)
async def enrol(
    request: Request, body: schemas.EnrolmentRequest, principal: Caller, idempotency_key: IDEMPOTENCY_KEY = None
) -> JSONResponse:
    service = _service(request, principal)
    platform = get_platform(request)
    status, resource = await asyncio.to_thread(
        platform.idempotent,
        principal,
        idempotency_key,
        body.model_dump(mode="json"),
        lambda remember: service.enrol(body, remember),
    )
    return _json(status, resource)


@router.get(
    "/certificates",
    operation_id="searchCertificates",
    summary="Search certificates of the caller's agency (and sub-units), newest last, with cursor pagination.",
    tags=["certificates"],
    response_model=schemas.CertificatePage,
    responses=_problems(422),
)
async def search(
    request: Request,
    principal: Caller,
    status: Annotated[schemas.StatusName | None, Query(description="Only this status.")] = None,
    profile: Annotated[schemas.ProfileName | None, Query(description="Only this profile.")] = None,
    agency_id: Annotated[str | None, Query(max_length=64, description="Only this agency.")] = None,
    subject_contains: Annotated[str | None, Query(max_length=200, description="Substring of the subject.")] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="From a previous page's next_cursor.")] = None,
    limit: LIMIT = 50,
) -> JSONResponse:
    service = _service(request, principal)
    page = await asyncio.to_thread(
        service.search,
        status=status,
        profile=profile,
        agency_id=agency_id,
        subject_contains=subject_contains,
        cursor=cursor,
        limit=limit,
    )
    return _json(200, page)


@router.get(
    "/certificates/{serial}",
    operation_id="getCertificate",
    summary="One certificate and its status.",
    tags=["certificates"],
    response_model=schemas.Certificate,
    responses=_problems(404, 409, 422),
)
async def get_certificate(request: Request, serial: SERIAL, principal: Caller) -> JSONResponse:
    return _json(200, await asyncio.to_thread(_service(request, principal).get, serial))


@router.get(
    "/certificates/{serial}/chain",
    operation_id="getCertificateChain",
    summary="The certificate with its CA chain: PEM bundle, DER (the certificate alone) or PKCS#7.",
    tags=["certificates"],
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/pem-certificate-chain": {},
                "application/pkix-cert": {},
                "application/pkcs7-mime": {},
            }
        },
        **_problems(404, 409, 422),
    },
)
async def get_chain(
    request: Request,
    serial: SERIAL,
    principal: Caller,
    format: Annotated[Literal["pem", "der", "pkcs7"], Query(description="Output format.")] = "pem",
) -> Response:
    data, media_type = await asyncio.to_thread(_service(request, principal).chain, serial, format)
    return Response(data, media_type=media_type)


@router.post(
    "/certificates/{serial}/revocation",
    operation_id="revokeCertificate",
    summary="Revoke a certificate (organization certificates need a second officer by default).",
    tags=["certificates"],
    response_model=schemas.Certificate,
    responses={
        202: {"model": schemas.Approval, "description": "Waiting for a second officer's approval."},
        **_problems(404, 409, 413, 422),
    },
)
async def revoke(request: Request, serial: SERIAL, body: schemas.RevocationRequest, principal: Caller) -> JSONResponse:
    if body.invalidity_date is not None and body.invalidity_date.tzinfo is None:
        body = body.model_copy(update={"invalidity_date": body.invalidity_date.replace(tzinfo=dt.UTC)})
    status, resource = await asyncio.to_thread(_service(request, principal).revoke, serial, body)
    return _json(status, resource)


@router.post(
    "/certificates/{serial}/hold",
    operation_id="holdCertificate",
    summary="Suspend a certificate (certificateHold).",
    tags=["certificates"],
    response_model=schemas.Certificate,
    responses={202: {"model": schemas.Approval, "description": "Waiting for approval."}, **_problems(404, 409, 422)},
)
async def hold(request: Request, serial: SERIAL, principal: Caller) -> JSONResponse:
    status, resource = await asyncio.to_thread(_service(request, principal).hold, serial)
    return _json(status, resource)


@router.post(
    "/certificates/{serial}/release",
    operation_id="releaseCertificate",
    summary="Release a certificate from hold.",
    tags=["certificates"],
    response_model=schemas.Certificate,
    responses={202: {"model": schemas.Approval, "description": "Waiting for approval."}, **_problems(404, 409, 422)},
)
async def release(request: Request, serial: SERIAL, principal: Caller) -> JSONResponse:
    status, resource = await asyncio.to_thread(_service(request, principal).release, serial)
    return _json(status, resource)


@router.post(
    "/certificates/{serial}/renewal",
    operation_id="renewCertificate",
    summary="Renew: a new certificate for the same subject and key.",
    tags=["certificates"],
    status_code=201,
    response_model=schemas.Certificate,
    responses=_problems(404, 409, 413, 422),
)
async def renew(
    request: Request,
    serial: SERIAL,
    body: schemas.RenewalRequest,
    principal: Caller,
    idempotency_key: IDEMPOTENCY_KEY = None,
) -> JSONResponse:
    service = _service(request, principal)
    platform = get_platform(request)
    status, resource = await asyncio.to_thread(
        platform.idempotent,
        principal,
        idempotency_key,
        {"serial": serial, **body.model_dump(mode="json")},
        lambda remember: service.renew(serial, body, remember),
    )
    return _json(status, resource)


@router.get(
    "/approvals",
    operation_id="listApprovals",
    summary="Dual-control requests visible to the caller.",
    tags=["approvals"],
    response_model=schemas.ApprovalPage,
    responses=_problems(422),
)
async def list_approvals(
    request: Request,
    principal: Caller,
    status: Annotated[
        Literal["pending", "executed", "rejected", "failed"] | None, Query(description="Only this status.")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: LIMIT = 50,
) -> JSONResponse:
    page = await asyncio.to_thread(
        _service(request, principal).list_approvals, status=status, cursor=cursor, limit=limit
    )
    return _json(200, page)


APPROVAL_ID = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="Approval request id.")]


@router.post(
    "/approvals/{approval_id}/approve",
    operation_id="approveRequest",
    summary="Approve (and so execute) a pending request made by another officer.",
    tags=["approvals"],
    responses={
        200: {"description": "The executed operation's result."},
        201: {"description": "The issued certificate."},
        **_problems(404, 409, 422),
    },
)
async def approve(request: Request, approval_id: APPROVAL_ID, principal: Caller) -> JSONResponse:
    status, resource = await asyncio.to_thread(_service(request, principal).decide, approval_id, approve=True)
    return _json(status, resource)


@router.post(
    "/approvals/{approval_id}/reject",
    operation_id="rejectRequest",
    summary="Reject a pending request made by another officer.",
    tags=["approvals"],
    response_model=schemas.Approval,
    responses=_problems(404, 409, 422),
)
async def reject(request: Request, approval_id: APPROVAL_ID, principal: Caller) -> JSONResponse:
    status, resource = await asyncio.to_thread(_service(request, principal).decide, approval_id, approve=False)
    return _json(status, resource)


@router.post(
    "/crls",
    operation_id="publishCRLs",
    summary="Publish fresh CRLs now (a CA-level action: a second administrator approves by default).",
    tags=["ca"],
    responses={
        200: {"description": "The CRLs published."},
        202: {"model": schemas.Approval, "description": "Waiting for approval."},
        **_problems(422),
    },
)
async def publish_crls(request: Request, principal: Caller) -> JSONResponse:
    status, resource = await asyncio.to_thread(_service(request, principal).request_crl_publication)
    return _json(status, resource)


@router.get(
    "/audit",
    operation_id="searchAudit",
    summary="Audit events, oldest first, filtered, with cursor pagination (auditors and admins).",
    tags=["audit"],
    response_model=schemas.AuditPage,
    responses=_problems(422),
)
async def search_audit(
    request: Request,
    principal: Caller,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    client_id: Annotated[str | None, Query(max_length=64)] = None,
    agency_id: Annotated[str | None, Query(max_length=64)] = None,
    object_id: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[dt.datetime | None, Query(description="From this time (inclusive).")] = None,
    until: Annotated[dt.datetime | None, Query(description="Until this time (exclusive).")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: LIMIT = 100,
) -> JSONResponse:
    platform = get_platform(request)
    platform.authorize(principal, Permission.AUDIT_READ, agency_id=None, agency_bound=False)
    after = decode_cursor(cursor)
    after_id = int(after) if after is not None and after.isdigit() else None

    def query() -> dict[str, Any]:
        with platform.runtime.database.read_only() as ports:
            rows = ports.audit.search(
                action=action,
                actor=actor,
                client_id=client_id,
                agency_id=agency_id,
                object_id=object_id,
                since=since.replace(tzinfo=since.tzinfo or dt.UTC) if since else None,
                until=until.replace(tzinfo=until.tzinfo or dt.UTC) if until else None,
                after_id=after_id,
                limit=limit + 1,
            )
        items = [schemas.AuditEvent(**row).model_dump(mode="json") for row in rows[:limit]]
        return {"items": items, "next_cursor": encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None}

    return _json(200, await asyncio.to_thread(query))


@router.get(
    "/cas",
    operation_id="listCertificateAuthorities",
    summary="The certificate authorities and where their certificates and CRLs are published.",
    tags=["ca"],
    response_model=list[schemas.CertificateAuthority],
    responses=_problems(),
)
async def list_cas(request: Request, principal: Caller) -> JSONResponse:
    runtime = get_runtime(request)
    get_platform(request).authorize(principal, Permission.CA_READ, agency_id=None, agency_bound=False)

    def query() -> list[dict[str, Any]]:
        with runtime.database.read_only() as ports:
            cas = ports.cas.list_cas()
        urls = runtime.policy.urls
        return [
            schemas.CertificateAuthority(
                id=ca.id,
                role=ca.role.value,  # type: ignore[arg-type]
                parent_id=ca.parent_id,
                subject=ca.subject,
                serial=ca.serial_hex,
                key_algorithm=ca.key.algorithm.value,
                not_before=ca.not_before,
                not_after=ca.not_after,
                certificate_url=urls.ca_certificate(ca.id),
                crl_url=urls.crl(ca.id),
            ).model_dump(mode="json")
            for ca in cas
        ]

    return JSONResponse(await asyncio.to_thread(query))


@router.get(
    "/agencies",
    operation_id="listAgencies",
    summary="The agencies (and sub-units) known to the CA.",
    tags=["directory"],
    response_model=list[schemas.Agency],
    responses=_problems(),
)
async def list_agencies(request: Request, principal: Caller) -> JSONResponse:
    platform = get_platform(request)
    platform.authorize(principal, Permission.AGENCY_READ, agency_id=None, agency_bound=False)
    agencies = await asyncio.to_thread(platform.list_agencies)
    return JSONResponse(
        [schemas.Agency(id=a.id, name=a.name, parent_id=a.parent_id).model_dump(mode="json") for a in agencies]
    )
