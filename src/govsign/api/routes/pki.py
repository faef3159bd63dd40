"""Public protocol endpoints: CA certificates, CRLs, OCSP and the RFC 3161 TSA (fixed paths, CONTRACT.md).

Each handler reads bytes, calls the status services off the event loop and returns bytes with the
protocol's media type. OCSP and the TSA never answer HTTP 500: failures are OCSP response
statuses and PKIStatus rejections. Ordinary OCSP and time-stamp requests are answered before
these routes by the raw layer of :mod:`govsign.api.protocols`, with the same functions.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.types import DecoratedCallable

from govsign.api.deps import get_services, get_settings, media_type
from govsign.api.problems import problem
from govsign.api.protocols import (
    MAX_PROTOCOL_BODY,
    OCSP_REQUEST_MEDIA_TYPE,
    OCSP_RESPONSE_MEDIA_TYPE,
    TIMESTAMP_HEADERS,
    TIMESTAMP_QUERY_MEDIA_TYPE,
    TIMESTAMP_REPLY_MEDIA_TYPE,
    answer_ocsp,
    answer_timestamp,
    decode_ocsp_get,
    http_date,
    ocsp_headers,
)
from govsign.pki.ocsp import OCSPAnswer, unsigned_response

router = APIRouter(tags=["public PKI"])

MAX_OCSP_REQUEST_BYTES = MAX_PROTOCOL_BODY
MAX_TIMESTAMP_QUERY_BYTES = MAX_PROTOCOL_BODY
CRL_MAX_AGE_SECONDS = 5
_CA_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

PKI_RESPONSES: dict[int | str, dict[str, object]] = {
    404: {"description": "No such CA or CRL.", "content": {"application/problem+json": {}}},
}


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
    der = await asyncio.to_thread(get_services(request).hierarchy.ca_certificate, ca_id)
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
    stored = await asyncio.to_thread(get_services(request).crls.latest, ca_id, delta=delta)
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


def _ocsp_response(request: Request, answer: OCSPAnswer, *, cacheable: bool) -> Response:
    max_age = get_settings(request).ocsp_http_max_age_seconds
    headers = ocsp_headers(answer, get_services(request).clock.now(), max_age, cacheable=cacheable)
    return Response(answer.der, media_type=headers.pop("Content-Type"), headers=headers)


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


async def _protocol_body(request: Request, accepted: str, limit: int, what: str) -> bytes | Response:
    """The DER body of a protocol request (``what``, e.g. "OCSP requests"), or the problem
    answer (415 unless its media type is ``accepted``, 413 beyond ``limit`` bytes)."""
    if media_type(request) != accepted:
        return problem(415, "unsupported-media-type", "Unsupported media type", f"{what} must be sent as {accepted}.")
    body = await _read_limited(request, limit)
    if body is None:
        return problem(413, "too-large", "Request too large", f"{what} are at most {limit} bytes.")
    return body


def _protocol_post(
    path: str, operation_id: str, summary: str, request_type: str, reply: dict[str, object]
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The route of a protocol request POSTed as a DER body of ``request_type``, answered with
    ``reply`` (the 200 response) or a problem (413, 415)."""
    return router.post(
        path,
        operation_id=operation_id,
        summary=summary,
        response_class=Response,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {request_type: {"schema": {"type": "string", "format": "binary"}}},
            }
        },
        responses={
            200: reply,
            413: {"description": "The request is too large.", "content": {"application/problem+json": {}}},
            415: {
                "description": f"The content type is not {request_type}.",
                "content": {"application/problem+json": {}},
            },
        },
    )


_OCSP_REPLY: dict[str, object] = {
    "content": {OCSP_RESPONSE_MEDIA_TYPE: {}},
    "description": "An OCSP response (possibly an error status).",
}


@_protocol_post(
    "/pki/ocsp",
    "postOCSPRequest",
    "OCSP over POST (RFC 6960); the body is a DER OCSPRequest.",
    OCSP_REQUEST_MEDIA_TYPE,
    _OCSP_REPLY,
)
async def ocsp_post(request: Request) -> Response:
    body = await _protocol_body(request, OCSP_REQUEST_MEDIA_TYPE, MAX_OCSP_REQUEST_BYTES, "OCSP requests")
    if isinstance(body, Response):
        return body
    answer = await answer_ocsp(get_services(request).ocsp, body, "POST")
    return _ocsp_response(request, answer, cacheable=False)


@router.get(
    "/pki/ocsp/{encoded:path}",
    operation_id="getOCSPRequest",
    summary="OCSP over GET (RFC 6960 appendix A, RFC 5019): the base64 DER request, URL-encoded, in the path.",
    response_class=Response,
    responses={
        200: _OCSP_REPLY,
        404: {"description": "The path holds characters no URL path segment may (a line break): no request."},
    },
)
async def ocsp_get(encoded: str, request: Request) -> Response:
    der = decode_ocsp_get(encoded)
    if der is None:
        return _ocsp_response(request, unsigned_response("malformed_request"), cacheable=False)
    return _ocsp_response(request, await answer_ocsp(get_services(request).ocsp, der, "GET"), cacheable=True)


@_protocol_post(
    "/pki/tsa",
    "postTimeStampQuery",
    "RFC 3161 time-stamping over HTTP; the body is a DER TimeStampReq.",
    TIMESTAMP_QUERY_MEDIA_TYPE,
    {
        "content": {TIMESTAMP_REPLY_MEDIA_TYPE: {}},
        "description": "A TimeStampResp: granted with a token, or a rejection with its PKIFailureInfo.",
    },
)
async def timestamp_post(request: Request) -> Response:
    body = await _protocol_body(request, TIMESTAMP_QUERY_MEDIA_TYPE, MAX_TIMESTAMP_QUERY_BYTES, "Time-stamp requests")
    if isinstance(body, Response):
        return body
    reply = await answer_timestamp(get_services(request).timestamps, body)
    headers = dict(TIMESTAMP_HEADERS)
    return Response(reply, media_type=headers.pop("Content-Type"), headers=headers)
