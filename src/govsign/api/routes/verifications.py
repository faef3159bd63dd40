"""Verification of signed documents (`/api/v1/verifications`): ETSI EN 319 102-1 reports,
stored and read back by id."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from govsign.api.deps import Caller, get_services, get_settings, media_type, requester
from govsign.api.documents import json_body, spool_body
from govsign.api.operation_roles import role_first
from govsign.api.representation import decode_base64
from govsign.api.routes.parameters import PDF_PASSWORD, pdf_password, problems
from govsign.api.schemas.verification import CMSVerificationRequest, VerificationReport
from govsign.errors import InvalidInputError
from govsign.services.authorization import Requester
from govsign.services.documents import SpooledDocument

router = APIRouter(prefix="/api/v1", tags=["verification"])

VERIFICATION_ID = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="The stored report's id.")]


@router.post(
    "/verifications",
    operation_id="verifyDocument",
    summary="Verify a signed document: a PDF (every signature and document time-stamp), an S/MIME message, "
    "an attached CMS, or a detached CMS with its document or digest (JSON); the report is stored.",
    status_code=201,
    response_model=VerificationReport,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "application/pkcs7-mime": {"schema": {"type": "string", "format": "binary"}},
                "application/cms": {"schema": {"type": "string", "format": "binary"}},
                "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["signature", "document"],
                        "properties": {
                            "signature": {"type": "string", "format": "binary"},
                            "document": {"type": "string", "format": "binary"},
                        },
                    }
                },
                "application/json": {"schema": CMSVerificationRequest.model_json_schema()},
            },
        }
    },
    responses=problems(413, 415, 422),
)
async def verify(request: Request, principal: Caller, password: PDF_PASSWORD = None) -> JSONResponse:
    services = get_services(request)
    who = requester(request, principal)
    await role_first(request, action="document.verify", object_id="document")  # the role before the document
    if media_type(request) == "application/json":
        return _created(await _verify_json(request, who))
    if media_type(request) == "multipart/form-data":
        return _created(await _verify_form(request, who))
    document = await spool_body(request, empty="The request body is empty; send the document to verify.")
    try:
        if media_type(request) == "application/pdf":
            stored = await asyncio.to_thread(
                functools.partial(services.verifications.verify_pdf, password=pdf_password(password)), document, who
            )
        elif media_type(request) == "message/rfc822":
            stored = await asyncio.to_thread(services.verifications.verify_smime, document, who)
        else:
            stored = await asyncio.to_thread(services.verifications.verify_cms, document.read_all(), who)
    finally:
        document.discard()
    return _created(stored.as_json())


async def _verify_json(request: Request, who: Requester) -> dict[str, Any]:
    """A detached CMS with its document or digest, or a time-stamp with its document (JSON)."""
    verifications = get_services(request).verifications
    body = await json_body(request, CMSVerificationRequest)
    if (body.signature is None) == (body.timestamp is None):
        raise InvalidInputError("Send either a signature or a time-stamp, not both or neither.")
    content = decode_base64(body.document, "document") if body.document is not None else None
    document = SpooledDocument.of(content) if content is not None else None
    if body.timestamp is not None:
        if document is None:
            raise InvalidInputError("A time-stamp is verified with the document it stamps; send the document.")
        token = decode_base64(body.timestamp, "timestamp")
        stored = await asyncio.to_thread(verifications.verify_timestamp, token, document, who)
        return stored.as_json()
    signature = decode_base64(body.signature or "", "signature")
    digest = bytes.fromhex(body.digest) if body.digest is not None else None
    stored = await asyncio.to_thread(verifications.verify_cms, signature, who, document=document, digest=digest)
    return stored.as_json()


async def _verify_form(request: Request, who: Requester) -> dict[str, Any]:
    """A detached signature (part ``signature``) or a time-stamp (part ``timestamp``) with its
    document (part ``document``)."""
    verifications = get_services(request).verifications
    limit = get_settings(request).max_document_bytes
    async with request.form(max_files=2, max_fields=0, max_part_size=limit) as form:
        timestamp_part = form.get("timestamp")
        signed_part = timestamp_part if timestamp_part is not None else form.get("signature")
        document_part = form.get("document")
        if not isinstance(signed_part, UploadFile) or not isinstance(document_part, UploadFile):
            raise InvalidInputError(
                "Send the signature (or the time-stamp) in a part named signature (timestamp) and the document in "
                "a part named document."
            )
        signature = await signed_part.read()
        document = SpooledDocument.receive(FilePath(get_settings(request).data_dir) / "spool")
        try:
            while chunk := await document_part.read(1 << 20):
                document.write(chunk)
            document.close()
            if document.size == 0 or not signature:
                raise InvalidInputError("The signature and the document must not be empty.")
            if timestamp_part is not None:
                stored = await asyncio.to_thread(verifications.verify_timestamp, signature, document, who)
            else:
                stored = await asyncio.to_thread(verifications.verify_cms, signature, who, document=document)
        finally:
            document.discard()
    return stored.as_json()


def _created(report: dict[str, Any]) -> JSONResponse:
    return JSONResponse(report, status_code=201, headers={"Location": f"/api/v1/verifications/{report['id']}"})


@router.get(
    "/verifications/{verification_id}",
    operation_id="getVerification",
    summary="A stored verification report: JSON, (format=pdf) a PDF in Vietnamese and English sealed with the "
    "service's PAdES seal, or (format=etsi) the ETSI TS 119 102-2 XML report.",
    response_model=VerificationReport,
    responses={
        200: {
            "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "application/xml": {"schema": {"type": "string"}},
            }
        },
        **problems(404),
    },
)
async def get_verification(
    request: Request,
    verification_id: VERIFICATION_ID,
    principal: Caller,
    report_format: Annotated[
        Literal["json", "pdf", "etsi"], Query(alias="format", description="json, pdf or etsi.")
    ] = "json",
) -> Response:
    services = get_services(request)
    who = requester(request, principal)
    if report_format == "pdf":
        pdf = await asyncio.to_thread(services.verification_reports.pdf, verification_id, who)
        disposition = f'attachment; filename="verification-{verification_id}.pdf"'
        return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": disposition})
    if report_format == "etsi":
        xml = await asyncio.to_thread(services.verifications.etsi_report, verification_id, who)
        return Response(xml.encode("utf-8"), media_type="application/xml")
    report = await asyncio.to_thread(services.verifications.get, verification_id, who)
    return JSONResponse(report)
