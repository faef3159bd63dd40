"""REST endpoints of the signing service (`/api/v1/signatures`): PAdES, CAdES detached and hash
signing with organization (agency seal) or device credentials whose keys are in the HSM.

The role, agency, credential and status checks are made in :mod:`govsign.api.signing`.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from govsign.access.policy import Principal
from govsign.api.deps import Caller, audit_context, get_platform
from govsign.api.routes.ra import _problems
from govsign.api.schemas import resources as schemas
from govsign.api.signing import SigningService

router = APIRouter(prefix="/api/v1")


def _service(request: Request, principal: Principal) -> SigningService:
    return SigningService(get_platform(request), principal, audit_context(request, principal))


@router.post(
    "/signatures/pdf",
    operation_id="signPDF",
    summary="Sign a PDF (PAdES B-B or B-T) with an organization credential; returns the signed PDF.",
    tags=["signatures"],
    response_model=schemas.PDFSignature,
    responses=_problems(404, 409, 413, 422),
)
async def sign_pdf(request: Request, body: schemas.PDFSignatureRequest, principal: Caller) -> JSONResponse:
    return JSONResponse(await asyncio.to_thread(_service(request, principal).sign_pdf, body))


@router.post(
    "/signatures/cms",
    operation_id="signCMS",
    summary="Sign any content with a detached CAdES-B-B signature (.p7s) with an organization credential.",
    tags=["signatures"],
    response_model=schemas.CMSSignature,
    responses=_problems(404, 409, 413, 422),
)
async def sign_cms(request: Request, body: schemas.CMSSignatureRequest, principal: Caller) -> JSONResponse:
    return JSONResponse(await asyncio.to_thread(_service(request, principal).sign_cms, body))


@router.post(
    "/signatures/digests",
    operation_id="signDigests",
    summary="Sign up to 100 client-computed digests: detached CMS SignedData or raw signature values.",
    tags=["signatures"],
    response_model=schemas.DigestSignatures,
    responses=_problems(404, 409, 413, 422),
)
async def sign_digests(request: Request, body: schemas.DigestSignatureRequest, principal: Caller) -> JSONResponse:
    return JSONResponse(await asyncio.to_thread(_service(request, principal).sign_digests, body))
