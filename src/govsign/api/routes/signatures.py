"""Signing (`/api/v1/signatures`): PAdES, CAdES detached, S/MIME and digest batches.

Documents travel as the raw request body (application/pdf, application/octet-stream,
message/rfc822) and are hashed as they arrive. Bodies up to 1 MiB are kept in memory and a
signed PDF of such a body is answered from memory; larger ones are written to a private
temporary file, and the signed result is streamed back from a file: memory stays bounded for
large PDFs. The signing parameters are query parameters; small documents may instead be sent as
JSON with the document in base64 and the parameters beside it. An official's signature
activation travels in the ``Govsign-Activation`` header (never in the URL, which proxies log).

The role, agency, credential, status and activation checks are the signing service's
(:mod:`govsign.services.signatures`).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.types import DecoratedCallable
from pydantic import BaseModel

from govsign.api.deps import Caller, get_services, media_type, requester
from govsign.api.documents import json_body, spool_body
from govsign.api.operation_roles import role_first
from govsign.api.representation import decode_base64
from govsign.api.routes.parameters import ACTIVATION, PDF_PASSWORD, pdf_password, problems
from govsign.api.schemas import resources as schemas
from govsign.errors import InvalidInputError
from govsign.services.documents import SpooledDocument
from govsign.services.signatures import CMSSigningRequest, DigestSigningRequest, PDFSigningRequest, SignedContent

router = APIRouter(prefix="/api/v1", tags=["signatures"])

Q = TypeVar("Q", bound=BaseModel)
T = TypeVar("T")


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    return schema


def _document_body(media_type: str, json_model: type[BaseModel], description: str) -> dict[str, Any]:
    """The raw document (streamed; parameters in the query string) or, for small documents, JSON
    with the document in base64 and the parameters beside it."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": _inline_schema(json_model)},
            },
        }
    }


def _document_response(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": description + " JSON requests get JSON with the result in base64.",
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": _inline_schema(schemas.SignedDocument)},
            },
        }
    }


