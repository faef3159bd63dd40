"""Subscriber certificates (`/api/v1/certificates`): enrolment, reads and the lifecycle.

Every endpoint needs an authenticated API client; the role, agency and dual-control rules are
the certificate service's (:mod:`govsign.services.certificates`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.types import DecoratedCallable

from govsign.access.policy import Principal
from govsign.api.deps import Caller, get_services, requester
from govsign.api.representation import certificate_page, certificate_resource, decode_id_cursor, outcome
from govsign.api.routes.parameters import IDEMPOTENCY_KEY, LIMIT, SERIAL, answer, answer_outcome, pending, problems
from govsign.api.schemas import resources as schemas
from govsign.keystore.api import KeyAlgorithm
from govsign.pki.issuance import IssuanceRequest
from govsign.pki.records import CertificateStatus, RevocationReason
from govsign.services.certificates import CertificateQuery
from govsign.services.idempotency import Claim

router = APIRouter(prefix="/api/v1", tags=["certificates"])

_PENDING = pending("Waiting for a second officer's approval.")


async def _once(
    request: Request,
    principal: Principal,
    idempotency_key: str | None,
    fingerprint: dict[str, Any],
    perform: Callable[[Claim[Any] | None], object],
) -> JSONResponse:
    """Perform an operation at most once per idempotency key of the caller: a retry with the same key
    (and the same ``fingerprint`` of the request) gets the first answer."""
    stored = await asyncio.to_thread(
        get_services(request).idempotency.run, principal.client_id, idempotency_key, fingerprint, perform, outcome
    )
    return answer(stored)


@router.post(
    "/certificates",
    operation_id="enrolCertificate",
    summary="Enrol a subscriber: issue a certificate from a CSR or with a key generated in the HSM.",
    status_code=201,
    response_model=schemas.Certificate,
    responses={**_PENDING, **problems(404, 409, 413, 422)},
)
async def enrol(
    request: Request, body: schemas.EnrolmentRequest, principal: Caller, idempotency_key: IDEMPOTENCY_KEY = None
) -> JSONResponse:
    services = get_services(request)
    spec = IssuanceRequest(
        profile=body.profile,
        subject=body.subject,
        email=body.email,
        csr=body.csr.encode("utf-8") if body.csr is not None else None,
        key_algorithm=KeyAlgorithm(body.key_algorithm) if body.key_algorithm else None,
        validity_days=body.validity_days,
        agency_id=body.agency_id or principal.agency_id,
    )
    who = requester(request, principal)
    return await _once(
        request,
        principal,
        idempotency_key,
        body.model_dump(mode="json"),
        lambda claim: services.certificates.enrol(spec, who, completion=claim),
    )


@router.get(
    "/certificates",
    operation_id="searchCertificates",
    summary="Search certificates of the caller's agency (and sub-units), newest last, with cursor pagination.",
    response_model=schemas.CertificatePage,
    responses=problems(422),
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
    query = CertificateQuery(
        status=CertificateStatus(status) if status else None,
        profile=profile,
        agency_id=agency_id,
        subject_contains=subject_contains,
        after_id=decode_id_cursor(cursor),
        limit=limit,
    )
    found = await asyncio.to_thread(get_services(request).certificates.search, query, requester(request, principal))
    return JSONResponse(certificate_page(found))


@router.get(
    "/certificates/{serial}",
    operation_id="getCertificate",
    summary="One certificate and its status.",
    response_model=schemas.Certificate,
    responses=problems(404, 409, 422),
)
async def get_certificate(request: Request, serial: SERIAL, principal: Caller) -> JSONResponse:
    view = await asyncio.to_thread(get_services(request).certificates.show, serial, requester(request, principal))
    return JSONResponse(certificate_resource(view))


@router.get(
    "/certificates/{serial}/chain",
    operation_id="getCertificateChain",
    summary="The certificate with its CA chain: PEM bundle, DER (the certificate alone) or PKCS#7.",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/pem-certificate-chain": {},
                "application/pkix-cert": {},
                "application/pkcs7-mime": {},
            }
        },
        **problems(404, 409, 422),
    },
)
async def get_chain(
    request: Request,
    serial: SERIAL,
    principal: Caller,
    format: Annotated[Literal["pem", "der", "pkcs7"], Query(description="Output format.")] = "pem",
) -> Response:
    chain = await asyncio.to_thread(get_services(request).certificates.chain, serial, requester(request, principal))
    if format == "pem":
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
        return Response(pem, media_type="application/pem-certificate-chain")
    if format == "der":
        return Response(chain[0].public_bytes(serialization.Encoding.DER), media_type="application/pkix-cert")
    return Response(
        pkcs7.serialize_certificates(chain, serialization.Encoding.DER), media_type="application/pkcs7-mime"
    )


@router.post(
    "/certificates/{serial}/revocation",
    operation_id="revokeCertificate",
    summary="Revoke a certificate (organization certificates need a second officer by default).",
    response_model=schemas.Certificate,
    responses={**_PENDING, **problems(404, 409, 413, 422)},
)
async def revoke(request: Request, serial: SERIAL, body: schemas.RevocationRequest, principal: Caller) -> JSONResponse:
    invalidity = body.invalidity_date
    if invalidity is not None and invalidity.tzinfo is None:
        invalidity = invalidity.replace(tzinfo=dt.UTC)
    return await answer_outcome(
        get_services(request).certificates.revoke,
        serial,
        RevocationReason(body.reason),
        requester(request, principal),
        invalidity_date=invalidity,
    )


def _state_change(action: str, operation_id: str, summary: str) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The route of a change of a certificate's state at ``/certificates/{serial}/{action}``."""
    return router.post(
        f"/certificates/{{serial}}/{action}",
        operation_id=operation_id,
        summary=summary,
        response_model=schemas.Certificate,
        responses={**pending(), **problems(404, 409, 422)},
    )


@_state_change("hold", "holdCertificate", "Suspend a certificate (certificateHold).")
async def hold(request: Request, serial: SERIAL, principal: Caller) -> JSONResponse:
    return await answer_outcome(get_services(request).certificates.hold, serial, requester(request, principal))


@_state_change("release", "releaseCertificate", "Release a certificate from hold.")
async def release(request: Request, serial: SERIAL, principal: Caller) -> JSONResponse:
    return await answer_outcome(get_services(request).certificates.release, serial, requester(request, principal))


@router.post(
    "/certificates/{serial}/renewal",
    operation_id="renewCertificate",
    summary="Renew: a new certificate for the same subject and key.",
    status_code=201,
    response_model=schemas.Certificate,
    responses=problems(404, 409, 413, 422),
)
async def renew(
    request: Request,
    serial: SERIAL,
    body: schemas.RenewalRequest,
    principal: Caller,
    idempotency_key: IDEMPOTENCY_KEY = None,
) -> JSONResponse:
    certificates, who = get_services(request).certificates, requester(request, principal)
    return await _once(
        request,
        principal,
        idempotency_key,
        {"serial": serial, **body.model_dump(mode="json")},
        lambda claim: certificates.renew(serial, who, validity_days=body.validity_days, completion=claim),
    )
