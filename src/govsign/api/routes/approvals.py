"""Dual-control approval requests (`/api/v1/approvals`): list, approve (and so execute), reject."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from govsign.api.deps import Caller, get_services, requester
from govsign.api.representation import approval_page, decode_approval_cursor, outcome
from govsign.api.routes.parameters import APPROVAL_ID, LIMIT, answer_outcome, problems
from govsign.api.schemas import resources as schemas
from govsign.services.approvals import Approvals
from govsign.services.authorization import Requester

router = APIRouter(prefix="/api/v1", tags=["approvals"])


@router.get(
    "/approvals",
    operation_id="listApprovals",
    summary="Dual-control requests visible to the caller.",
    response_model=schemas.ApprovalPage,
    responses=problems(422),
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
    after = decode_approval_cursor(cursor)
    found = await asyncio.to_thread(
        get_services(request).approvals.list, requester(request, principal), status=status, after=after, limit=limit
    )
    return JSONResponse(approval_page(found))


def _decide(approvals: Approvals, approval_id: str, approve: bool, who: Requester) -> object:
    return approvals.decide(approval_id, approve=approve, requester=who, describe=lambda result: outcome(result).body)


@router.post(
    "/approvals/{approval_id}/approve",
    operation_id="approveRequest",
    summary="Approve (and so execute) a pending request made by another officer.",
    responses={
        200: {"description": "The executed operation's result."},
        201: {"description": "The issued certificate."},
        **problems(404, 409, 422),
    },
)
async def approve(request: Request, approval_id: APPROVAL_ID, principal: Caller) -> JSONResponse:
    return await answer_outcome(
        _decide, get_services(request).approvals, approval_id, True, requester(request, principal)
    )


@router.post(
    "/approvals/{approval_id}/reject",
    operation_id="rejectRequest",
    summary="Reject a pending request made by another officer.",
    response_model=schemas.Approval,
    responses=problems(404, 409, 422),
)
async def reject(request: Request, approval_id: APPROVAL_ID, principal: Caller) -> JSONResponse:
    return await answer_outcome(
        _decide, get_services(request).approvals, approval_id, False, requester(request, principal)
    )
