"""The agencies (and sub-units) known to the CA (`/api/v1/agencies`)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from govsign.access.policy import Permission
from govsign.api.deps import Caller, get_services, requester
from govsign.api.routes.parameters import problems
from govsign.api.schemas import resources as schemas

router = APIRouter(prefix="/api/v1", tags=["directory"])


@router.get(
    "/agencies",
    operation_id="listAgencies",
    summary="The agencies (and sub-units) known to the CA.",
    response_model=list[schemas.Agency],
    responses=problems(),
)
async def list_agencies(request: Request, principal: Caller) -> JSONResponse:
    services = get_services(request)
    services.authorization.check_role(requester(request, principal), Permission.AGENCY_READ)
    agencies = await asyncio.to_thread(services.directory.list_agencies)
    return JSONResponse(
        [schemas.Agency(id=a.id, name=a.name, parent_id=a.parent_id).model_dump(mode="json") for a in agencies]
    )
