"""The certificate authorities (`/api/v1/cas`) and where their certificates and CRLs are published."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from govsign.api.deps import Caller, get_services, requester
from govsign.api.representation import ca_resource
from govsign.api.routes.parameters import problems
from govsign.api.schemas import resources as schemas

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
