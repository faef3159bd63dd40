"""Public protocol endpoints: CA certificates, CRLs, OCSP and the RFC 3161 TSA (fixed paths, CONTRACT.md).

Each handler reads bytes, calls the runtime off the event loop and returns bytes with the
protocol's media type. OCSP and the TSA never answer HTTP 500: failures are OCSP response
statuses and PKIStatus rejections.
"""

from __future__ import annotations

import asyncio
import hashlib
import re

from fastapi import APIRouter, Request
from fastapi.responses import Response

from govsign.api.ocsp_fast import decode_ocsp_get, http_date, ocsp_cache_headers
from govsign.api.problems import problem
from govsign.pki.ocsp import OCSPAnswer, unsigned_response
from govsign.runtime import Runtime

router = APIRouter(tags=["public PKI"])

OCSP_REQUEST_MEDIA_TYPE = "application/ocsp-request"
OCSP_RESPONSE_MEDIA_TYPE = "application/ocsp-response"
MAX_OCSP_REQUEST_BYTES = 16 * 1024
TIMESTAMP_QUERY_MEDIA_TYPE = "application/timestamp-query"
TIMESTAMP_REPLY_MEDIA_TYPE = "application/timestamp-reply"
MAX_TIMESTAMP_QUERY_BYTES = 16 * 1024
CRL_MAX_AGE_SECONDS = 5
_CA_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

