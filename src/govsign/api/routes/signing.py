"""REST endpoints of the signing service (`/api/v1/signatures`) and of sole control
(`/api/v1/credentials/{serial}/...`).

Documents travel as the raw request body (application/pdf, application/octet-stream,
message/rfc822) and are hashed as they arrive. Bodies up to 1 MiB are kept in memory and a
signed PDF of such a body is answered from memory; larger ones are written to a private
temporary file, and the signed result is streamed back from a file: memory stays bounded for
large PDFs. The
signing parameters are query parameters; an official's signature activation travels in the
``Govsign-Activation`` header (never in the URL, which proxies log).

The role, agency, credential, status and activation checks are made in
:mod:`govsign.api.signing` and :mod:`govsign.sole_control`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from govsign.access.policy import Principal
from govsign.api.deps import Caller, audit_context, get_platform
from govsign.api.middleware import DOCUMENT_ROUTES
from govsign.api.routes.ra import SERIAL, _problems
from govsign.api.schemas import resources as schemas
from govsign.api.signing import SigningService, SpooledDocument, decode_base64
from govsign.errors import InvalidInputError
from govsign.sole_control import SoleControl

router = APIRouter(prefix="/api/v1")

ACTIVATION = Annotated[
    str | None,
    Header(
        alias="Govsign-Activation",
        max_length=100,
        description="The official's signature activation (required for individual credentials).",
    ),
]


def _service(request: Request, principal: Principal) -> SigningService:
    return SigningService(get_platform(request), principal, audit_context(request, principal))


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


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


Q = TypeVar("Q", bound=BaseModel)


async def _json_document(
    request: Request, json_model: type[BaseModel], query_model: type[Q]
) -> tuple[SpooledDocument, Q]:
    """A JSON signing request (at most GOVSIGN_MAX_REQUEST_BYTES): the decoded document and the
    parameters."""
    limit = get_platform(request).runtime.settings.max_request_bytes
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise StarletteHTTPException(
                413, f"JSON requests are at most {limit} bytes; send larger documents as the raw request body."
            )
    try:
        parsed = json_model.model_validate_json(bytes(body))
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False, include_context=False)) from None
    data = parsed.model_dump()
    content = decode_base64(data.pop("document"), "document")
    if not content:
        raise InvalidInputError("The document is empty; send the document to sign.")
    document = SpooledDocument.receive(None)
    document.write(content)
    document.close()
    document.remember("sha256", hashlib.sha256(content).digest())
    return document, query_model.model_validate(data)


async def _document(
    request: Request, params: BaseModel, json_model: type[BaseModel], query_model: type[Q]
) -> tuple[SpooledDocument, Q]:
    if _is_json(request):
        return await _json_document(request, json_model, query_model)
    if getattr(params, "credential", None) is None:
        raise InvalidInputError("The credential query parameter is required with a raw document body.")
    query = query_model.model_validate(params.model_dump())
    return await _spool(request), query


T = TypeVar("T")


async def _signing(
    request: Request,
    params: BaseModel,
    json_model: type[BaseModel],
    query_model: type[Q],
    sign: Callable[[SpooledDocument, Q], T],
) -> tuple[T, Q]:
    """Receive the document (raw or JSON), sign it in a worker thread, and always drop it."""
    document, query = await _document(request, params, json_model, query_model)
    try:
        return await asyncio.to_thread(sign, document, query), query
    finally:
        document.discard()


def _signed_json(document: bytes, document_sha256: str, credential: str, level: str | None) -> JSONResponse:
    return JSONResponse(
        schemas.SignedDocument(
            document=base64.b64encode(document).decode("ascii"),
            document_sha256=document_sha256,
            credential=credential,
            level=level,
        ).model_dump(mode="json")
    )


def _serial(credential: str) -> str:
    return credential.replace(":", "").lower()


async def _spool(request: Request) -> SpooledDocument:
    """The request body, hashed (SHA-256) as it arrives: in memory up to 1 MiB, beyond that in a
    private temporary file under the data directory (415 unless its media type is the one the
    endpoint takes)."""
    accepted = DOCUMENT_ROUTES[request.url.path]
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in accepted:
        expected = " or ".join([*sorted(accepted), "application/json"])
        raise StarletteHTTPException(415, f"Request bodies must be {expected}.")
    directory = Path(get_platform(request).runtime.settings.data_dir) / "spool"
    document = SpooledDocument.receive(directory)
    hasher = hashlib.sha256()
    try:
        async for chunk in request.stream():
            if chunk:
                hasher.update(chunk)
                document.write(chunk)
        document.close()
    except BaseException:
        document.discard()
        raise
    document.remember("sha256", hasher.digest())
    if document.size == 0:
        document.discard()
        raise InvalidInputError("The request body is empty; send the document to sign.")
    return document


@router.post(
    "/signatures/pdf",
    operation_id="signPDF",
    summary="Sign a PDF (PAdES B-B, B-T, B-LT or B-LTA); the body is the PDF, the response the signed PDF.",
    tags=["signatures"],
    response_class=Response,
    openapi_extra=_document_body("application/pdf", schemas.PDFSignatureJSON, "The PDF to sign."),
    responses={
        **_document_response("application/pdf", "The signed PDF (an incremental update of the one sent)."),
        **_problems(404, 409, 413, 415, 422),
    },
)
async def sign_pdf(
    request: Request,
    params: Annotated[schemas.PDFSignatureParams, Query()],
    principal: Caller,
    activation: ACTIVATION = None,
) -> Response:
    service = _service(request, principal)
    signed, _ = await _signing(
        request,
        params,
        schemas.PDFSignatureJSON,
        schemas.PDFSignatureQuery,
        lambda document, query: service.sign_pdf(document, query, activation),
    )
    headers = {
        "Govsign-Document-SHA256": signed.document_sha256,
        "Govsign-Signed-SHA256": signed.signed_sha256,
        "Govsign-Credential": signed.credential,
        "Govsign-Level": signed.level,
    }
    if _is_json(request):
        data = signed.data if signed.data is not None else b"".join(signed.chunks())
        return _signed_json(data, signed.document_sha256, signed.credential, signed.level)
    if signed.data is not None:
        return Response(signed.data, media_type="application/pdf", headers=headers)
    headers["Content-Length"] = str(signed.size)
    return StreamingResponse(signed.chunks(), media_type="application/pdf", headers=headers)


@router.post(
    "/signatures/cms",
    operation_id="signCMS",
    summary="Sign any content with a detached CAdES signature (.p7s); the body is the content.",
    tags=["signatures"],
    response_class=Response,
    openapi_extra=_document_body(
        "application/octet-stream", schemas.CMSSignatureJSON, "The content to sign (any bytes)."
    ),
    responses={
        **_document_response("application/pkcs7-signature", "Detached CMS SignedData, DER."),
        **_problems(404, 409, 413, 415, 422),
    },
)
async def sign_cms(
    request: Request,
    params: Annotated[schemas.CMSSignatureParams, Query()],
    principal: Caller,
    activation: ACTIVATION = None,
) -> Response:
    service = _service(request, principal)
    (signature, content_sha256), query = await _signing(
        request,
        params,
        schemas.CMSSignatureJSON,
        schemas.CMSSignatureQuery,
        lambda document, query: service.sign_cms(document, query, activation),
    )
    if _is_json(request):
        return _signed_json(signature, content_sha256, _serial(query.credential), query.level)
    return Response(
        signature,
        media_type="application/pkcs7-signature",
        headers={
            "Govsign-Document-SHA256": content_sha256,
            "Content-Disposition": 'attachment; filename="signature.p7s"',
        },
    )


@router.post(
    "/signatures/smime",
    operation_id="signSMIME",
    summary="Sign an RFC 5322 e-mail message as S/MIME multipart/signed (RFC 8551).",
    tags=["signatures"],
    response_class=Response,
    openapi_extra=_document_body(
        "message/rfc822", schemas.SMIMESignatureJSON, "The message; its From address must be the certificate's e-mail."
    ),
    responses={
        **_document_response("message/rfc822", "The signed message."),
        **_problems(404, 409, 413, 415, 422),
    },
)
async def sign_smime(
    request: Request,
    params: Annotated[schemas.SMIMESignatureParams, Query()],
    principal: Caller,
    activation: ACTIVATION = None,
) -> Response:
    service = _service(request, principal)
    (signed, message_sha256), query = await _signing(
        request,
        params,
        schemas.SMIMESignatureJSON,
        schemas.SMIMESignatureQuery,
        lambda document, query: service.sign_smime(document, query, activation),
    )
    if _is_json(request):
        return _signed_json(signed, message_sha256, _serial(query.credential), "B-B")
    return Response(signed, media_type="message/rfc822", headers={"Govsign-Document-SHA256": message_sha256})


@router.post(
    "/signatures/digests",
    operation_id="signDigests",
    summary="Sign up to 100 client-computed digests: detached CMS SignedData or raw signature values.",
    tags=["signatures"],
    response_model=schemas.DigestSignatures,
    responses=_problems(404, 409, 413, 422),
)
async def sign_digests(
    request: Request, body: schemas.DigestSignatureRequest, principal: Caller, activation: ACTIVATION = None
) -> JSONResponse:
    return JSONResponse(await asyncio.to_thread(_service(request, principal).sign_digests, body, activation))


# -- sole control -------------------------------------------------------------------------------


def _sole_control(request: Request) -> SoleControl:
    return SoleControl(get_platform(request))


@router.post(
    "/credentials/{serial}/factors/totp",
    operation_id="enrolTOTP",
    summary="Enrol a new TOTP seed for an official's credential (replaces the old one); shown once.",
    tags=["sole control"],
    status_code=201,
    response_model=schemas.TOTPEnrolment,
    responses=_problems(404, 409, 422),
)
async def enrol_totp(serial: SERIAL, request: Request, principal: Caller) -> JSONResponse:
    def enrol() -> dict[str, Any]:
        credential, enrolment = _sole_control(request).enrol_totp(
            serial, actor=principal.actor, principal=principal, context=audit_context(request, principal)
        )
        return schemas.TOTPEnrolment(
            credential=credential,
            secret=enrolment.secret_base32,
            otpauth_uri=enrolment.uri,
        ).model_dump(mode="json")

    return JSONResponse(await asyncio.to_thread(enrol), status_code=201, headers={"Cache-Control": "no-store"})


@router.put(
    "/credentials/{serial}/factors/pin",
    operation_id="setPIN",
    summary="Set an official's PIN, or change it (then the current PIN is required).",
    tags=["sole control"],
    status_code=204,
    response_class=Response,
    responses=_problems(404, 409, 422),
)
async def set_pin(serial: SERIAL, body: schemas.PINRequest, request: Request, principal: Caller) -> Response:
    await asyncio.to_thread(
        _sole_control(request).set_pin,
        serial,
        body.pin,
        actor=principal.actor,
        current_pin=body.current_pin,
        principal=principal,
        context=audit_context(request, principal),
    )
    return Response(status_code=204)


@router.get(
    "/credentials/{serial}/factors",
    operation_id="getFactors",
    summary="Which factors an official's credential has (never the factors).",
    tags=["sole control"],
    response_model=schemas.FactorStatus,
    responses=_problems(404),
)
async def get_factors(serial: SERIAL, request: Request, principal: Caller) -> JSONResponse:
    status = await asyncio.to_thread(_sole_control(request).factor_status, serial, principal=principal)
    return JSONResponse(
        schemas.FactorStatus(
            credential=status.credential, totp=status.totp, pin=status.pin, locked_until=status.locked_until
        ).model_dump(mode="json")
    )


@router.post(
    "/credentials/{serial}/activations",
    operation_id="activateSignature",
    summary="The official activates signing of exactly these hashes (one-time code and/or PIN); single use, <= 5 min.",
    tags=["sole control"],
    status_code=201,
    response_model=schemas.Activation,
    responses=_problems(404, 409, 422),
)
async def activate(
    serial: SERIAL, body: schemas.ActivationRequest, request: Request, principal: Caller
) -> JSONResponse:
    hashes = [decode_base64(value, "hash") for value in body.hashes]

    def grant() -> dict[str, Any]:
        result = _sole_control(request).activate(
            principal,
            serial,
            hash_algorithm=body.hash_algorithm,
            hashes=hashes,
            count=body.count,
            otp=body.otp,
            pin=body.pin,
            context=audit_context(request, principal),
        )
        return schemas.Activation(
            activation=result.token,
            credential=result.credential,
            hash_algorithm=result.hash_algorithm,
            count=result.count,
            expires_at=result.expires_at,
        ).model_dump(mode="json")

    return JSONResponse(await asyncio.to_thread(grant), status_code=201, headers={"Cache-Control": "no-store"})


@router.put(
    "/credentials/{serial}/stamp-image",
    operation_id="setStampImage",
    summary="Store the seal (agency) or signature (official) image shown by the credential's visible signatures.",
    tags=["sole control"],
    response_model=schemas.StampImage,
    responses=_problems(404, 413, 422),
)
async def set_stamp_image(
    serial: SERIAL, body: schemas.StampImageRequest, request: Request, principal: Caller
) -> JSONResponse:
    image = decode_base64(body.image_png, "image_png")
    digest = await asyncio.to_thread(
        _sole_control(request).set_stamp_image,
        serial,
        image,
        actor=principal.actor,
        principal=principal,
        context=audit_context(request, principal),
    )
    return JSONResponse(schemas.StampImage(credential=_serial(serial), image_sha256=digest).model_dump(mode="json"))
