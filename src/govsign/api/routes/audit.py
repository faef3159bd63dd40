"""The audit log (`/api/v1/audit`), for auditors and administrators."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from govsign.access.policy import Permission
from govsign.api.deps import Caller, get_services, requester
from govsign.api.representation import decode_id_cursor, page
from govsign.api.routes.parameters import LIMIT, problems
from govsign.api.schemas import resources as schemas
from govsign.audit.events import AuditQuery

router = APIRouter(prefix="/api/v1", tags=["audit"])


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    return moment.replace(tzinfo=moment.tzinfo or dt.UTC) if moment else None


@router.get(
    "/audit",
    operation_id="searchAudit",
    summary="Audit events, oldest first, filtered, with cursor pagination (auditors and admins).",
    response_model=schemas.AuditPage,
    responses=problems(422),
)
async def search_audit(
    request: Request,
    principal: Caller,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    client_id: Annotated[str | None, Query(max_length=64)] = None,
    agency_id: Annotated[str | None, Query(max_length=64)] = None,
    object_id: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[schemas.DateTimeText | None, Query(description="From this time (inclusive).")] = None,
    until: Annotated[schemas.DateTimeText | None, Query(description="Until this time (exclusive).")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: LIMIT = 100,
) -> JSONResponse:
    services = get_services(request)
    services.authorization.check_role(requester(request, principal), Permission.AUDIT_READ)
    query = AuditQuery(
        action=action,
        actor=actor,
        client_id=client_id,
        agency_id=agency_id,
        object_id=object_id,
        since=_utc(since),
        until=_utc(until),
        after_id=decode_id_cursor(cursor),
        limit=limit + 1,
    )
    rows = await asyncio.to_thread(services.audit.search, query)
    items: list[dict[str, Any]] = [schemas.AuditEvent(**row).model_dump(mode="json") for row in rows[:limit]]
    return JSONResponse(page(items, len(rows) > limit, rows[limit - 1]["id"] if len(rows) > limit else None))
