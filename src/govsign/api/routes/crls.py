"""CRL publication on request (`/api/v1/crls`): a CA-level action, approved by a second
administrator by default. The CRLs themselves are published at `/pki/crl/...`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from govsign.api.deps import Caller, get_services, requester
from govsign.api.routes.parameters import answer_outcome, pending, problems

router = APIRouter(prefix="/api/v1", tags=["ca"])


@router.post(
    "/crls",
    operation_id="publishCRLs",
    summary="Publish fresh CRLs now (a CA-level action: a second administrator approves by default).",
    responses={200: {"description": "The CRLs published."}, **pending(), **problems(422)},
)
async def publish_crls(request: Request, principal: Caller) -> JSONResponse:
    return await answer_outcome(get_services(request).hierarchy.request_crl_publication, requester(request, principal))
