"""Documents as request bodies: streamed to a private spool file as they arrive."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from govsign.api.deps import get_settings, media_type
from govsign.api.middleware import DOCUMENT_ROUTES
from govsign.errors import InvalidInputError
from govsign.services.documents import SpooledDocument


async def spool_body(request: Request, *, empty: str) -> SpooledDocument:
    """The request body, hashed (SHA-256) as it arrives: in memory up to 1 MiB, beyond that in a
    private temporary file under the data directory (415 unless its media type is the one the
    endpoint takes; every document endpoint also takes a JSON body, which the message says)."""
    accepted = DOCUMENT_ROUTES[request.url.path]
    if media_type(request) not in accepted:
        expected = " or ".join([*sorted(accepted), "application/json"])
        raise StarletteHTTPException(415, f"Request bodies must be {expected}.")
    document = SpooledDocument.receive(Path(get_settings(request).data_dir) / "spool")
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
        raise InvalidInputError(empty)
    return document


M = TypeVar("M", bound=BaseModel)


async def json_body(request: Request, model: type[M]) -> M:
    """A JSON request body of at most GOVSIGN_MAX_REQUEST_BYTES, validated (422 problem otherwise)."""
    limit = get_settings(request).max_request_bytes
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise StarletteHTTPException(
                413, f"JSON requests are at most {limit} bytes; send larger documents as the raw request body."
            )
    try:
        return model.model_validate_json(bytes(body))
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False, include_context=False)) from None
