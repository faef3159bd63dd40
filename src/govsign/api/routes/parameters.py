"""What the JSON API's routes share: path and header parameters, the problem (and pending approval)
responses each operation documents, and answering with an operation's outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec
from urllib.parse import unquote

from fastapi import Header, Path, Query
from fastapi.responses import JSONResponse

from govsign.api.representation import outcome
from govsign.api.schemas import resources as schemas
from govsign.errors import InvalidInputError
from govsign.services.idempotency import StoredAnswer

P = ParamSpec("P")

SERIAL = Annotated[str, Path(pattern=r"^[0-9a-fA-F:]{1,60}$", description="Serial number in hex.")]
APPROVAL_ID = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="Approval request id.")]
IDEMPOTENCY_KEY = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, description="Retries with the same key return the first result."),
]
ACTIVATION = Annotated[
    str | None,
    Header(
        alias="Govsign-Activation",
        max_length=100,
        description="The official's signature activation (required for individual credentials).",
    ),
]
PDF_PASSWORD = Annotated[
    str | None,
    Header(
        alias="Govsign-PDF-Password",
        max_length=1024,
        description="The password (user or owner) of an encrypted PDF, percent-encoded UTF-8 (RFC 3986: "
        "non-ASCII characters and % itself are encoded); used to open the document, never logged or stored.",
    ),
]


def pdf_password(header: str | None) -> str | None:
    """The password of the ``Govsign-PDF-Password`` header (percent-encoded UTF-8)."""
    if header is None:
        return None
    try:
        return unquote(header, errors="strict")
    except UnicodeDecodeError:
        raise InvalidInputError("The Govsign-PDF-Password header is not percent-encoded UTF-8.") from None


LIMIT = Annotated[int, Query(ge=1, le=200, description="Page size.")]

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_DESCRIPTIONS = {
    401: "Missing or invalid credentials.",
    403: "The caller's role or agency does not allow this.",
    404: "No such object.",
    409: "The object's state does not allow this, or the idempotency key is in use.",
    413: "The request body is too large.",
    415: "The request body is not JSON.",
    422: "The request is invalid or refused by policy.",
    429: "Too many failed authentications from this address.",
    503: "The HSM or the database is unavailable.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem responses of an authenticated operation (401, 403, 429, 503) and ``statuses``."""
    return {
        status: {"description": _DESCRIPTIONS[status], "content": _PROBLEM}
        for status in (401, 403, 429, 503, *statuses)
    }


def pending(description: str = "Waiting for approval.") -> dict[int | str, dict[str, Any]]:
    """The 202 response of an operation that may wait for a second officer's approval."""
    return {202: {"model": schemas.Approval, "description": description}}


def answer(stored: StoredAnswer) -> JSONResponse:
    return JSONResponse(stored.body, status_code=stored.code)


async def answer_outcome(operation: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> JSONResponse:
    """Run a service operation off the event loop and answer with its outcome (see
    :func:`~govsign.api.representation.outcome`)."""
    return answer(outcome(await asyncio.to_thread(operation, *args, **kwargs)))
