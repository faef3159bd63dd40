"""The certificate authorities (`/api/v1/cas`), where their certificates and CRLs are published,
and the replacement of their service certificates (CA administration, under dual control)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Request
from fastapi.responses import JSONResponse

from govsign.api.deps import Caller, get_services, requester
from govsign.api.representation import ca_resource
from govsign.api.routes.parameters import answer_outcome, pending, problems
from govsign.api.schemas import resources as schemas
from govsign.pki.records import RevocationReason

router = APIRouter(prefix="/api/v1", tags=["ca"])


@router.get(
    "/cas",
    operation_id="listCertificateAuthorities",
    summary="The certificate authorities and where their certificates and CRLs are published.",
    response_model=list[schemas.CertificateAuthority],
    responses=problems(),
)
async def list_cas(request: Request, principal: Caller) -> JSONResponse:
    hierarchy = get_services(request).hierarchy
    cas = await asyncio.to_thread(hierarchy.list_cas, requester(request, principal))
    urls = hierarchy.urls
    return JSONResponse([ca_resource(ca, urls.ca_certificate(ca.id), urls.crl(ca.id)) for ca in cas])


@router.post(
    "/cas/{ca_id}/service-certificates/{profile}/replacement",
    operation_id="replaceServiceCertificate",
    summary="Replace the CA's OCSP responder or TSA certificate: a new HSM key and certificate, the old one "
    "revoked (CA administration: a second administrator approves by default).",
    status_code=201,
    response_model=schemas.Certificate,
    responses={**pending("Waiting for a second administrator's approval."), **problems(404, 409, 422)},
)
async def replace_service_certificate(
    request: Request,
    ca_id: Annotated[str, Path(pattern=r"^[a-z0-9-]{1,64}$", description="The issuing CA's id.")],
    profile: Annotated[Literal["ocsp-responder", "tsa"], Path(description="Which service certificate.")],
    principal: Caller,
    body: Annotated[schemas.ServiceCertificateReplacementRequest | None, Body()] = None,
) -> JSONResponse:
    reason = RevocationReason(body.reason if body is not None else "superseded")
    return await answer_outcome(
        get_services(request).hierarchy.replace_service_certificate,
        profile,
        requester(request, principal),
        reason=reason,
        ca_id=ca_id,
    )