def _document_route(
    path: str,
    operation_id: str,
    summary: str,
    *,
    body: dict[str, Any],
    signed: dict[int | str, dict[str, Any]],
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The route of a signing that takes a document (see :func:`_document_body`) and answers the
    signed result (see :func:`_document_response`)."""
    return router.post(
        path,
        operation_id=operation_id,
        summary=summary,
        response_class=Response,
        openapi_extra=body,
        responses={**signed, **problems(404, 409, 413, 415, 422)},
    )


def _is_json(request: Request) -> bool:
    return media_type(request) == "application/json"


async def _json_document(
    request: Request, json_model: type[BaseModel], query_model: type[Q]
) -> tuple[SpooledDocument, Q]:
    """A JSON signing request (at most GOVSIGN_MAX_REQUEST_BYTES): the decoded document and the
    parameters."""
    parsed = await json_body(request, json_model)
    data = parsed.model_dump()
    content = decode_base64(data.pop("document"), "document")
    if not content:
        raise InvalidInputError("The document is empty; send the document to sign.")
    return SpooledDocument.of(content), query_model.model_validate(data)


async def _signing(
    request: Request,
    params: BaseModel,
    json_model: type[BaseModel],
    query_model: type[Q],
    sign: Callable[[SpooledDocument, Q], T],
) -> tuple[T, Q]:
    """Receive the document (raw or JSON), sign it in a worker thread, and always drop it."""
    credential = getattr(params, "credential", None)  # who may sign is decided before the document is judged
    await role_first(request, action="signature.create", object_id=credential or "document")
    if _is_json(request):
        document, query = await _json_document(request, json_model, query_model)
    else:
        if getattr(params, "credential", None) is None:
            raise InvalidInputError("The credential query parameter is required with a raw document body.")
        query = query_model.model_validate(params.model_dump())
        document = await spool_body(request, empty="The request body is empty; send the document to sign.")
    try:
        return await asyncio.to_thread(sign, document, query), query
    finally:
        document.discard()


def _signed_json(
    document: bytes, document_sha256: str, credential: str, level: str | None, signature_algorithm: str | None
) -> JSONResponse:
    return JSONResponse(
        schemas.SignedDocument(
            document=base64.b64encode(document).decode("ascii"),
            document_sha256=document_sha256,
            credential=credential,
            level=level,
            signature_algorithm=signature_algorithm,
        ).model_dump(mode="json")
    )


def _serial(credential: str) -> str:
    return credential.replace(":", "").lower()


def _signed_answer(
    request: Request,
    signed: SignedContent,
    credential: str,
    level: str,
    media_type: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A signed result held in memory: as JSON to a JSON request, otherwise as ``media_type``
    with the received document's SHA-256 (and ``headers``)."""
    if _is_json(request):
        return _signed_json(signed.data, signed.document_sha256, _serial(credential), level, signed.signature_algorithm)
    return Response(
        signed.data,
        media_type=media_type,
        headers={
            "Govsign-Document-SHA256": signed.document_sha256,
            "Govsign-Credential": _serial(credential),
            "Govsign-Signature-Algorithm": signed.signature_algorithm or "",
            **(headers or {}),
        },
    )


def _pdf_request(query: schemas.PDFSignatureQuery) -> PDFSigningRequest:
    box = tuple(float(value) for value in query.stamp_box.split(",")) if query.stamp_box is not None else None
    return PDFSigningRequest(
        credential=query.credential,
        level=query.level,
        reason=query.reason,
        location=query.location,
        field_name=query.field_name,
        certify=query.certify,
        stamp=query.stamp,
        stamp_page=query.stamp_page,
        stamp_box=box,  # type: ignore[arg-type]
        title_text=query.title_text,
        name_text=query.name_text,
        document_number=query.document_number,
        copy_form=query.copy_form,
        copy_agency=query.copy_agency,
        seal_diameter_mm=query.seal_diameter_mm,
        verification_line=query.verification_line,
        signature_algorithm=query.signature_algorithm,
    )


@_document_route(
    "/signatures/pdf",
    "signPDF",
    "Sign a PDF (PAdES B-B, B-T, B-LT or B-LTA); the body is the PDF, the response the signed PDF.",
    body=_document_body("application/pdf", schemas.PDFSignatureJSON, "The PDF to sign."),
    signed=_document_response("application/pdf", "The signed PDF (an incremental update of the one sent)."),
)
async def sign_pdf(
    request: Request,
    params: Annotated[schemas.PDFSignatureParams, Query()],
    principal: Caller,
    activation: ACTIVATION = None,
    password: PDF_PASSWORD = None,
) -> Response:
    signatures, who = get_services(request).signatures, requester(request, principal)
    signed, _ = await _signing(
        request,
        params,
        schemas.PDFSignatureJSON,
        schemas.PDFSignatureQuery,
        lambda document, query: signatures.sign_pdf(
            document, _pdf_request(query), who, activation, password=pdf_password(password)
        ),
    )
    headers = {
        "Govsign-Document-SHA256": signed.document_sha256,
        "Govsign-Signed-SHA256": signed.signed_sha256,
        "Govsign-Credential": signed.credential,
        "Govsign-Level": signed.level,
        "Govsign-Signature-Algorithm": signed.signature_algorithm or "",
    }
    if _is_json(request):
        data = signed.data if signed.data is not None else b"".join(signed.chunks())
        return _signed_json(data, signed.document_sha256, signed.credential, signed.level, signed.signature_algorithm)
    if signed.data is not None:
        return Response(signed.data, media_type="application/pdf", headers=headers)
    headers["Content-Length"] = str(signed.size)
    return StreamingResponse(signed.chunks(), media_type="application/pdf", headers=headers)


@_document_route(
    "/signatures/cms",
    "signCMS",
    "Sign any content with a detached CAdES signature (.p7s); the body is the content.",
    body=_document_body("application/octet-stream", schemas.CMSSignatureJSON, "The content to sign (any bytes)."),
    signed=_document_response("application/pkcs7-signature", "Detached CMS SignedData, DER."),
)
async def sign_cms(
    request: Request,
    params: Annotated[schemas.CMSSignatureParams, Query()],
    principal: Caller,
    activation: ACTIVATION = None,
) -> Response:
    signatures, who = get_services(request).signatures, requester(request, principal)
    signed, query = await _signing(
        request,
        params,
        schemas.CMSSignatureJSON,
        schemas.CMSSignatureQuery,
        lambda document, query: signatures.sign_cms(
            document,
            CMSSigningRequest(
                credential=query.credential,
                level=query.level,
                digest_algorithm=query.digest_algorithm,
                signature_algorithm=query.signature_algorithm,
            ),
            who,
            activation,
        ),
    )
    return _signed_answer(
        request,
        signed,
        query.credential,
        query.level,
        "application/pkcs7-signature",
        {"Content-Disposition": 'attachment; filename="signature.p7s"'},
    )


@_document_route(
    "/signatures/smime",
    "signSMIME",
    "Sign an RFC 5322 e-mail message as S/MIME multipart/signed (RFC 8551).",
    body=_document_body(
        "message/rfc822", schemas.SMIMESignatureJSON, "The message; its From address must be the certificate's e-mail."
    ),
    signed=_document_response("message/rfc822", "The signed message."),
)
async def sign_smime(
    request: Request,
    params: Annotated[schemas.SMIMESignatureParams, Query()],
    principal: Caller,
    activation: ACTIVATION = None,
) -> Response:
    signatures, who = get_services(request).signatures, requester(request, principal)
    signed, query = await _signing(
        request,
        params,
        schemas.SMIMESignatureJSON,
        schemas.SMIMESignatureQuery,
        lambda document, query: signatures.sign_smime(document, query.credential, who, activation),
    )
    return _signed_answer(request, signed, query.credential, "B-B", "message/rfc822")


@router.post(
    "/signatures/digests",
    operation_id="signDigests",
    summary="Sign up to 100 client-computed digests: detached CMS SignedData or raw signature values.",
    response_model=schemas.DigestSignatures,
    responses=problems(404, 409, 413, 422),
)
async def sign_digests(
    request: Request, body: schemas.DigestSignatureRequest, principal: Caller, activation: ACTIVATION = None
) -> JSONResponse:
    signing = DigestSigningRequest(
        credential=body.credential,
        digest_algorithm=body.digest_algorithm,
        digests=tuple(decode_base64(digest, "digest") for digest in body.digests),
        output=body.output,
        level=body.level,
        signature_algorithm=body.signature_algorithm,
    )
    signed = await asyncio.to_thread(
        get_services(request).signatures.sign_digests, signing, requester(request, principal), activation
    )
    return JSONResponse(
        schemas.DigestSignatures(
            signatures=[base64.b64encode(s).decode("ascii") for s in signed.signatures],
            credential=signed.credential,
            signature_algorithm=signed.signature_algorithm,
        ).model_dump(mode="json"),
        headers={"Govsign-Credential": signed.credential, "Govsign-Signature-Algorithm": signed.signature_algorithm},
    )