PKI_RESPONSES: dict[int | str, dict[str, object]] = {
    404: {"description": "No such CA or CRL.", "content": {"application/problem+json": {}}},
}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def etag_matches(request: Request, etag: str) -> bool:
    """If-None-Match as RFC 9110 13.1.2 reads it: a list, weak comparison, or '*'."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    candidates = [part.strip() for part in header.split(",")]
    return any(c == "*" or c.removeprefix("W/") == etag for c in candidates)


@router.get(
    "/pki/ca/{ca_id}.crt",
    operation_id="getCACertificate",
    summary="A CA certificate (DER), the caIssuers URL of the certificates it issued.",
    response_class=Response,
    responses={200: {"content": {"application/pkix-cert": {}}}, **PKI_RESPONSES},
)
async def ca_certificate(ca_id: str, request: Request) -> Response:
    if not _CA_ID.match(ca_id):
        return problem(404, "not-found", "Not found", "There is no such CA.")
    der = await asyncio.to_thread(_runtime(request).ca_certificate, ca_id)
    if der is None:
        return problem(404, "not-found", "Not found", f"There is no CA '{ca_id}'.")
    etag = '"' + hashlib.sha256(der).hexdigest()[:32] + '"'
    if etag_matches(request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(
        der,
        media_type="application/pkix-cert",
        headers={
            "Cache-Control": "public, max-age=86400",
            "ETag": etag,
            "Content-Disposition": f'attachment; filename="{ca_id}.crt"',
        },
    )


@router.get(
    "/pki/crl/{name}.crl",
    operation_id="getCRL",
    summary="The latest complete CRL of a CA (`{ca_id}.crl`) or its latest delta CRL (`{ca_id}-delta.crl`).",
    response_class=Response,
    responses={200: {"content": {"application/pkix-crl": {}}}, 304: {"description": "Not modified."}, **PKI_RESPONSES},
)
async def crl(name: str, request: Request) -> Response:
    delta = name.endswith("-delta")
    ca_id = name.removesuffix("-delta")
    if not _CA_ID.match(ca_id):
        return problem(404, "not-found", "Not found", "There is no such CRL.")
    stored = await asyncio.to_thread(_runtime(request).latest_crl, ca_id, delta=delta)
    if stored is None:
        return problem(
            404, "not-found", "Not found", f"No {'delta ' if delta else ''}CRL has been published for '{ca_id}'."
        )
    etag = f'"{ca_id}-{stored.number}"'
    headers = {
        "ETag": etag,
        "Last-Modified": http_date(stored.this_update),
        "Expires": http_date(stored.next_update),
        "Cache-Control": f"public, max-age={CRL_MAX_AGE_SECONDS}, no-transform",
    }
    if etag_matches(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(stored.der, media_type="application/pkix-crl", headers=headers)


def _ocsp_response(answer: OCSPAnswer, runtime: Runtime, *, cacheable: bool) -> Response:
    headers = ocsp_cache_headers(
        answer, runtime.clock.now(), runtime.settings.ocsp_http_max_age_seconds, cacheable=cacheable
    )
    return Response(answer.der, media_type=OCSP_RESPONSE_MEDIA_TYPE, headers=headers)


async def _read_limited(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/pki/ocsp",
    operation_id="postOCSPRequest",
    summary="OCSP over POST (RFC 6960); the body is a DER OCSPRequest.",
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {OCSP_REQUEST_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={
        200: {"content": {OCSP_RESPONSE_MEDIA_TYPE: {}}, "description": "An OCSP response (possibly an error status)."},
        413: {"description": "The request is too large.", "content": {"application/problem+json": {}}},
        415: {
            "description": "The content type is not application/ocsp-request.",
            "content": {"application/problem+json": {}},
        },
    },
)
async def ocsp_post(request: Request) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != OCSP_REQUEST_MEDIA_TYPE:
        return problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "OCSP requests must be sent as application/ocsp-request.",
        )
    body = await _read_limited(request, MAX_OCSP_REQUEST_BYTES)
    if body is None:
        return problem(
            413, "too-large", "Request too large", f"OCSP requests are at most {MAX_OCSP_REQUEST_BYTES} bytes."
        )
    runtime = _runtime(request)
    return _ocsp_response(await asyncio.to_thread(runtime.answer_ocsp, body), runtime, cacheable=False)


@router.get(
    "/pki/ocsp/{encoded:path}",
    operation_id="getOCSPRequest",
    summary="OCSP over GET (RFC 6960 appendix A, RFC 5019): the base64 DER request, URL-encoded, in the path.",
    response_class=Response,
    responses={
        200: {"content": {OCSP_RESPONSE_MEDIA_TYPE: {}}, "description": "An OCSP response (possibly an error status)."}
    },
)
async def ocsp_get(encoded: str, request: Request) -> Response:
    runtime = _runtime(request)
    der = decode_ocsp_get(encoded)
    if der is None:
        return _ocsp_response(unsigned_response("malformed_request"), runtime, cacheable=False)
    return _ocsp_response(await asyncio.to_thread(runtime.answer_ocsp, der), runtime, cacheable=True)


@router.post(
    "/pki/tsa",
    operation_id="postTimeStampQuery",
    summary="RFC 3161 time-stamping over HTTP; the body is a DER TimeStampReq.",
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {TIMESTAMP_QUERY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={
        200: {
            "content": {TIMESTAMP_REPLY_MEDIA_TYPE: {}},
            "description": "A TimeStampResp: granted with a token, or a rejection with its PKIFailureInfo.",
        },
        413: {"description": "The request is too large.", "content": {"application/problem+json": {}}},
        415: {
            "description": "The content type is not application/timestamp-query.",
            "content": {"application/problem+json": {}},
        },
    },
)
async def timestamp_post(request: Request) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != TIMESTAMP_QUERY_MEDIA_TYPE:
        return problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Time-stamp requests must be sent as application/timestamp-query.",
        )
    body = await _read_limited(request, MAX_TIMESTAMP_QUERY_BYTES)
    if body is None:
        return problem(
            413, "too-large", "Request too large", f"Time-stamp requests are at most {MAX_TIMESTAMP_QUERY_BYTES} bytes."
        )
    reply = await asyncio.to_thread(_runtime(request).answer_timestamp, body)
    return Response(reply, media_type=TIMESTAMP_REPLY_MEDIA_TYPE, headers={"Cache-Control": "no-store"})
